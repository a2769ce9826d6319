package protocol

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amesh-go/amesh/wasm/internal/sha256"
)

// Roles of a device in an allow list. Only controllers may sign requests;
// a target is a device this one controls.
const (
	RoleController = "controller"
	RoleTarget     = "target"
)

// Device is an allow-list entry.
type Device struct {
	ID   string // "am_…", derived from Key
	Name string // friendly name, for people and logs
	Role string // RoleController or RoleTarget
	Key  *PublicKey
}

// AllowList finds devices by public key. Lookup returns (nil, nil) for an
// unknown key; an error means the list cannot be trusted (for example a
// failed integrity check) and makes the verifier answer 500.
type AllowList interface {
	Lookup(key [PublicKeySize]byte) (*Device, error)
}

// StaticAllowList is an AllowList held in memory.
type StaticAllowList map[[PublicKeySize]byte]*Device

// NewStaticAllowList builds a StaticAllowList, filling in missing device IDs.
func NewStaticAllowList(devices ...*Device) (StaticAllowList, error) {
	l := make(StaticAllowList, len(devices))
	for _, d := range devices {
		if d == nil || d.Key == nil {
			return nil, errors.New("amesh: allow list entry without a key")
		}
		if d.ID == "" {
			d.ID = d.Key.DeviceID()
		}
		l[d.Key.Array()] = d
	}
	return l, nil
}

// Lookup implements AllowList.
func (l StaticAllowList) Lookup(key [PublicKeySize]byte) (*Device, error) {
	return l[key], nil
}

// Defaults of Config.
const (
	DefaultClockSkew    = 30 * time.Second
	DefaultNonceTTL     = 60 * time.Second
	DefaultMaxBodyBytes = 1 << 20
)

// Config configures a Verifier. AllowList and Nonces are required.
type Config struct {
	AllowList AllowList
	Nonces    NonceStore
	// ClockSkew is the largest accepted |now - ts|. Zero means 30 s.
	ClockSkew time.Duration
	// NonceTTL is how long a nonce stays recorded. Zero means 60 s; it is
	// raised to 2 × ClockSkew if lower, the time a request stays valid.
	NonceTTL time.Duration
	// MaxBodyBytes is the largest accepted body. Zero means 1 MiB.
	MaxBodyBytes int64
	// Authorities are the host[:port] names this verifier answers for.
	// When set, a version 2 request signed for any other authority is
	// rejected. When empty, version 2 requests are checked against their own
	// Host header only, which binds nothing: configure authorities.
	Authorities []string
	// RequireV2 rejects version 1 requests (400 unsupported_version).
	RequireV2 bool
}

// Verifier makes the decision of docs/PROTOCOL.md for one request at a
// time. It is safe for concurrent use.
type Verifier struct {
	cfg         Config
	skewSeconds int64
	ttl         time.Duration
	// authorities maps each configured authority, normalised for a scheme,
	// to the schemes (schemeHTTP, schemeHTTPS) it is configured for.
	authorities map[string]uint8
}

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.AllowList == nil {
		return nil, errors.New("amesh: verifier needs an allow list")
	}
	if cfg.Nonces == nil {
		return nil, errors.New("amesh: verifier needs a nonce store")
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.ClockSkew < time.Second {
		return nil, errors.New("amesh: clock skew " + cfg.ClockSkew.String() + " is below one second")
	}
	if cfg.NonceTTL == 0 {
		cfg.NonceTTL = DefaultNonceTTL
	}
	if cfg.NonceTTL < 0 {
		return nil, errors.New("amesh: negative nonce TTL")
	}
	cfg.NonceTTL = max(cfg.NonceTTL, 2*cfg.ClockSkew)
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, errors.New("amesh: negative body limit")
	}
	v := &Verifier{cfg: cfg, skewSeconds: int64(cfg.ClockSkew / time.Second), ttl: cfg.NonceTTL}
	if len(cfg.Authorities) > 0 {
		v.authorities = make(map[string]uint8)
		for _, a := range cfg.Authorities {
			for _, scheme := range [...]string{"http", "https"} {
				n, err := Authority(a, scheme)
				if err != nil {
					return nil, wrap("amesh: configured authority "+strconv.Quote(a), err)
				}
				v.authorities[n] |= schemeBit(scheme)
			}
		}
	}
	return v, nil
}

