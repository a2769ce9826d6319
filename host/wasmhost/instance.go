package wasmhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// ReasonEngine is the private reason of a 503 answered because amesh.wasm
// could not decide (a trapped instance, a closed pool, a cancelled wait).
const ReasonEngine protocol.Reason = "wasm_engine_unavailable"

// Config is the verifier configuration of an instance: protocol.Config
// with the allow list as data, since the guest holds its own copy.
type Config struct {
	// AllowList is the allow list. A nil list is empty.
	AllowList protocol.StaticAllowList
	// IntegrityFailure makes every lookup fail, as a list that failed its
	// integrity check does: requests get 500 allow_list_integrity_failure.
	IntegrityFailure bool
	// Nonces is the nonce store, called through the nonce_record import.
	// Nil keeps nonces inside the guest, which is right for one instance
	// only: a Verifier requires a store shared by its pool.
	Nonces protocol.NonceStore
	// ClockSkew, NonceTTL, MaxBodyBytes, Authorities and RequireV2 are
	// those of protocol.Config.
	ClockSkew    time.Duration
	NonceTTL     time.Duration
	MaxBodyBytes int64
	Authorities  []string
	RequireV2    bool
	// PureWasm verifies signatures and hashes bodies inside the guest
	// instead of with the host's crypto (about 0.7 ms per request instead
	// of 0.07 ms, and 14 ms per MiB of body instead of 0.5 ms): the mode of
	// a host that has no crypto to lend.
	PureWasm bool
	// MaxPending bounds prepared checks held by the guest; zero means 1024.
	MaxPending int
	// NonceCapacity is the capacity of the guest's own nonce store (when
	// Nonces is nil); zero means protocol.DefaultNonceCapacity.
	NonceCapacity int
}

// record encodes c as the guest's configuration record.
func (c *Config) record() []byte {
	ac := abi.Config{
		IntegrityFailure: c.IntegrityFailure,
		Authorities:      c.Authorities,
		RequireV2:        c.RequireV2,
		ClockSkewMs:      c.ClockSkew.Milliseconds(),
		NonceTTLMs:       c.NonceTTL.Milliseconds(),
		MaxBodyBytes:     c.MaxBodyBytes,
		NonceCapacity:    int64(c.NonceCapacity),
		MaxPending:       int64(c.MaxPending),
	}
	if c.Nonces != nil {
		ac.NonceStore = abi.NonceStoreHost
	}
	// Go's native SHA-256 hashes the canonical string in a fraction of
	// what the guest's compiled to wasm takes.
	ac.Crypto = abi.CryptoHostMessage
	if c.PureWasm {
		ac.Crypto = abi.CryptoGuest
	}
	for _, d := range c.AllowList {
		ac.AllowList = append(ac.AllowList, abi.AllowEntry{Key: d.Key.Bytes(), Role: d.Role, ID: d.ID, Name: d.Name})
	}
	var e abi.Encoder
	ac.Encode(&e)
	return e.Buf
}

// Instance is one instantiated amesh.wasm. It is not safe for concurrent
// use: a wasm instance runs one call at a time (a Verifier pools them).
type Instance struct {
	eng   *Engine
	mod   api.Module
	fn    exports
	in    uint32 // guest buffer for input records, from amesh_alloc
	inCap uint32
	enc   abi.Encoder
	res   []byte // copy of the last result record
	stack [4]uint64
	state callState
	list  protocol.StaticAllowList
	// configured is set once a configuration was accepted.
	configured bool
	// pure is Config.PureWasm: everything, body hashing included, in wasm.
	pure bool
	// broken is set when a call trapped: the guest's state is unknown, so
	// the instance must be closed and replaced.
	broken error
}

type exports struct {
	alloc, free, configure, verify, prepare, commit, release, sign, signPrepare, signFinish, verifySignature api.Function
}

