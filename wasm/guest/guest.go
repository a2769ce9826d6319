package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/internal/errwrap"
	"github.com/amesh-go/amesh/wasm/internal/sha256"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Host is what the guest asks of its host: the imports of module "amesh"
// and WASI's random_get (imports_wasip1.go), or a fake in tests. Pointers and lengths never cross
// this interface; the wasm bindings turn slices into them.
type Host interface {
	// NowMs returns the current Unix time in milliseconds.
	NowMs() int64
	// VerifyECDSA checks sig (64 bytes, r||s) over msg, whose SHA-256 is
	// digest (nil under abi.CryptoHostMessage: the host hashes msg), with
	// the uncompressed 65-byte key point. It answers one of
	// abi.SigValid, abi.SigInvalid, abi.SigUnsupported.
	VerifyECDSA(point, msg, digest, sig []byte) int32
	// RecordNonce checks and records key for ttlMs; it answers
	// abi.NonceFresh, abi.NonceReplay or abi.NonceFailure.
	RecordNonce(key []byte, nowMs, ttlMs int64) int32
	// SignDigest signs the 32-byte digest with the host's key whose
	// compressed public key is key, writing r||s to out. It answers
	// abi.SignOK, abi.SignFailed or abi.SignNoKey.
	SignDigest(key, digest []byte, out *[protocol.SignatureSize]byte) int32
	// Log hands a message to the host's log at an slog level.
	Log(level int32, msg string)
	// Random fills b with cryptographically secure random bytes.
	Random(b []byte) error
}

// Defaults of the configuration record.
const (
	defaultMaxPending = 1024
	// maxHandles bounds handle numbers: the exports take them as i32, and
	// positive values stay positive in JavaScript.
	maxHandles = 1<<31 - 1
)

// guest is the state of one amesh.wasm instance. An instance runs one call
// at a time, so none of it needs locking.
type guest struct {
	host       Host
	v          *protocol.Verifier
	list       protocol.StaticAllowList
	crypto     int64
	nonces     *nonces
	maxPending int
	pending    map[int64]*pending
	lastHandle int64
	// out holds the last result record, after a 4-byte length: the wasm
	// binding hands its address to the host, so it must stay referenced
	// (the Go collector does not move objects) until the next call.
	out abi.Encoder
}

// pending is a prepared check (amesh_prepare) or signature
// (amesh_sign_prepare) waiting for the host's answer.
type pending struct {
	check  *protocol.Check
	now    time.Time
	sign   *protocol.SignParams
	key    []byte
	digest []byte
}

func newGuest(h Host) *guest {
	return &guest{host: h, nonces: &nonces{host: h}, pending: make(map[int64]*pending), maxPending: defaultMaxPending}
}

// errNotConfigured is the answer to any decision before amesh_configure.
var errNotConfigured = errors.New("amesh_configure has not succeeded yet")

// brokenList is the allow list of a configuration whose list failed its
// integrity check on the host: every lookup fails, so every request that
// gets as far as the lookup is answered 500, as natively.
type brokenList struct{}

func (brokenList) Lookup([protocol.PublicKeySize]byte) (*protocol.Device, error) {
	return nil, wrap("allow list (reported by the host)", protocol.ErrIntegrity)
}

// nonces is the guest's NonceStore: the host's store through the
// nonce_record import, or a memory store inside the guest. override, when
// set, is the host's own answer for the one Record call of amesh_commit.
type nonces struct {
	host     Host
	useHost  bool
	mem      *protocol.MemoryNonceStore
	memCap   int
	override int32
}

// errHostNonces is what a failure of the host's nonce store looks like from
// inside; the host has the real error and logs it.
var errHostNonces = errors.New("host nonce store failed")