const (
	schemeHTTP = 1 << iota
	schemeHTTPS
)

// schemeBit returns the bit of scheme in Verifier.authorities: none for a
// scheme other than "http" and "https", spelled so.
func schemeBit(scheme string) uint8 {
	switch scheme {
	case "http":
		return schemeHTTP
	case "https":
		return schemeHTTPS
	}
	return 0
}

// Config returns the effective configuration, defaults filled in.
func (v *Verifier) Config() Config {
	c := v.cfg
	c.Authorities = slices.Clone(c.Authorities)
	return c
}

// Request is what the verifier needs of an HTTP request.
type Request struct {
	Method string
	// Target is the request-target exactly as it arrived ("/api/x?y=1"),
	// not a path a router has already stripped or decoded.
	Target string
	// Host is the Host header (HTTP/1.1) or :authority (HTTP/2, 3).
	Host string
	// Scheme is "http" or "https", for the default port of Host. Empty
	// means "https".
	Scheme string
	// Authorization holds every Authorization header value received.
	Authorization []string
	// Body is the exact body bytes.
	Body []byte
}

// Result is the outcome of a decision.
type Result struct {
	// Code is the public error code, empty when the request is accepted.
	Code Code
	// Reason is the private reason, for the server's log only.
	Reason Reason
	// Device is the authenticated device, or for some rejections the
	// device the request claimed to come from.
	Device *Device
	// Version is the protocol version of the request, when it parsed.
	Version string
	// Err carries details for the log.
	Err error
}

// OK reports whether the request was accepted.
func (r Result) OK() bool { return r.Code == "" }

// Status returns the HTTP status for the result.
func (r Result) Status() int { return r.Code.Status() }

func reject(code Code, reason Reason, err error) Result {
	return Result{Code: code, Reason: reason, Err: err}
}

// Check is a decision in progress. Begin runs the checks that need no body,
// AddBody the ones that do, and Finish records the nonce once the signature
// has been verified. The split lets a caller avoid reading the body of a
// request it is going to reject anyway, and lets hosts with asynchronous
// crypto verify the signature between AddBody and Finish.
type Check struct {
	v      *Verifier
	header Header
	device *Device
	target string
	auth   string
	method string
	// The canonical string: in msgBuf when it fits, so that a Check on
	// Verify's stack costs no allocation for it, else in msgHeap.
	msgBuf  [maxStackMessage]byte
	msgLen  int
	msgHeap []byte
	digest  [sha256.Size]byte
	hashed  bool // digest holds the SHA-256 of message
	ready   bool
}

// Verify runs the whole decision for req at time now.
func (v *Verifier) Verify(ctx context.Context, req *Request, now time.Time) Result {
	var c Check // on the stack: no Check method lets it escape
	if res, ok := v.begin(&c, req, now); !ok {
		return res
	}
	if res := c.AddBody(req.Body); !res.OK() {
		return res
	}
	return c.Finish(ctx, now, c.VerifySignature())
}

// Begin parses the header and checks version, key, role, time window,
// audience and target. It returns a nil Check with the rejection, or a Check
// to continue with.
func (v *Verifier) Begin(req *Request, now time.Time) (*Check, Result) {
	c := new(Check)
	res, ok := v.begin(c, req, now)
	if !ok {
		return nil, res
	}
	return c, res
}