// NewInstance instantiates the module and checks its ABI version. It costs
// some 10 to 30 ms and a few MB: pool instances, never create one per
// request.
func (e *Engine) NewInstance(ctx context.Context) (*Instance, error) {
	mod, err := e.rt.InstantiateModule(ctx, e.compiled, e.moduleConfig())
	if err != nil {
		return nil, fmt.Errorf("wasmhost: instantiate amesh.wasm: %w", err)
	}
	i := &Instance{eng: e, mod: mod}
	i.state.inst = i
	names := map[string]*api.Function{
		"amesh_alloc": &i.fn.alloc, "amesh_free": &i.fn.free, "amesh_configure": &i.fn.configure,
		"amesh_verify": &i.fn.verify, "amesh_prepare": &i.fn.prepare, "amesh_commit": &i.fn.commit,
		"amesh_release": &i.fn.release, "amesh_sign": &i.fn.sign, "amesh_sign_prepare": &i.fn.signPrepare,
		"amesh_sign_finish": &i.fn.signFinish, "amesh_verify_signature": &i.fn.verifySignature,
	}
	for name, f := range names {
		if *f = mod.ExportedFunction(name); *f == nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("wasmhost: amesh.wasm does not export %s", name)
		}
	}
	version := mod.ExportedFunction("amesh_abi_version")
	if version == nil {
		mod.Close(ctx)
		return nil, errors.New("wasmhost: amesh.wasm does not export amesh_abi_version")
	}
	v, err := version.Call(ctx)
	if err != nil || len(v) != 1 || int32(v[0]) != abi.Version {
		mod.Close(ctx)
		return nil, fmt.Errorf("wasmhost: amesh.wasm ABI version %v (%v), want %d", v, err, abi.Version)
	}
	return i, nil
}

// Close releases the instance.
func (i *Instance) Close(ctx context.Context) error {
	if err := i.mod.Close(ctx); err != nil {
		return fmt.Errorf("wasmhost: close instance: %w", err)
	}
	return nil
}

// Broken returns the error that made the instance unusable, or nil.
func (i *Instance) Broken() error { return i.broken }

// invoke calls fn with args and returns the guest's result record.
func (i *Instance) invoke(ctx context.Context, fn api.Function, args ...uint64) (*abi.Result, error) {
	if i.broken != nil {
		return nil, i.broken
	}
	ctx = context.WithValue(ctx, stateKey{}, &i.state)
	copy(i.stack[:], args)
	if err := fn.CallWithStack(ctx, i.stack[:]); err != nil {
		i.broken = fmt.Errorf("wasmhost: amesh.wasm trapped in %s: %w", fn.Definition().ExportNames(), err)
		return nil, i.broken
	}
	ptr := api.DecodeU32(i.stack[0])
	mem := i.mod.Memory()
	n, ok := mem.ReadUint32Le(ptr)
	var view []byte
	if ok {
		view, ok = mem.Read(ptr+4, n)
	}
	if !ok || ptr == 0 {
		i.broken = fmt.Errorf("wasmhost: amesh.wasm returned a result outside its memory (%d)", ptr)
		return nil, i.broken
	}
	// The view aliases guest memory, which the next call reuses.
	i.res = append(i.res[:0], view...)
	res, err := abi.DecodeResult(i.res)
	if err != nil {
		i.broken = fmt.Errorf("wasmhost: amesh.wasm result: %w", err)
		return nil, i.broken
	}
	if res.Error != "" {
		return res, fmt.Errorf("wasmhost: amesh.wasm: %s", res.Error)
	}
	return res, nil
}