// Record implements protocol.NonceStore.
func (n *nonces) Record(ctx context.Context, key string, now time.Time, ttl time.Duration) (bool, error) {
	answer := n.override
	switch {
	case answer != abi.CommitNonceByGuest:
		n.override = abi.CommitNonceByGuest
		switch answer {
		case abi.CommitNonceFresh:
			return true, nil
		case abi.CommitNonceReplay:
			return false, nil
		}
		return false, errHostNonces
	case n.useHost:
		switch n.host.RecordNonce([]byte(key), now.UnixMilli(), ttl.Milliseconds()) {
		case abi.NonceFresh:
			return true, nil
		case abi.NonceReplay:
			return false, nil
		}
		return false, errHostNonces
	}
	return n.mem.Record(ctx, key, now, ttl)
}

// configure applies a configuration record. A failed call leaves the
// previous configuration in place.
func (g *guest) configure(rec []byte) error {
	c, err := abi.DecodeConfig(rec)
	if err != nil {
		return err
	}
	devs := make([]*protocol.Device, 0, len(c.AllowList))
	for i, e := range c.AllowList {
		k, err := parseKey(e.Key)
		if err != nil {
			return wrap("allow-list entry "+strconv.Itoa(i), err)
		}
		devs = append(devs, &protocol.Device{ID: e.ID, Name: e.Name, Role: e.Role, Key: k})
	}
	list, err := protocol.NewStaticAllowList(devs...)
	if err != nil {
		return err
	}
	if c.NonceStore != abi.NonceStoreGuest && c.NonceStore != abi.NonceStoreHost {
		return errors.New("nonce store " + itoa(c.NonceStore) + " is neither guest (0) nor host (1)")
	}
	if c.Crypto != abi.CryptoHost && c.Crypto != abi.CryptoGuest && c.Crypto != abi.CryptoHostMessage {
		return errors.New("crypto " + itoa(c.Crypto) + " is not host (0), guest (1) or host hashing the message (2)")
	}
	if c.MaxPending < 0 || c.NonceCapacity < 0 || c.NonceCapacity > 1<<26 {
		return errors.New("negative max_pending, or nonce capacity out of range")
	}
	cfg := protocol.Config{
		AllowList:    list,
		Nonces:       g.nonces,
		ClockSkew:    time.Duration(c.ClockSkewMs) * time.Millisecond,
		NonceTTL:     time.Duration(c.NonceTTLMs) * time.Millisecond,
		MaxBodyBytes: c.MaxBodyBytes,
		Authorities:  c.Authorities,
		RequireV2:    c.RequireV2,
	}
	if c.ClockSkewMs < 0 || c.NonceTTLMs < 0 || c.ClockSkewMs > int64(time.Duration(1<<62)/time.Millisecond) ||
		c.NonceTTLMs > int64(time.Duration(1<<62)/time.Millisecond) {
		return errors.New("clock skew or nonce TTL out of range")
	}
	if c.IntegrityFailure {
		cfg.AllowList = brokenList{}
	}
	v, err := protocol.NewVerifier(cfg)
	if err != nil {
		return err
	}
	// The memory store survives reconfiguration (an allow-list reload must
	// not forget the nonces already seen); only a new capacity replaces it.
	if c.NonceStore == abi.NonceStoreGuest && (g.nonces.mem == nil || g.nonces.memCap != int(c.NonceCapacity)) {
		g.nonces.mem = protocol.NewMemoryNonceStore(int(c.NonceCapacity))
		g.nonces.memCap = int(c.NonceCapacity)
	}
	g.nonces.useHost = c.NonceStore == abi.NonceStoreHost
	g.v, g.list, g.crypto = v, list, c.Crypto
	g.maxPending = defaultMaxPending
	if c.MaxPending > 0 {
		g.maxPending = int(min(c.MaxPending, 1<<20))
	}
	g.host.Log(abi.LogDebug, "amesh.wasm configured: "+strconv.Itoa(len(list))+" allow-list entries")
	return nil
}

// request decodes a request record into what the verifier takes.
func (g *guest) request(rec []byte) (*protocol.Request, *abi.Request, time.Time, error) {
	r, err := abi.DecodeRequest(rec)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	ms := r.NowMs
	if !r.HasNow {
		ms = g.host.NowMs()
	}
	return &protocol.Request{Method: r.Method, Target: r.Target, Host: r.Host, Scheme: r.Scheme,
		Authorization: r.Authorization, Body: r.Body}, r, time.UnixMilli(ms), nil
}