// begin is Begin into a Check the caller provides.
func (v *Verifier) begin(c *Check, req *Request, now time.Time) (Result, bool) {
	c.v = v
	h := &c.header
	if err := parseAuthorization(h, req.Authorization); err != nil {
		var he *HeaderError
		errors.As(err, &he)
		return reject(he.Code, Reason(he.Code), err), false
	}
	if v.cfg.RequireV2 && h.V == Version1 {
		return Result{Code: CodeUnsupportedVersion, Reason: ReasonVersionNotAllowed, Version: h.V,
			Err: errors.New("version 1 request, this verifier requires version 2")}, false
	}
	dev, err := v.cfg.AllowList.Lookup(h.Key)
	if err != nil {
		return Result{Code: CodeIntegrityFailure, Reason: ReasonIntegrity, Version: h.V, Err: err}, false
	}
	if dev == nil {
		// The header parser checks only the cheap part of point validity;
		// an unknown key gets the full check so that garbage is reported
		// as malformed, as ParseHeader would. (A copy of the key, so that
		// c can stay on Verify's stack.)
		key := h.Key
		if _, err := ParsePublicKey(key[:]); err != nil {
			return Result{Code: CodeMalformedHeader, Reason: ReasonMalformedHeader, Version: h.V, Err: err}, false
		}
		return Result{Code: CodeUnauthorized, Reason: ReasonUnknownKey, Version: h.V,
			Err: errors.New("key " + h.ID + " (" + DeviceID(key[:]) + ") is not in the allow list")}, false
	}
	fail := func(reason Reason, err error) (Result, bool) {
		return Result{Code: CodeUnauthorized, Reason: reason, Device: dev, Version: h.V, Err: err}, false
	}
	if dev.Role != RoleController {
		return fail(ReasonRoleRejected, errors.New("device "+dev.ID+" has role "+strconv.Quote(dev.Role)+", not controller"))
	}
	if d := now.Unix() - h.Timestamp; d > v.skewSeconds || d < -v.skewSeconds {
		return fail(ReasonTimestampRange, errors.New("ts "+strconv.FormatInt(h.Timestamp, 10)+" is "+strconv.FormatInt(d, 10)+
			"s from now, allowed ±"+strconv.FormatInt(v.skewSeconds, 10)+"s"))
	}
	c.device = dev
	if h.V == Version2 {
		scheme := req.Scheme
		if scheme == "" {
			scheme = "https"
		}
		c.auth, err = Authority(req.Host, scheme)
		if err != nil {
			return fail(ReasonWrongAudience, err)
		}
		if v.authorities != nil && v.authorities[c.auth]&schemeBit(scheme) == 0 {
			return fail(ReasonWrongAudience, errors.New("authority "+strconv.Quote(c.auth)+" is not one this verifier answers for"))
		}
	}
	if c.target, err = CanonicalTarget(req.Target); err != nil {
		return fail(ReasonBadTarget, err)
	}
	if c.method, err = canonicalMethod(req.Method); err != nil {
		return fail(ReasonBadTarget, err)
	}
	return Result{Device: dev, Version: h.V}, true
}

// MaxBodyBytes returns the body limit; callers reading a body stream should
// read at most one byte more and pass what they read to AddBody.
func (v *Verifier) MaxBodyBytes() int64 { return v.cfg.MaxBodyBytes }

// AddBody checks the body against the limit, builds the canonical string and
// checks the signature's form (lengths, ranges, low-S).
func (c *Check) AddBody(body []byte) Result {
	if res, ok := c.checkSize(int64(len(body))); !ok {
		return res // before hashing: an oversized body is not worth it
	}
	return c.AddBodyDigest(int64(len(body)), sha256.Sum256(body))
}

// AddBodyDigest is AddBody for a caller that hashed the body itself: size
// is the body's length in bytes and sum its SHA-256. It lets the amesh.wasm
// guest take the digest from its native host, whose SHA-256 is some twenty
// times faster than Go's compiled to wasm; the host supplies the body
// either way, so trusting its digest trusts it with nothing new.
func (c *Check) AddBodyDigest(size int64, sum [sha256.Size]byte) Result {
	res, ok := c.checkSize(size)
	if !ok {
		return res
	}
	h := &c.header
	// Begin has checked every field: the version is known, the method is a
	// token, the target canonical (so percent-encoded), ts digits, the nonce
	// base64url and the authority normalised. None holds a line break.
	n := messageHeadLen(h.V, c.method, c.auth, c.target, h.TS, h.Nonce) + 2*sha256.Size
	c.msgLen, c.msgHeap, c.hashed = n, nil, false
	if n <= len(c.msgBuf) {
		// Only the length is kept: a slice of msgBuf stored in c would
		// send c to the heap.
		appendLowerHex(appendMessageHead(c.msgBuf[:0], h.V, c.method, c.auth, c.target, h.TS, h.Nonce), sum[:])
	} else {
		c.msgHeap = appendLowerHex(appendMessageHead(make([]byte, 0, n), h.V, c.method, c.auth, c.target, h.TS, h.Nonce), sum[:])
	}
	if err := checkScalars(&h.Signature); err != nil {
		res.Code, res.Reason, res.Err = CodeUnauthorized, ReasonBadSignature, err
		return res
	}
	c.ready = true
	return res
}