// input copies a record into the instance's input buffer, growing it with
// amesh_alloc as needed, and returns its address.
func (i *Instance) input(ctx context.Context, rec []byte) (uint32, error) {
	if uint64(len(rec)) > abi.MaxRecordSize {
		return 0, fmt.Errorf("wasmhost: record of %d bytes exceeds the ABI limit", len(rec))
	}
	if uint32(len(rec)) > i.inCap || i.in == 0 {
		if i.in != 0 {
			i.stack[0] = uint64(i.in)
			if err := i.fn.free.CallWithStack(ctx, i.stack[:]); err != nil {
				i.broken = fmt.Errorf("wasmhost: amesh_free: %w", err)
				return 0, i.broken
			}
			i.in, i.inCap = 0, 0
		}
		size := max(uint32(len(rec)), 2*i.inCap, 4096)
		i.stack[0] = uint64(size)
		if err := i.fn.alloc.CallWithStack(ctx, i.stack[:]); err != nil || api.DecodeU32(i.stack[0]) == 0 {
			i.broken = fmt.Errorf("wasmhost: amesh_alloc(%d) failed: %v", size, err)
			return 0, i.broken
		}
		i.in, i.inCap = api.DecodeU32(i.stack[0]), size
	}
	if !i.mod.Memory().Write(i.in, rec) {
		i.broken = errors.New("wasmhost: input buffer outside guest memory")
		return 0, i.broken
	}
	return i.in, nil
}

// call encodes a record with fill, passes it to fn and returns the result.
func (i *Instance) call(ctx context.Context, fn api.Function, fill func(*abi.Encoder)) (*abi.Result, error) {
	i.enc.Buf = i.enc.Buf[:0]
	fill(&i.enc)
	ptr, err := i.input(ctx, i.enc.Buf)
	if err != nil {
		return nil, err
	}
	return i.invoke(ctx, fn, uint64(ptr), uint64(len(i.enc.Buf)))
}

// Configure replaces the guest's configuration. On error the previous
// configuration stays in force.
func (i *Instance) Configure(ctx context.Context, cfg *Config) error {
	return i.configureRecord(ctx, cfg, cfg.record())
}

func (i *Instance) configureRecord(ctx context.Context, cfg *Config, rec []byte) error {
	ptr, err := i.input(ctx, rec)
	if err != nil {
		return err
	}
	if _, err := i.invoke(ctx, i.fn.configure, uint64(ptr), uint64(len(rec))); err != nil {
		return fmt.Errorf("wasmhost: configure: %w", err)
	}
	i.list = cfg.AllowList
	i.pure = cfg.PureWasm
	i.state.nonces = cfg.Nonces
	i.configured = true
	return nil
}

// unavailable is the answer when the engine cannot decide: fail closed.
func unavailable(err error) protocol.Result {
	return protocol.Result{Code: protocol.CodeUnavailable, Reason: ReasonEngine, Err: err}
}

// requestRecord builds the guest's request record. Unless the instance is
// configured for pure wasm, the body travels as its SHA-256 and length:
// hashing natively is some twenty times faster than in wasm, and the body
// need not be copied into guest memory.
func (i *Instance) requestRecord(req *protocol.Request, now time.Time) abi.Request {
	r := abi.Request{Method: req.Method, Target: req.Target, Host: req.Host, Scheme: req.Scheme,
		Authorization: req.Authorization, Body: req.Body, NowMs: now.UnixMilli(), HasNow: true}
	if !i.pure && len(req.Body) > 0 {
		sum := sha256.Sum256(req.Body)
		r.Body, r.BodySHA256, r.BodySize = nil, sum[:], int64(len(req.Body))
	}
	return r
}

// Verify makes the decision of protocol.Verifier.Verify inside the guest.
func (i *Instance) Verify(ctx context.Context, req *protocol.Request, now time.Time) protocol.Result {
	return i.verify(ctx, i.requestRecord(req, now))
}

// VerifyDigest is Verify for a body the caller hashed (or, for a body it
// knows to be over the limit, did not read): size is its length and sum
// its SHA-256; req.Body is ignored.
func (i *Instance) VerifyDigest(ctx context.Context, req *protocol.Request, size int64, sum [sha256.Size]byte, now time.Time) protocol.Result {
	r := i.requestRecord(&protocol.Request{Method: req.Method, Target: req.Target, Host: req.Host, Scheme: req.Scheme,
		Authorization: req.Authorization}, now)
	r.BodySHA256, r.BodySize = sum[:], size
	return i.verify(ctx, r)
}