// addBody passes the body, or the host's digest of it, to the check.
func addBody(c *protocol.Check, r *abi.Request) protocol.Result {
	if r.BodySHA256 != nil {
		return c.AddBodyDigest(r.BodySize, [32]byte(r.BodySHA256))
	}
	return c.AddBody(r.Body)
}

// verify makes the whole decision for one request record.
func (g *guest) verify(rec []byte, res *abi.Result) error {
	if g.v == nil {
		return errNotConfigured
	}
	req, ar, now, err := g.request(rec)
	if err != nil {
		return err
	}
	c, r := g.v.Begin(req, now)
	if c != nil {
		if r = addBody(c, ar); r.OK() {
			r = c.Finish(context.Background(), now, g.verifySignature(c))
		}
	}
	decision(res, r)
	return nil
}

// verifySignature asks the host's crypto, as configured, and falls back to
// the core's own when the host has none.
func (g *guest) verifySignature(c *protocol.Check) error {
	if decided, err := g.hostVerdict(c.Device().Key, c.Message(), c.Digest, c.Signature()); decided {
		return err
	}
	return c.VerifySignature()
}

// hostVerdict asks the ecdsa_verify import, unless the configuration keeps
// verification in wasm. decided is false when the guest must verify itself
// (crypto guest, or the host answered unsupported). digest is called only
// when the host wants the guest's digest (abi.CryptoHost).
func (g *guest) hostVerdict(key *protocol.PublicKey, msg []byte, digest func() []byte, sig []byte) (decided bool, err error) {
	if g.crypto == abi.CryptoGuest {
		return false, nil
	}
	var d []byte // nil: the host hashes the message
	if g.crypto == abi.CryptoHost {
		d = digest()
	}
	switch g.host.VerifyECDSA(key.Uncompressed(), msg, d, sig) {
	case abi.SigValid:
		return true, nil
	case abi.SigInvalid:
		return true, errors.New("signature does not verify (host crypto)")
	}
	return false, nil
}

// parseKey reads a public key as records carry it: the 33-byte compressed
// point, or its 44-character base64 or base64url text.
func parseKey(b []byte) (*protocol.PublicKey, error) {
	if len(b) == protocol.PublicKeySize {
		return protocol.ParsePublicKey(b)
	}
	return protocol.DecodePublicKey(string(b))
}

// verifySignatureRecord checks one bare signature (amesh_verify_signature)
// with the protocol's rules and the configured crypto: 200 when valid, 401
// bad_signature when not, 400 malformed_header when the key or the
// signature cannot be decoded. It needs no configuration.
func (g *guest) verifySignatureRecord(rec []byte, res *abi.Result) error {
	c, err := abi.DecodeSignatureCheck(rec)
	if err != nil {
		return err
	}
	malformed := func(err error) error {
		decision(res, protocol.Result{Code: protocol.CodeMalformedHeader, Reason: protocol.ReasonMalformedHeader, Err: err})
		return nil
	}
	key, err := parseKey(c.Key)
	if err != nil {
		return malformed(err)
	}
	sig := c.Signature
	if c.Signature == nil {
		text, err := protocol.DecodeSignatureText(c.SigText)
		if err != nil {
			return malformed(errors.New("signature text is not 64 bytes in unpadded base64url"))
		}
		sig = text[:]
	} else if len(sig) != protocol.SignatureSize {
		return malformed(errors.New("signature is " + strconv.Itoa(len(sig)) + " bytes, want 64"))
	}
	r := protocol.Result{Reason: protocol.ReasonOK}
	if err := g.checkSignature(key, c.Message, sig); err != nil {
		r = protocol.Result{Code: protocol.CodeUnauthorized, Reason: protocol.ReasonBadSignature, Err: err}
	}
	decision(res, r)
	return nil
}

