package abi

// Field tags of the configuration record (amesh_configure).
const (
	ConfigAllowEntry       = 1  // record, repeats: one allow-list entry
	ConfigIntegrityFailure = 2  // bool: the allow list failed its integrity check
	ConfigAuthority        = 3  // text, repeats: host[:port] this verifier answers for
	ConfigRequireV2        = 4  // bool: reject version 1 requests
	ConfigClockSkewMs      = 5  // int: largest accepted |now - ts|, milliseconds
	ConfigNonceTTLMs       = 6  // int: how long nonces stay recorded, milliseconds
	ConfigMaxBodyBytes     = 7  // int: body limit
	ConfigNonceStore       = 8  // int: NonceStoreGuest or NonceStoreHost
	ConfigNonceCapacity    = 9  // int: capacity of the guest's nonce store
	ConfigCrypto           = 10 // int: CryptoHost, CryptoGuest or CryptoHostMessage
	ConfigMaxPending       = 11 // int: most prepared checks and signatures held at once
)

// Field tags of an allow-list entry record.
const (
	EntryKey  = 1 // bytes: 33-byte compressed point, or its 44-character base64 text
	EntryRole = 2 // text: "controller" or "target"
	EntryID   = 3 // text: device ID; derived from the key when absent
	EntryName = 4 // text: friendly name
)

// Values of ConfigNonceStore.
const (
	NonceStoreGuest = 0 // the guest keeps nonces in its own memory (one instance only)
	NonceStoreHost  = 1 // the guest calls the nonce_record import
)

// Values of ConfigCrypto.
const (
	CryptoHost  = 0 // ask the ecdsa_verify import first; verify in wasm if it answers unsupported
	CryptoGuest = 1 // always verify in wasm
	// CryptoHostMessage is CryptoHost for a host that hashes the message
	// itself (node:crypto, WebCrypto, Go's native SHA-256): the guest does
	// not compute the digest, passes 0 as ecdsa_verify's digest and leaves
	// it out of prepare results. Hashing in wasm costs several times more.
	CryptoHostMessage = 2
)

// Field tags of the request record (amesh_verify, amesh_prepare).
const (
	ReqMethod        = 1 // text
	ReqTarget        = 2 // text: the request-target exactly as received
	ReqHost          = 3 // text: Host header or :authority
	ReqScheme        = 4 // text: "http" or "https" (default)
	ReqAuthorization = 5 // text, repeats: every Authorization header value
	ReqBody          = 6 // bytes: the exact body
	ReqNowMs         = 7 // int: current Unix time in milliseconds; the now_ms import when absent
	ReqBodySHA256    = 8 // bytes: SHA-256 of the body, sent instead of ReqBody by a host with fast hashing
	ReqBodySize      = 9 // int: length of the body, with ReqBodySHA256
)

// Field tags of the signing record (amesh_sign, amesh_sign_prepare).
const (
	SignVersion   = 1  // text: "1" (default) or "2"
	SignMethod    = 2  // text
	SignTarget    = 3  // text: request-target as it will be sent
	SignURL       = 4  // text: URL or path as a client was given it (instead of SignTarget)
	SignAuthority = 5  // text: host[:port] the request goes to (version 2)
	SignScheme    = 6  // text: "http" or "https": remove that default port from the authority
	SignBody      = 7  // bytes
	SignKey       = 8  // bytes: the signer's 33-byte compressed public key
	SignNowMs     = 9  // int: signing time; the now_ms import when absent
	SignNonce     = 10 // bytes: nonce to use instead of 16 random bytes
)

// Field tags of the signature record (amesh_verify_signature).
const (
	SigCheckKey       = 1 // bytes: the 33-byte compressed key, or its 44-character base64 or base64url text
	SigCheckMessage   = 2 // bytes: the signed message (hashed with SHA-256)
	SigCheckSignature = 3 // bytes: the 64-byte r||s
	SigCheckSigText   = 4 // text: the signature as a header carries it (unpadded base64url), instead of SigCheckSignature
)