// checkSize applies the body limit.
func (c *Check) checkSize(size int64) (Result, bool) {
	res := Result{Device: c.device, Version: c.header.V}
	if size > c.v.cfg.MaxBodyBytes || size < 0 {
		res.Code, res.Reason = CodePayloadTooLarge, ReasonPayloadTooLarge
		res.Err = errors.New("body of " + strconv.FormatInt(size, 10) + " bytes, limit " + strconv.FormatInt(c.v.cfg.MaxBodyBytes, 10))
		return res, false
	}
	return res, true
}

// Message returns the canonical string (after AddBody).
func (c *Check) Message() []byte {
	if c.msgHeap != nil {
		return c.msgHeap
	}
	return c.msgBuf[:c.msgLen]
}

// maxStackMessage is the longest canonical string a Check holds in itself:
// enough for most requests (those with a TARGET of up to about 100 bytes).
const maxStackMessage = 256

// Digest returns the SHA-256 of the canonical string (after AddBody). It
// is computed on first use: a host that verifies over the message itself
// (node:crypto, WebCrypto) never needs the guest to hash it in wasm.
func (c *Check) Digest() []byte {
	if !c.hashed {
		c.digest = sha256.Sum256(c.Message())
		c.hashed = true
	}
	return c.digest[:]
}

// Signature returns the raw r||s signature from the header.
func (c *Check) Signature() []byte { return c.header.Signature[:] }

// Header returns the parsed Authorization header.
func (c *Check) Header() *Header { return &c.header }

// Device returns the allow-list entry of the signing key.
func (c *Check) Device() *Device { return c.device }

// NonceKey returns the key under which the nonce is recorded: the public key
// followed by the decoded nonce, so that nonces of different devices never
// collide.
func (c *Check) NonceKey() string {
	var b strings.Builder // one allocation, where concatenating conversions makes two
	h := &c.header
	b.Grow(len(h.Key) + h.nonceLen)
	b.Write(h.Key[:])
	b.Write(h.NonceBytes())
	return b.String()
}

// VerifySignature verifies the signature over the canonical string.
func (c *Check) VerifySignature() error {
	if !c.ready {
		return errors.New("amesh: signature checked before AddBody succeeded")
	}
	// AddBody has checked the scalars (ready says so).
	if !verifyECDSA(c.device.Key, c.Digest(), &c.header.Signature) {
		return errors.New("signature does not verify")
	}
	return nil
}

// Finish completes the decision. sigErr is the outcome of the signature
// verification (nil: valid). Only a valid signature records the nonce, so
// that nobody without the key can burn nonces or fill the store.
func (c *Check) Finish(ctx context.Context, now time.Time, sigErr error) Result {
	res := Result{Device: c.device, Version: c.header.V}
	if !c.ready {
		res.Code, res.Reason = CodeUnauthorized, ReasonBadSignature
		res.Err = errors.New("amesh: Finish called before AddBody succeeded")
		return res
	}
	if sigErr != nil {
		res.Code, res.Reason, res.Err = CodeUnauthorized, ReasonBadSignature, sigErr
		return res
	}
	fresh, err := c.v.cfg.Nonces.Record(ctx, c.NonceKey(), now, c.v.ttl)
	switch {
	case err != nil:
		res.Code, res.Reason, res.Err = CodeUnavailable, ReasonNonceStore, err
	case !fresh:
		res.Code, res.Reason, res.Err = CodeUnauthorized, ReasonReplay, errors.New("nonce "+c.header.Nonce+" already used")
	default:
		res.Reason = ReasonOK
	}
	return res
}