// checkSignature verifies sig over msg with key: the protocol's scalar rules
// in the guest, then ECDSA by the host's crypto as configured, or in wasm.
func (g *guest) checkSignature(key *protocol.PublicKey, msg, sig []byte) error {
	if err := protocol.CheckScalars(sig); err != nil {
		return err
	}
	var d []byte // hashed once, whoever needs it first
	digest := func() []byte {
		if d == nil {
			sum := sha256.Sum256(msg)
			d = sum[:]
		}
		return d
	}
	if decided, err := g.hostVerdict(key, msg, digest, sig); decided {
		return err
	}
	return key.VerifyDigest(digest(), sig)
}

// decision fills res from a verifier result.
func decision(res *abi.Result, r protocol.Result) {
	res.Status = int64(r.Status())
	res.Code = string(r.Code)
	res.Reason = string(r.Reason)
	res.Version = r.Version
	if r.Err != nil {
		res.Detail = r.Err.Error()
	}
	if d := r.Device; d != nil {
		res.DeviceID, res.DeviceName, res.DeviceRole = d.ID, d.Name, d.Role
		res.Key = d.Key.Bytes()
	}
}

// hold stores p under a new handle, or fails when too many are held.
func (g *guest) hold(p *pending) (int64, error) {
	if len(g.pending) >= g.maxPending {
		return 0, errors.New(strconv.Itoa(len(g.pending)) + " prepared calls are pending, the configured limit")
	}
	for {
		g.lastHandle = g.lastHandle%maxHandles + 1
		if g.pending[g.lastHandle] == nil {
			g.pending[g.lastHandle] = p
			return g.lastHandle, nil
		}
	}
}

// prepare runs every check that needs no signature verification. A
// rejection is final; otherwise res carries a handle and what the host
// needs to verify the signature itself.
func (g *guest) prepare(rec []byte, res *abi.Result) error {
	if g.v == nil {
		return errNotConfigured
	}
	req, ar, now, err := g.request(rec)
	if err != nil {
		return err
	}
	c, r := g.v.Begin(req, now)
	if c != nil {
		r = addBody(c, ar)
	}
	if c == nil || !r.OK() {
		decision(res, r)
		return nil
	}
	h, err := g.hold(&pending{check: c, now: now})
	if err != nil {
		// Too many checks in flight is the host's overload, not the
		// client's fault: answer as for an unavailable nonce store.
		decision(res, protocol.Result{Code: protocol.CodeUnavailable, Reason: protocol.ReasonNonceStore,
			Device: c.Device(), Version: r.Version, Err: err})
		return nil
	}
	decision(res, r)
	res.Status, res.Reason = 0, "" // not decided yet
	res.Handle = h
	res.KeyPoint = c.Device().Key.Uncompressed()
	res.Message = c.Message()
	if g.crypto != abi.CryptoHostMessage {
		res.Digest = c.Digest()
	}
	res.Signature = c.Signature()
	res.NonceKey = []byte(c.NonceKey())
	return nil
}

// take removes and returns the pending entry of handle.
func (g *guest) take(handle int64) (*pending, error) {
	p := g.pending[handle]
	if p == nil {
		return nil, errors.New("no pending call with handle " + itoa(handle))
	}
	delete(g.pending, handle)
	return p, nil
}

// commit completes a prepared check with the host's verdict on the
// signature and, optionally, its own nonce answer.
func (g *guest) commit(handle int64, sigStatus, nonceStatus int32, res *abi.Result) error {
	p, err := g.take(handle)
	if err != nil {
		return err
	}
	if p.check == nil {
		return errors.New("handle " + itoa(handle) + " is a signature, not a check")
	}
	if nonceStatus < abi.CommitNonceByGuest || nonceStatus > abi.CommitNonceFailure {
		return errors.New("nonce_status " + itoa(nonceStatus) + " out of range")
	}
	var sigErr error
	switch sigStatus {
	case abi.SigValid:
	case abi.SigInvalid:
		sigErr = errors.New("signature does not verify (host crypto)")
	case abi.SigUnsupported:
		sigErr = g.verifySignature(p.check)
	default:
		return errors.New("sig_status " + itoa(sigStatus) + " out of range")
	}
	g.nonces.override = nonceStatus
	r := p.check.Finish(context.Background(), p.now, sigErr)
	g.nonces.override = abi.CommitNonceByGuest // Finish did not ask: bad signature
	decision(res, r)
	return nil
}