func (i *Instance) verify(ctx context.Context, r abi.Request) protocol.Result {
	if !i.configured {
		return unavailable(errors.New("wasmhost: instance not configured"))
	}
	i.state.nonceErr = nil
	res, err := i.call(ctx, i.fn.verify, r.Encode)
	if err != nil {
		return unavailable(err)
	}
	return i.decision(res)
}

// VerifySignature checks one bare signature inside the guest with the
// protocol's rules (r and s in range, low-S, a key on the curve) and the
// configured crypto. c holds the key (33 bytes, or its base64 or base64url
// text), the message, and the signature (64-byte r||s, or its text as a
// header carries it). The result is OK when the signature is valid, 401
// bad_signature when not, and 400 malformed_header when the key or the
// signature cannot be decoded. It needs no configuration.
func (i *Instance) VerifySignature(ctx context.Context, c *abi.SignatureCheck) protocol.Result {
	res, err := i.call(ctx, i.fn.verifySignature, c.Encode)
	if err != nil {
		return unavailable(err)
	}
	return i.decision(res)
}

// decision converts a guest decision to a protocol.Result, with the
// host's own allow-list entry as Device.
func (i *Instance) decision(res *abi.Result) protocol.Result {
	r := protocol.Result{Code: protocol.Code(res.Code), Reason: protocol.Reason(res.Reason), Version: res.Version}
	if res.Detail != "" {
		r.Err = errors.New(res.Detail)
	}
	if r.Reason == protocol.ReasonNonceStore && i.state.nonceErr != nil {
		r.Err = fmt.Errorf("%s: %w", res.Detail, i.state.nonceErr)
	}
	if len(res.Key) == protocol.PublicKeySize {
		r.Device = i.list[[protocol.PublicKeySize]byte(res.Key)]
	}
	if r.Code.Status() != int(res.Status) && res.Status != 0 {
		// Not expected from amesh.wasm; the code decides, and the log says.
		r.Err = errors.Join(r.Err, fmt.Errorf("wasmhost: guest status %d disagrees with code %q", res.Status, res.Code))
	}
	return r
}

// Prepared is a check that passed everything but the signature: the host
// verifies Signature over Message (or Digest) with KeyPoint, then calls
// Commit, or Release to abandon it.
type Prepared struct {
	Handle    uint32
	KeyPoint  []byte // 65-byte uncompressed public key
	Message   []byte // canonical string
	Digest    []byte // SHA-256 of Message
	Signature []byte // 64-byte r||s
	NonceKey  []byte
	Device    *protocol.Device
	Version   string
}

// Prepare runs the checks that need no signature verification. It returns
// either a Prepared check (and a zero Result, which is not a decision) or
// nil and the final rejection.
func (i *Instance) Prepare(ctx context.Context, req *protocol.Request, now time.Time) (*Prepared, protocol.Result) {
	if !i.configured {
		return nil, unavailable(errors.New("wasmhost: instance not configured"))
	}
	r := i.requestRecord(req, now)
	res, err := i.call(ctx, i.fn.prepare, r.Encode)
	if err != nil {
		return nil, unavailable(err)
	}
	if res.Handle == 0 {
		return nil, i.decision(res)
	}
	if res.Handle < 0 || res.Handle > 1<<31-1 {
		i.broken = fmt.Errorf("wasmhost: amesh.wasm returned handle %d", res.Handle)
		return nil, unavailable(i.broken)
	}
	p := &Prepared{Handle: uint32(res.Handle), KeyPoint: res.KeyPoint, Message: res.Message, Digest: res.Digest,
		Signature: res.Signature, NonceKey: res.NonceKey, Version: res.Version}
	if p.Digest == nil { // abi.CryptoHostMessage: the guest does not hash
		d := sha256.Sum256(p.Message)
		p.Digest = d[:]
	}
	if len(res.Key) == protocol.PublicKeySize {
		p.Device = i.list[[protocol.PublicKeySize]byte(res.Key)]
	}
	return p, protocol.Result{}
}

