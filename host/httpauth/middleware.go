// Package httpauth protects net/http servers with amesh and signs the
// requests of net/http clients.
//
// The server side is a middleware, func(http.Handler) http.Handler, that
// verifies every request against the allow list before the handler sees
// it. It verifies the request as it arrived: the full request-target from
// r.RequestURI (right under http.StripPrefix, chi or gorilla mounts, which
// rewrite r.URL but not RequestURI) and the exact body bytes, read up to
// the limit and handed on to the handler unchanged. The verified device is
// in the request's context (DeviceFrom). Rejections carry the JSON bodies
// of docs/PROTOCOL.md ({"error":"unauthorized"} and so on); the private
// reason goes to the log only.
//
// Two engines decide: the protocol core compiled into the binary (Native,
// the default and fastest) or amesh.wasm under wazero (Wasm), the same
// decisions from the sandboxed artifact that JavaScript hosts run.
//
// The client side is Transport, an http.RoundTripper that signs each
// request with a protocol.Signer (a keystore key), and NewClient.
package httpauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amesh-go/amesh/host/wasmhost"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Engine selects what decides requests.
type Engine int

const (
	// Native runs the protocol core compiled into this binary.
	Native Engine = iota
	// Wasm runs amesh.wasm under wazero, lending it Go's ECDSA and SHA-256.
	Wasm
	// WasmPure runs everything inside amesh.wasm, crypto included: about
	// ten times slower than Wasm, for testing the artifact as hosts
	// without crypto run it.
	WasmPure
)

// String returns the engine's name.
func (e Engine) String() string {
	switch e {
	case Native:
		return "native"
	case Wasm:
		return "wasm"
	case WasmPure:
		return "wasm-pure"
	}
	return "engine(" + strconv.Itoa(int(e)) + ")"
}

// Options configure the middleware. AllowList is required.
type Options struct {
	// AllowList supplies the trusted devices and reloads them.
	AllowList Source
	// Nonces records nonces. Nil means an in-memory store, right for one
	// process only: servers behind a load balancer share one, such as
	// host/redisnonce.
	Nonces protocol.NonceStore
	// ClockSkew, NonceTTL, MaxBodyBytes, Authorities and RequireV2 are
	// those of protocol.Config (zero values are its defaults).
	ClockSkew    time.Duration
	NonceTTL     time.Duration
	MaxBodyBytes int64
	Authorities  []string
	RequireV2    bool
	// Engine chooses the decision engine; the default is Native.
	Engine Engine
	// WasmEngine is the compiled amesh.wasm for the Wasm engines; nil
	// means wasmhost.Shared().
	WasmEngine *wasmhost.Engine
	// WasmPoolSize is the number of amesh.wasm instances; zero means
	// GOMAXPROCS.
	WasmPoolSize int
	// Scheme is "http" or "https", for the default port of a version 2
	// audience. Empty means "https" for TLS connections and "http"
	// otherwise; set "https" behind a proxy that terminates TLS.
	Scheme string
	// ReloadInterval is how often, at most, the allow list's Changed is
	// asked. Zero means one second; negative means on every request.
	ReloadInterval time.Duration
	// Logger receives one line per rejection (Info for 4xx, Error for
	// 5xx) and for allow-list reloads; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Middleware verifies requests. It is safe for concurrent use.
type Middleware struct {
	opts    Options
	logger  *slog.Logger
	now     func() time.Time
	native  *protocol.Verifier
	wasm    *wasmhost.Verifier
	maxBody int64

	list      atomic.Pointer[AllowList]
	nextCheck atomic.Int64 // Unix nanoseconds of the next Changed call
	reloadMu  sync.Mutex
}

// New checks opts, loads the allow list and, for the Wasm engines, starts
// the instance pool.
func New(opts Options) (*Middleware, error) {
	if opts.AllowList == nil {
		return nil, errors.New("httpauth: Options.AllowList is required")
	}
	m := &Middleware{opts: opts, logger: opts.Logger, now: opts.Now}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if opts.Nonces == nil {
		m.opts.Nonces = protocol.NewMemoryNonceStore(0)
	}
	switch opts.Scheme {
	case "", "http", "https":
	default:
		return nil, fmt.Errorf("httpauth: scheme %q is neither http nor https", opts.Scheme)
	}
	cfg := protocol.Config{AllowList: currentList{m}, Nonces: m.opts.Nonces, ClockSkew: opts.ClockSkew,
		NonceTTL: opts.NonceTTL, MaxBodyBytes: opts.MaxBodyBytes, Authorities: opts.Authorities, RequireV2: opts.RequireV2}
	native, err := protocol.NewVerifier(cfg)
	if err != nil {
		return nil, fmt.Errorf("httpauth: %w", err)
	}
	m.maxBody = native.MaxBodyBytes()
	list := m.load()
	switch opts.Engine {
	case Native:
		m.native = native
	case Wasm, WasmPure:
		eng := opts.WasmEngine
		if eng == nil {
			if eng, err = wasmhost.Shared(); err != nil {
				return nil, fmt.Errorf("httpauth: %w", err)
			}
		}
		wcfg := wasmhost.Config{AllowList: list.Devices, IntegrityFailure: list.Err != nil, Nonces: m.opts.Nonces,
			ClockSkew: opts.ClockSkew, NonceTTL: opts.NonceTTL, MaxBodyBytes: opts.MaxBodyBytes,
			Authorities: opts.Authorities, RequireV2: opts.RequireV2, PureWasm: opts.Engine == WasmPure}
		if m.wasm, err = eng.NewVerifier(context.Background(), wcfg, opts.WasmPoolSize); err != nil {
			return nil, fmt.Errorf("httpauth: %w", err)
		}
	default:
		return nil, fmt.Errorf("httpauth: unknown engine %v", opts.Engine)
	}
	m.list.Store(list)
	m.nextCheck.Store(m.now().Add(m.interval()).UnixNano())
	return m, nil
}

// Close releases the Wasm engine's instances. The middleware answers 503
// afterwards.
func (m *Middleware) Close() error {
	if m.wasm != nil {
		return m.wasm.Close(context.Background())
	}
	return nil
}

// Handler wraps next: only verified requests reach it.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
}