// release drops a pending entry the host will not complete.
func (g *guest) release(handle int64) {
	delete(g.pending, handle)
}

// signParams turns a signing record into protocol parameters with the time
// and nonce fixed, so that they can be replayed exactly by signFinish.
func (g *guest) signParams(rec []byte) (*protocol.SignParams, []byte, error) {
	sp, err := abi.DecodeSignParams(rec)
	if err != nil {
		return nil, nil, err
	}
	if len(sp.Key) != protocol.PublicKeySize {
		return nil, nil, errors.New("signer key of " + strconv.Itoa(len(sp.Key)) + " bytes, want " + strconv.Itoa(protocol.PublicKeySize))
	}
	// The record's bytes alias the host's input buffer, which the next call
	// overwrites; a prepared signature outlives this call, so it copies.
	p := &protocol.SignParams{Version: sp.Version, Method: sp.Method, Target: sp.Target,
		Body: bytes.Clone(sp.Body), Nonce: bytes.Clone(sp.Nonce)}
	if sp.URL != "" {
		if p.Target, err = protocol.RequestTarget(sp.URL); err != nil {
			return nil, nil, err
		}
	}
	if sp.Authority != "" {
		// Without a scheme no default port is removed: the host passed an
		// authority it already normalised (protocol.SignParams.Authority).
		if p.Authority, err = protocol.Authority(sp.Authority, sp.Scheme); err != nil {
			return nil, nil, err
		}
	}
	ms := sp.NowMs
	if !sp.HasNow {
		ms = g.host.NowMs()
	}
	p.Time = time.UnixMilli(ms)
	if p.Nonce == nil {
		p.Nonce = make([]byte, 16)
		if err := g.host.Random(p.Nonce); err != nil {
			return nil, nil, wrap("nonce", err)
		}
	}
	return p, bytes.Clone(sp.Key), nil
}

// signed fills res from a signature.
func signed(res *abi.Result, p *protocol.SignParams, s *protocol.Signed) {
	res.Authorization = s.Authorization
	res.Message = s.Canonical
	res.Target = p.Target
	res.TS = strconv.FormatInt(p.Time.Unix(), 10)
	res.Nonce = base64.RawURLEncoding.EncodeToString(p.Nonce)
}

// hostSigner is a protocol.Signer whose private key stays with the host.
type hostSigner struct {
	host Host
	key  []byte
}

func (s hostSigner) PublicKey() []byte { return s.key }

func (s hostSigner) SignDigest(digest []byte) ([]byte, error) {
	var out [protocol.SignatureSize]byte
	switch s.host.SignDigest(s.key, digest, &out) {
	case abi.SignOK:
		return out[:], nil
	case abi.SignNoKey:
		return nil, errors.New("the host holds no signer for this key")
	}
	return nil, errors.New("the host's signer failed")
}

// sign signs a request with the host's key through the sign_digest import.
func (g *guest) sign(rec []byte, res *abi.Result) error {
	p, key, err := g.signParams(rec)
	if err != nil {
		return err
	}
	s, err := protocol.SignRequest(hostSigner{g.host, key}, *p)
	if err != nil {
		return err
	}
	signed(res, p, s)
	return nil
}