// Commit completes a prepared check. sigStatus is abi.SigValid,
// abi.SigInvalid, or abi.SigUnsupported to let the guest verify;
// nonceStatus is abi.CommitNonceByGuest to let the guest record the nonce
// as configured, or the host's own answer.
func (i *Instance) Commit(ctx context.Context, p *Prepared, sigStatus, nonceStatus int32) protocol.Result {
	i.state.nonceErr = nil
	res, err := i.invoke(ctx, i.fn.commit, uint64(p.Handle), uint64(uint32(sigStatus)), uint64(uint32(nonceStatus)))
	if err != nil {
		return unavailable(err)
	}
	return i.decision(res)
}

// Release abandons a prepared check or signature.
func (i *Instance) Release(ctx context.Context, handle uint32) error {
	if i.broken != nil {
		return i.broken
	}
	i.stack[0] = uint64(handle)
	if err := i.fn.release.CallWithStack(ctx, i.stack[:]); err != nil {
		i.broken = fmt.Errorf("wasmhost: amesh_release: %w", err)
		return i.broken
	}
	return nil
}

// signRecord builds the guest's signing record. The authority is passed
// without a scheme, so the guest takes it as already normalised, as
// protocol.SignParams defines it.
func signRecord(pub []byte, p *protocol.SignParams) abi.SignParams {
	sp := abi.SignParams{Version: p.Version, Method: p.Method, Target: p.Target, Authority: p.Authority,
		Body: p.Body, Key: pub, Nonce: p.Nonce}
	if !p.Time.IsZero() {
		sp.NowMs, sp.HasNow = p.Time.UnixMilli(), true
	}
	return sp
}

// Sign signs a request inside the guest, which asks signer through the
// sign_digest import: the guest sees the digest and the signature, never
// the private key. p.Rand is not used; the guest draws nonces from WASI's
// random source (crypto/rand).
func (i *Instance) Sign(ctx context.Context, signer protocol.Signer, p protocol.SignParams) (*protocol.Signed, error) {
	i.state.signer, i.state.signErr = signer, nil
	defer func() { i.state.signer = nil }()
	sp := signRecord(signer.PublicKey(), &p)
	res, err := i.call(ctx, i.fn.sign, sp.Encode)
	if err != nil {
		if i.state.signErr != nil {
			err = fmt.Errorf("%w (signer: %w)", err, i.state.signErr)
		}
		return nil, err
	}
	return &protocol.Signed{Authorization: res.Authorization, Canonical: res.Message}, nil
}

// PreparedSignature is a signature the host makes itself: it signs Message
// (or Digest) with the key and passes r||s to SignFinish.
type PreparedSignature struct {
	Handle  uint32
	Message []byte
	Digest  []byte
	Target  string
	TS      string
	Nonce   string
}

// SignPrepare builds the canonical string for a host that signs on its own.
func (i *Instance) SignPrepare(ctx context.Context, pub []byte, p protocol.SignParams) (*PreparedSignature, error) {
	sp := signRecord(pub, &p)
	res, err := i.call(ctx, i.fn.signPrepare, sp.Encode)
	if err != nil {
		return nil, err
	}
	if res.Handle <= 0 || res.Handle > 1<<31-1 {
		return nil, fmt.Errorf("wasmhost: amesh.wasm returned handle %d", res.Handle)
	}
	return &PreparedSignature{Handle: uint32(res.Handle), Message: res.Message, Digest: res.Digest,
		Target: res.Target, TS: res.TS, Nonce: res.Nonce}, nil
}

// SignFinish completes a prepared signature with the host's r||s.
func (i *Instance) SignFinish(ctx context.Context, ps *PreparedSignature, sig []byte) (*protocol.Signed, error) {
	ptr, err := i.input(ctx, sig)
	if err != nil {
		return nil, err
	}
	res, err := i.invoke(ctx, i.fn.signFinish, uint64(ps.Handle), uint64(ptr), uint64(len(sig)))
	if err != nil {
		return nil, err
	}
	return &protocol.Signed{Authorization: res.Authorization, Canonical: res.Message}, nil
}