// Require returns the middleware of opts as a func(http.Handler)
// http.Handler, the shape routers take.
func Require(opts Options) (func(http.Handler) http.Handler, error) {
	m, err := New(opts)
	if err != nil {
		return nil, err
	}
	return m.Handler, nil
}

type deviceKey struct{}

// DeviceFrom returns the device that signed the request whose context is
// ctx, as the middleware verified it.
func DeviceFrom(ctx context.Context) (*protocol.Device, bool) {
	d, ok := ctx.Value(deviceKey{}).(*protocol.Device)
	return d, ok && d != nil
}

// currentList is the native verifier's view of the current snapshot.
type currentList struct{ m *Middleware }

func (l currentList) Lookup(key [protocol.PublicKeySize]byte) (*protocol.Device, error) {
	s := l.m.list.Load()
	if s.Err != nil {
		if errors.Is(s.Err, protocol.ErrIntegrity) {
			return nil, s.Err
		}
		return nil, fmt.Errorf("%w: %w", protocol.ErrIntegrity, s.Err)
	}
	return s.Devices[key], nil
}

func (m *Middleware) interval() time.Duration {
	switch d := m.opts.ReloadInterval; {
	case d == 0:
		return time.Second
	case d < 0:
		return 0
	default:
		return d
	}
}

// load asks the source for a snapshot and logs the outcome.
func (m *Middleware) load() *AllowList {
	l := m.opts.AllowList.Load()
	if l.Err != nil {
		m.logger.Error("amesh: allow list cannot be trusted: answering 500 until it can", "err", l.Err)
	} else {
		m.logger.Info("amesh: allow list loaded", "devices", len(l.Devices))
	}
	return &l
}

// maybeReload reloads the allow list when its interval has passed and the
// source reports a change. One request does it; the others carry on with
// the current snapshot meanwhile.
func (m *Middleware) maybeReload(ctx context.Context) {
	now := m.now().UnixNano()
	next := m.nextCheck.Load()
	if now < next || !m.nextCheck.CompareAndSwap(next, now+int64(m.interval())) {
		return
	}
	if !m.reloadMu.TryLock() {
		return
	}
	defer m.reloadMu.Unlock()
	cur := m.list.Load()
	if cur.Changed == nil || !cur.Changed() {
		return
	}
	l := m.load()
	if m.wasm != nil {
		if err := m.wasm.SetAllowList(ctx, l.Devices, l.Err != nil); err != nil {
			// The instances keep the previous list; try again next time.
			m.logger.Error("amesh: wasm engine refused the reloaded allow list", "err", err)
			m.nextCheck.Store(now)
			return
		}
	}
	m.list.Store(l)
}