// Field tags of the result record every export returns.
const (
	ResStatus        = 1   // int: HTTP status of a decision
	ResCode          = 2   // text: public error code, absent when accepted
	ResReason        = 3   // text: private reason, for logs
	ResDetail        = 4   // text: details, for logs
	ResDeviceID      = 5   // text
	ResDeviceName    = 6   // text
	ResDeviceRole    = 7   // text
	ResVersion       = 8   // text: protocol version of the request
	ResKey           = 9   // bytes: 33-byte compressed key of the device
	ResHandle        = 10  // int: handle of a prepared check or signature
	ResKeyPoint      = 11  // bytes: 65-byte uncompressed key
	ResMessage       = 12  // bytes: canonical string
	ResDigest        = 13  // bytes: SHA-256 of the canonical string
	ResSignature     = 14  // bytes: 64-byte r||s from the header
	ResNonceKey      = 15  // bytes: key under which the nonce is recorded
	ResAuthorization = 16  // text: Authorization header value (signing)
	ResTarget        = 17  // text: request-target that was signed
	ResTS            = 18  // text: ts parameter
	ResNonce         = 19  // text: nonce parameter
	ResError         = 127 // text: the call failed; no other field is meaningful
)

// Answers of the ecdsa_verify import, and sig_status of amesh_commit.
const (
	SigValid       = 0 // the signature verifies
	SigInvalid     = 1 // it does not
	SigUnsupported = 2 // not checked: the guest verifies in wasm
)

// Answers of the nonce_record import.
const (
	NonceFresh   = 0 // recorded now
	NonceReplay  = 1 // already recorded
	NonceFailure = 2 // the store failed; the guest rejects with 503
)

// nonce_status of amesh_commit.
const (
	CommitNonceByGuest = 0 // the guest records the nonce as configured
	CommitNonceFresh   = 1 // the host recorded it: fresh
	CommitNonceReplay  = 2 // the host found it recorded: replay
	CommitNonceFailure = 3 // the host's store failed
)

// Answers of the sign_digest import.
const (
	SignOK     = 0 // 64 bytes of r||s written
	SignFailed = 1 // the signer failed
	SignNoKey  = 2 // the host holds no signer for that public key
)

// Log levels of the log import: those of Go's log/slog.
const (
	LogDebug = -4
	LogInfo  = 0
	LogWarn  = 4
	LogError = 8
)

// AllowEntry is one allow-list entry of a Config.
type AllowEntry struct {
	Key  []byte
	Role string
	ID   string
	Name string
}

// Config is the configuration record.
type Config struct {
	AllowList        []AllowEntry
	IntegrityFailure bool
	Authorities      []string
	RequireV2        bool
	ClockSkewMs      int64
	NonceTTLMs       int64
	MaxBodyBytes     int64
	NonceStore       int64
	NonceCapacity    int64
	Crypto           int64
	MaxPending       int64
}

// Encode appends c to e; zero values are left out.
func (c *Config) Encode(e *Encoder) {
	for i := range c.AllowList {
		a := &c.AllowList[i]
		e.Record(ConfigAllowEntry, func(e *Encoder) {
			e.Bytes(EntryKey, a.Key)
			e.String(EntryRole, a.Role)
			if a.ID != "" {
				e.String(EntryID, a.ID)
			}
			if a.Name != "" {
				e.String(EntryName, a.Name)
			}
		})
	}
	if c.IntegrityFailure {
		e.Bool(ConfigIntegrityFailure, true)
	}
	for _, a := range c.Authorities {
		e.String(ConfigAuthority, a)
	}
	if c.RequireV2 {
		e.Bool(ConfigRequireV2, true)
	}
	ints := [...]struct {
		tag byte
		v   int64
	}{
		{ConfigClockSkewMs, c.ClockSkewMs}, {ConfigNonceTTLMs, c.NonceTTLMs},
		{ConfigMaxBodyBytes, c.MaxBodyBytes}, {ConfigNonceStore, c.NonceStore},
		{ConfigNonceCapacity, c.NonceCapacity}, {ConfigCrypto, c.Crypto},
		{ConfigMaxPending, c.MaxPending},
	}
	for _, f := range ints {
		if f.v != 0 {
			e.Int(f.tag, f.v)
		}
	}
}