// signPrepare builds the canonical string of a request for a host that
// signs asynchronously (WebCrypto); signFinish completes it.
func (g *guest) signPrepare(rec []byte, res *abi.Result) error {
	p, key, err := g.signParams(rec)
	if err != nil {
		return err
	}
	// SignRequest validates the parameters and computes the digest; the
	// capturing signer stops it there. The canonical string the host signs
	// is rebuilt from the same parts and must hash to that digest, and
	// signFinish re-runs SignRequest to the same digest again: the three
	// cannot silently diverge.
	c := &capturingSigner{key: key}
	if _, err := protocol.SignRequest(c, *p); !errors.Is(err, errCaptured) {
		if err == nil {
			err = errors.New("signing did not ask for a signature")
		}
		return err
	}
	target, err := protocol.CanonicalTarget(p.Target)
	if err != nil {
		return err
	}
	version := p.Version
	if version == "" {
		version = protocol.Version1
	}
	m := protocol.Message{Version: version, Method: p.Method, Authority: p.Authority, Target: target,
		TS: strconv.FormatInt(p.Time.Unix(), 10), Nonce: base64.RawURLEncoding.EncodeToString(p.Nonce),
		BodyHash: protocol.BodyHash(p.Body)}
	msg, err := m.Bytes()
	if err != nil {
		return err
	}
	if digest := sha256.Sum256(msg); string(digest[:]) != string(c.digest) {
		return errors.New("canonical string does not match the digest being signed")
	}
	h, err := g.hold(&pending{sign: p, key: key, digest: c.digest})
	if err != nil {
		return err
	}
	res.Handle = h
	res.Message = msg
	res.Digest = c.digest
	res.Key = key
	res.Target = p.Target
	res.TS = m.TS
	res.Nonce = m.Nonce
	return nil
}

// errCaptured stops SignRequest once it has asked for a signature.
var errCaptured = errors.New("digest captured")

// capturingSigner records the digest SignRequest asks it to sign.
type capturingSigner struct {
	key, digest []byte
}

func (s *capturingSigner) PublicKey() []byte { return s.key }

func (s *capturingSigner) SignDigest(digest []byte) ([]byte, error) {
	s.digest = bytes.Clone(digest)
	return nil, errCaptured
}

// givenSigner answers with the signature the host produced for digest.
type givenSigner struct {
	key, digest, sig []byte
}

func (s givenSigner) PublicKey() []byte { return s.key }

func (s givenSigner) SignDigest(digest []byte) ([]byte, error) {
	if string(digest) != string(s.digest) {
		return nil, errors.New("canonical string changed between sign_prepare and sign_finish")
	}
	return s.sig, nil
}

// signFinish completes a prepared signature with the host's r||s.
func (g *guest) signFinish(handle int64, sig []byte, res *abi.Result) error {
	p, err := g.take(handle)
	if err != nil {
		return err
	}
	if p.sign == nil {
		return errors.New("handle " + itoa(handle) + " is a check, not a signature")
	}
	if len(sig) != protocol.SignatureSize {
		return errors.New("signature of " + strconv.Itoa(len(sig)) + " bytes, want " + strconv.Itoa(protocol.SignatureSize))
	}
	s, err := protocol.SignRequest(givenSigner{p.key, p.digest, sig}, *p.sign)
	if err != nil {
		return err
	}
	signed(res, p.sign, s)
	return nil
}

// call runs one export's work and leaves its result record in g.out, after
// four bytes for its length. A panic becomes an error result, so that a
// bug in the guest costs one request and not the instance.
func (g *guest) call(work func(res *abi.Result) error) []byte {
	var res abi.Result
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = errors.New("guest panic: " + panicText(p))
				g.host.Log(abi.LogError, "amesh.wasm: "+err.Error())
			}
		}()
		return work(&res)
	}()
	if err != nil {
		res = abi.Result{Error: err.Error()}
	}
	g.out.Buf = append(g.out.Buf[:0], 0, 0, 0, 0)
	res.Encode(&g.out)
	n := uint32(len(g.out.Buf) - 4)
	g.out.Buf[0], g.out.Buf[1], g.out.Buf[2], g.out.Buf[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return g.out.Buf
}

// The guest does not import fmt, which would link reflect into amesh.wasm
// (see the package documentation of wasm/protocol); these stand in for it.

// wrap is errwrap.Wrap: fmt.Errorf("prefix: %w", err) without fmt.
var wrap = errwrap.Wrap

// itoa formats a number from a record or an export's arguments.
func itoa[T ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

// panicText formats a recovered panic value as fmt's %v does for what
// panics carry: errors (runtime errors included), Stringers, strings and
// integers. Anything else would need reflect to print.
func panicText(p any) string {
	switch v := p.(type) {
	case error:
		return v.Error()
	case interface{ String() string }:
		return v.String()
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	}
	return "a value that is not an error, a string or an int"
}