// serve verifies r and calls next or writes the rejection.
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx := r.Context()
	m.maybeReload(ctx)
	now := m.now()
	req := &protocol.Request{
		Method:        r.Method,
		Target:        r.RequestURI,
		Host:          r.Host,
		Scheme:        m.opts.Scheme,
		Authorization: r.Header.Values("Authorization"),
	}
	if req.Target == "" {
		// A request built in-process (not read by http.Server) has no
		// RequestURI; its URL is then what the caller meant.
		req.Target = r.URL.RequestURI()
	}
	if req.Scheme == "" {
		req.Scheme = "http"
		if r.TLS != nil {
			req.Scheme = "https"
		}
	}
	var res protocol.Result
	var body []byte
	if m.native != nil {
		res, body = m.decideNative(ctx, r, req, now)
	} else {
		res, body = m.decideWasm(ctx, r, req, now)
	}
	if !res.OK() {
		m.reject(w, r, res)
		return
	}
	// The handler reads the very bytes that were verified.
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, deviceKey{}, res.Device)))
}

// ReasonBodyRead is the private reason of a 401 for a body that could not
// be read (the client went away, or a reader in front failed).
const ReasonBodyRead protocol.Reason = "body_read_error"

// readBody reads the body up to the limit plus one byte, so that the
// verifier sees an oversized body as such without reading all of it.
func (m *Middleware) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	size := int64(512) // a first guess for a body of unknown length
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1 // +1: io.Copy needs room to see EOF
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(size, m.maxBody+1)))
	_, err := io.Copy(buf, io.LimitReader(r.Body, m.maxBody+1))
	return buf.Bytes(), err
}

// bodyFailure turns a body read error into a result.
func bodyFailure(res protocol.Result, err error) protocol.Result {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		// A limit in front of the middleware (http.MaxBytesHandler)
		// stopped the body: it is too large, whatever our own limit.
		res.Code, res.Reason = protocol.CodePayloadTooLarge, protocol.ReasonPayloadTooLarge
	} else {
		res.Code, res.Reason = protocol.CodeUnauthorized, ReasonBodyRead
	}
	res.Err = fmt.Errorf("reading the body: %w", err)
	return res
}

// decideNative runs the staged decision: the body is read only for a
// request that passed every check that needs no body.
func (m *Middleware) decideNative(ctx context.Context, r *http.Request, req *protocol.Request, now time.Time) (protocol.Result, []byte) {
	c, res := m.native.Begin(req, now)
	if c == nil {
		return res, nil
	}
	if r.ContentLength > m.maxBody {
		// Declared too large: answer without reading any of it.
		return c.AddBodyDigest(r.ContentLength, [sha256.Size]byte{}), nil
	}
	body, err := m.readBody(r)
	if err != nil {
		return bodyFailure(res, err), nil
	}
	if res = c.AddBody(body); !res.OK() {
		return res, nil
	}
	return c.Finish(ctx, now, c.VerifySignature()), body
}

// decideWasm hands the whole request to amesh.wasm in one call, so the
// body is read first (up to the limit). A body that is declared too large,
// or cannot be read, is decided as a digest of a body over the limit:
// checks that need no body still come first, in the core's order, and a
// request that passes them gets the body's answer.
func (m *Middleware) decideWasm(ctx context.Context, r *http.Request, req *protocol.Request, now time.Time) (protocol.Result, []byte) {
	var none [sha256.Size]byte
	if r.ContentLength > m.maxBody {
		return m.wasm.VerifyDigest(ctx, req, r.ContentLength, none, now), nil
	}
	body, err := m.readBody(r)
	if err != nil {
		res := m.wasm.VerifyDigest(ctx, req, m.maxBody+1, none, now)
		if res.Code != protocol.CodePayloadTooLarge {
			return res, nil
		}
		res.Code, res.Reason, res.Err = "", "", nil
		return bodyFailure(res, err), nil
	}
	req.Body = body
	return m.wasm.Verify(ctx, req, now), body
}

// reject writes the JSON error of res and logs its private reason.
func (m *Middleware) reject(w http.ResponseWriter, r *http.Request, res protocol.Result) {
	status := res.Status()
	attrs := []any{"status", status, "code", string(res.Code), "reason", string(res.Reason),
		"method", r.Method, "target", r.RequestURI, "remote", r.RemoteAddr}
	if res.Version != "" {
		attrs = append(attrs, "version", res.Version)
	}
	if res.Device != nil {
		attrs = append(attrs, "device", res.Device.ID, "device_name", res.Device.Name)
	}
	if res.Err != nil {
		attrs = append(attrs, "err", res.Err.Error())
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	m.logger.Log(r.Context(), level, "amesh: request rejected", attrs...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", protocol.Scheme) // RFC 9110: a 401 names its scheme
	}
	w.WriteHeader(status)
	w.Write(res.Code.Body())
}