// DecodeConfig decodes a configuration record. Byte values alias rec.
func DecodeConfig(rec []byte) (*Config, error) {
	c := &Config{}
	var s seen
	err := Fields(rec, func(tag byte, val []byte) error {
		var err error
		switch tag {
		case ConfigAllowEntry:
			var a AllowEntry
			if a, err = decodeEntry(val); err == nil {
				c.AllowList = append(c.AllowList, a)
			}
			return err
		case ConfigAuthority:
			c.Authorities = append(c.Authorities, string(val))
			return nil
		}
		if err := s.mark(tag); err != nil {
			return err
		}
		switch tag {
		case ConfigIntegrityFailure:
			c.IntegrityFailure, err = Bool(val)
		case ConfigRequireV2:
			c.RequireV2, err = Bool(val)
		case ConfigClockSkewMs:
			c.ClockSkewMs, err = Int(val)
		case ConfigNonceTTLMs:
			c.NonceTTLMs, err = Int(val)
		case ConfigMaxBodyBytes:
			c.MaxBodyBytes, err = Int(val)
		case ConfigNonceStore:
			c.NonceStore, err = Int(val)
		case ConfigNonceCapacity:
			c.NonceCapacity, err = Int(val)
		case ConfigCrypto:
			c.Crypto, err = Int(val)
		case ConfigMaxPending:
			c.MaxPending, err = Int(val)
		default:
			return unknown("config", tag)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func decodeEntry(rec []byte) (AllowEntry, error) {
	var a AllowEntry
	var s seen
	err := Fields(rec, func(tag byte, val []byte) error {
		if err := s.mark(tag); err != nil {
			return err
		}
		switch tag {
		case EntryKey:
			a.Key = val
		case EntryRole:
			a.Role = string(val)
		case EntryID:
			a.ID = string(val)
		case EntryName:
			a.Name = string(val)
		default:
			return unknown("allow-list entry", tag)
		}
		return nil
	})
	if err == nil && (!s.has(EntryKey) || !s.has(EntryRole)) {
		err = recordErr("allow-list entry without key or role")
	}
	return a, err
}

// Request is the request record.
type Request struct {
	Method        string
	Target        string
	Host          string
	Scheme        string
	Authorization []string
	Body          []byte
	NowMs         int64
	HasNow        bool // NowMs was given
	// BodySHA256 and BodySize stand for Body when BodySHA256 is set.
	BodySHA256 []byte
	BodySize   int64
}

// Encode appends r to e.
func (r *Request) Encode(e *Encoder) {
	e.String(ReqMethod, r.Method)
	e.String(ReqTarget, r.Target)
	if r.Host != "" {
		e.String(ReqHost, r.Host)
	}
	if r.Scheme != "" {
		e.String(ReqScheme, r.Scheme)
	}
	for _, a := range r.Authorization {
		e.String(ReqAuthorization, a)
	}
	if r.BodySHA256 != nil {
		e.Bytes(ReqBodySHA256, r.BodySHA256)
		e.Int(ReqBodySize, r.BodySize)
	} else if len(r.Body) > 0 {
		e.Bytes(ReqBody, r.Body)
	}
	if r.HasNow {
		e.Int(ReqNowMs, r.NowMs)
	}
}

// DecodeRequest decodes a request record. Body aliases rec.
func DecodeRequest(rec []byte) (*Request, error) {
	r := &Request{}
	var s seen
	err := Fields(rec, func(tag byte, val []byte) error {
		if tag == ReqAuthorization {
			r.Authorization = append(r.Authorization, string(val))
			return nil
		}
		if err := s.mark(tag); err != nil {
			return err
		}
		var err error
		switch tag {
		case ReqMethod:
			r.Method = string(val)
		case ReqTarget:
			r.Target = string(val)
		case ReqHost:
			r.Host = string(val)
		case ReqScheme:
			r.Scheme = string(val)
		case ReqBody:
			r.Body = val
		case ReqNowMs:
			r.NowMs, err = Int(val)
			r.HasNow = true
		case ReqBodySHA256:
			r.BodySHA256 = val
		case ReqBodySize:
			r.BodySize, err = Int(val)
		default:
			return unknown("request", tag)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !s.has(ReqMethod) || !s.has(ReqTarget):
		return nil, recordErr("request without method or target")
	case s.has(ReqBodySHA256) != s.has(ReqBodySize):
		return nil, recordErr("request with only one of body_sha256 and body_size")
	case s.has(ReqBodySHA256) && (len(r.BodySHA256) != 32 || r.BodySize < 0 || s.has(ReqBody)):
		return nil, recordErr("request body digest: 32 bytes, a size >= 0, and no body field")
	}
	return r, nil
}

// SignParams is the signing record.
type SignParams struct {
	Version   string
	Method    string
	Target    string
	URL       string
	Authority string
	Scheme    string
	Body      []byte
	Key       []byte
	Nonce     []byte
	NowMs     int64
	HasNow    bool // NowMs was given
}

// Encode appends p to e.
func (p *SignParams) Encode(e *Encoder) {
	if p.Version != "" {
		e.String(SignVersion, p.Version)
	}
	e.String(SignMethod, p.Method)
	if p.URL != "" {
		e.String(SignURL, p.URL)
	} else {
		e.String(SignTarget, p.Target)
	}
	if p.Authority != "" {
		e.String(SignAuthority, p.Authority)
	}
	if p.Scheme != "" {
		e.String(SignScheme, p.Scheme)
	}
	if len(p.Body) > 0 {
		e.Bytes(SignBody, p.Body)
	}
	e.Bytes(SignKey, p.Key)
	if p.Nonce != nil {
		e.Bytes(SignNonce, p.Nonce)
	}
	if p.HasNow {
		e.Int(SignNowMs, p.NowMs)
	}
}

// DecodeSignParams decodes a signing record. Byte values alias rec.
func DecodeSignParams(rec []byte) (*SignParams, error) {
	p := &SignParams{}
	var s seen
	err := Fields(rec, func(tag byte, val []byte) error {
		if err := s.mark(tag); err != nil {
			return err
		}
		var err error
		switch tag {
		case SignVersion:
			p.Version = string(val)
		case SignMethod:
			p.Method = string(val)
		case SignTarget:
			p.Target = string(val)
		case SignURL:
			p.URL = string(val)
		case SignAuthority:
			p.Authority = string(val)
		case SignScheme:
			p.Scheme = string(val)
		case SignBody:
			p.Body = val
		case SignKey:
			p.Key = val
		case SignNonce:
			p.Nonce = val
		case SignNowMs:
			p.NowMs, err = Int(val)
			p.HasNow = true
		default:
			return unknown("sign", tag)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !s.has(SignMethod) || !s.has(SignKey):
		return nil, recordErr("sign record without method or key")
	case s.has(SignTarget) == s.has(SignURL):
		return nil, recordErr("sign record needs exactly one of target and url")
	}
	return p, nil
}

// Result is the result record.
type Result struct {
	Status        int64 // 0 when absent
	Code          string
	Reason        string
	Detail        string
	DeviceID      string
	DeviceName    string
	DeviceRole    string
	Version       string
	Key           []byte
	Handle        int64 // 0 when absent
	KeyPoint      []byte
	Message       []byte
	Digest        []byte
	Signature     []byte
	NonceKey      []byte
	Authorization string
	Target        string
	TS            string
	Nonce         string
	Error         string
}

// Encode appends r to e; empty fields are left out.
func (r *Result) Encode(e *Encoder) {
	if r.Status != 0 {
		e.Int(ResStatus, r.Status)
	}
	if r.Handle != 0 {
		e.Int(ResHandle, r.Handle)
	}
	texts := [...]struct {
		tag byte
		v   string
	}{
		{ResCode, r.Code}, {ResReason, r.Reason}, {ResDetail, r.Detail},
		{ResDeviceID, r.DeviceID}, {ResDeviceName, r.DeviceName}, {ResDeviceRole, r.DeviceRole},
		{ResVersion, r.Version}, {ResAuthorization, r.Authorization}, {ResTarget, r.Target},
		{ResTS, r.TS}, {ResNonce, r.Nonce}, {ResError, r.Error},
	}
	for _, f := range texts {
		if f.v != "" {
			e.String(f.tag, f.v)
		}
	}
	bins := [...]struct {
		tag byte
		v   []byte
	}{
		{ResKey, r.Key}, {ResKeyPoint, r.KeyPoint}, {ResMessage, r.Message},
		{ResDigest, r.Digest}, {ResSignature, r.Signature}, {ResNonceKey, r.NonceKey},
	}
	for _, f := range bins {
		if f.v != nil {
			e.Bytes(f.tag, f.v)
		}
	}
}

// DecodeResult decodes a result record. Byte values alias rec: hosts
// decoding straight from guest memory copy rec first.
func DecodeResult(rec []byte) (*Result, error) {
	r := &Result{}
	var s seen
	err := Fields(rec, func(tag byte, val []byte) error {
		if err := s.mark(tag); err != nil {
			return err
		}
		var err error
		switch tag {
		case ResStatus:
			r.Status, err = Int(val)
		case ResHandle:
			r.Handle, err = Int(val)
		case ResCode:
			r.Code = string(val)
		case ResReason:
			r.Reason = string(val)
		case ResDetail:
			r.Detail = string(val)
		case ResDeviceID:
			r.DeviceID = string(val)
		case ResDeviceName:
			r.DeviceName = string(val)
		case ResDeviceRole:
			r.DeviceRole = string(val)
		case ResVersion:
			r.Version = string(val)
		case ResAuthorization:
			r.Authorization = string(val)
		case ResTarget:
			r.Target = string(val)
		case ResTS:
			r.TS = string(val)
		case ResNonce:
			r.Nonce = string(val)
		case ResError:
			r.Error = string(val)
		case ResKey:
			r.Key = val
		case ResKeyPoint:
			r.KeyPoint = val
		case ResMessage:
			r.Message = val
		case ResDigest:
			r.Digest = val
		case ResSignature:
			r.Signature = val
		case ResNonceKey:
			r.NonceKey = val
		default:
			return unknown("result", tag)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// SignatureCheck is the signature record of amesh_verify_signature: one
// bare signature, no request around it.
type SignatureCheck struct {
	Key       []byte
	Message   []byte
	Signature []byte // raw r||s
	SigText   string // or the header's text of it
}

// Encode appends the record's fields to e.
func (c *SignatureCheck) Encode(e *Encoder) {
	e.Bytes(SigCheckKey, c.Key)
	if len(c.Message) > 0 {
		e.Bytes(SigCheckMessage, c.Message)
	}
	if c.Signature != nil || c.SigText == "" {
		e.Bytes(SigCheckSignature, c.Signature)
	} else {
		e.String(SigCheckSigText, c.SigText)
	}
}

// DecodeSignatureCheck parses a signature record.
func DecodeSignatureCheck(rec []byte) (*SignatureCheck, error) {
	c := &SignatureCheck{}
	var s seen
	err := Fields(rec, func(tag byte, val []byte) error {
		if err := s.mark(tag); err != nil {
			return err
		}
		switch tag {
		case SigCheckKey:
			c.Key = val
		case SigCheckMessage:
			c.Message = val
		case SigCheckSignature:
			c.Signature = val
		case SigCheckSigText:
			c.SigText = string(val)
		default:
			return unknown("signature", tag)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !s.has(SigCheckKey) || s.has(SigCheckSignature) == s.has(SigCheckSigText) {
		return nil, recordErr("signature record without a key, or without exactly one of signature and its text")
	}
	return c, nil
}
