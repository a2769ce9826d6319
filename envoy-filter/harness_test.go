//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/envoyhost"
	"github.com/amesh-go/amesh/envoy-filter/internal/hostcrypto"
	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// Every filter test runs twice: with the filter's Go code running natively
// inside the SDK's host emulator, and with the compiled amesh-envoy.wasm
// running under wazero inside the same emulator (proxytest's Wasm VM
// context), which is what Envoy loads.
type mode string

const (
	native mode = "native"
	wasm   mode = "wasm"
)

var modes = []mode{native, wasm}

// eachMode runs f as a subtest per mode.
func eachMode(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) { f(t, m) })
	}
}

func TestMain(m *testing.M) {
	// The emulator reports everything through the standard logger; keep a
	// copy of each line (see logSink) instead of flooding the output.
	log.SetFlags(0)
	log.SetOutput(&sink)
	code := m.Run()
	if wasmVM.vm != nil {
		wasmVM.vm.Close()
	}
	if wasmBuild.dir != "" {
		os.RemoveAll(wasmBuild.dir)
	}
	os.Exit(code)
}

// logSink collects the emulator's log lines. The emulator formats each line
// while the guest's message is still valid; the copies it keeps for
// GetErrorLogs and friends point into the module's memory and may be
// overwritten later, so tests read logs from here.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

var sink logSink

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.HasPrefix(l, "proxy_") {
			s.lines = append(s.lines, l)
		}
	}
	if os.Getenv("AMESH_ENVOY_LOG") != "" {
		os.Stderr.Write(p)
	}
	return len(p), nil
}

// mark returns a position; since returns the lines logged after it.
func (s *logSink) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

func (s *logSink) since(pos int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines[pos:]...)
}

var wasmBuild struct {
	once  sync.Once
	dir   string
	bytes []byte
	err   error
}

// wasmModule builds amesh-envoy.wasm from the current sources, once per test
// binary, the way `make envoy-filter` does.
func wasmModule(tb testing.TB) []byte {
	tb.Helper()
	wasmBuild.once.Do(func() {
		root, err := vectors.Root()
		if err != nil {
			wasmBuild.err = err
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		dir, err := os.MkdirTemp("", "amesh-envoy-wasm-")
		if err != nil {
			wasmBuild.err = err
			return
		}
		wasmBuild.dir = dir
		out := filepath.Join(dir, "amesh-envoy.wasm")
		cmd := exec.Command(goBin, "build", "-trimpath", "-buildmode=c-shared", "-o", out, "./envoy-filter")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if output, err := cmd.CombinedOutput(); err != nil {
			wasmBuild.err = fmt.Errorf("%v: %w\n%s", cmd.Args, err, output)
			return
		}
		wasmBuild.bytes, wasmBuild.err = os.ReadFile(out)
	})
	if wasmBuild.err != nil {
		tb.Fatalf("cannot build amesh-envoy.wasm for the wasm-mode tests: %v", wasmBuild.err)
	}
	return wasmBuild.bytes
}

var wasmVM struct {
	once sync.Once
	vm   proxytest.WasmVMContext
	err  error
}

// vmFor returns the VM context of a mode. The wasm module is compiled and
// instantiated once: compiling 5 MB of Wasm takes seconds, and Envoy too
// keeps one VM per worker across plugin configurations. Each emulator
// starts a fresh plugin context in it.
func vmFor(tb testing.TB, m mode) types.VMContext {
	tb.Helper()
	if m == native {
		return &vmContext{}
	}
	module := wasmModule(tb)
	wasmVM.once.Do(func() { wasmVM.vm, wasmVM.err = proxytest.NewWasmVMContext(module) })
	if wasmVM.err != nil {
		tb.Fatalf("load amesh-envoy.wasm into wazero: %v", wasmVM.err)
	}
	return wasmVM.vm
}

// envoy is the emulated Envoy around one plugin configuration.
type envoy struct {
	proxytest.HostEmulator
	tb      testing.TB
	reset   func()
	foreign *foreignCounter
	logPos  int
}

// foreignCounter is Envoy's verify_signature, counting calls.
type foreignCounter struct {
	calls int
	fn    func([]byte) []byte
}

func (f *foreignCounter) call(p []byte) []byte {
	f.calls++
	return f.fn(p)
}

// hostCrypto selects which verify_signature the emulated Envoy offers.
type hostCrypto int

const (
	// withEnvoyCrypto registers Envoy's verify_signature (Go's crypto with
	// BoringSSL's semantics).
	withEnvoyCrypto hostCrypto = iota
	// withLyingHost registers a verify_signature that says yes to
	// everything: the probe must not trust it.
	withLyingHost
	// withoutForeign registers nothing. The emulator aborts the process on
	// a call to an unknown foreign function (Envoy returns NotFound), so
	// configurations used with it must say "crypto": "guest".
	withoutForeign
)

// openEnvoy creates the emulator. Only one can exist at a time (the SDK
// serialises them with a global lock): call the returned envoy's close.
func openEnvoy(tb testing.TB, m mode, cfg []byte, hc hostCrypto) *envoy {
	tb.Helper()
	opt := proxytest.NewEmulatorOption().WithVMContext(vmFor(tb, m))
	if cfg != nil {
		opt = opt.WithPluginConfiguration(cfg)
	}
	host, reset := proxytest.NewHostEmulator(opt)
	e := &envoy{HostEmulator: host, tb: tb, reset: reset, logPos: sink.mark()}
	switch hc {
	case withEnvoyCrypto:
		e.foreign = &foreignCounter{fn: envoyhost.VerifySignature}
		host.RegisterForeignFunction(hostcrypto.FunctionName, e.foreign.call)
	case withLyingHost:
		e.foreign = &foreignCounter{fn: func([]byte) []byte { return []byte{0x08, 0x01} }}
		host.RegisterForeignFunction(hostcrypto.FunctionName, e.foreign.call)
	case withoutForeign:
	}
	if !host.StartVM() {
		reset()
		tb.Fatal("OnVMStart failed")
	}
	return e
}

// newEnvoy is openEnvoy with the emulator released when the test ends.
func newEnvoy(tb testing.TB, m mode, cfg []byte, hc hostCrypto) *envoy {
	tb.Helper()
	e := openEnvoy(tb, m, cfg, hc)
	tb.Cleanup(e.close)
	return e
}

func (e *envoy) close() {
	if e.reset != nil {
		e.reset()
		e.reset = nil
	}
}

// mustStart starts the plugin and fails the test if it does not start.
func (e *envoy) mustStart() {
	e.tb.Helper()
	if !e.StartPlugin() {
		e.tb.Fatalf("plugin did not start:\n%s", strings.Join(e.logs(), "\n"))
	}
}

// logs returns the lines the plugin logged through this emulator.
func (e *envoy) logs() []string { return sink.since(e.logPos) }

// setTime sets the request.time attribute, as Envoy does for every request.
func (e *envoy) setTime(t time.Time) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(t.UnixNano()))
	if err := e.SetProperty([]string{"request", "time"}, b[:]); err != nil {
		e.tb.Fatal(err)
	}
}

func (e *envoy) counter(name string) uint64 {
	e.tb.Helper()
	v, err := e.GetCounterMetric(name)
	if err != nil {
		e.tb.Fatalf("counter %s: %v", name, err)
	}
	return v
}

// request is an HTTP request as Envoy hands it to the filter.
type request struct {
	Method, Target, Authority, Scheme string
	// Headers are the regular headers, duplicates kept.
	Headers [][2]string
	Body    []byte
	// Chunks splits the body into this many calls (default 1).
	Chunks int
	// Trailers, when set, end the stream instead of the last body chunk.
	Trailers [][2]string
	// NoContentLength leaves out the content-length header of a body.
	NoContentLength bool
}

// response is what became of a request.
type response struct {
	// Status and Body are the local response, when the filter sent one.
	Status  int
	Body    []byte
	Headers [][2]string
	// Forwarded is set when the filter let the request continue upstream,
	// with these headers and body.
	Forwarded    bool
	Upstream     [][2]string
	UpstreamBody []byte
}

// Error returns the "error" member of a rejection's JSON body.
func (r response) Error() string {
	var b struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return "<unparseable body " + strconv.Quote(string(r.Body)) + ">"
	}
	return b.Error
}

// outcome is the status the client would see: the local response, or 200
// for a request that went upstream.
func (r response) outcome() (int, string) {
	if r.Forwarded {
		return 200, ""
	}
	return r.Status, r.Error()
}

// header returns the values of name among the upstream headers.
func (r response) header(name string) []string {
	var out []string
	for _, kv := range r.Upstream {
		if strings.EqualFold(kv[0], name) {
			out = append(out, kv[1])
		}
	}
	return out
}

func cloneHeaders(h [][2]string) [][2]string {
	out := make([][2]string, len(h))
	for i, kv := range h {
		out[i] = [2]string{strings.Clone(kv[0]), strings.Clone(kv[1])}
	}
	return out
}

// do runs one request through the filter.
func (e *envoy) do(r request) response {
	e.tb.Helper()
	id := e.InitializeHttpContext()
	defer e.CompleteHttpContext(id)
	return e.drive(id, r, 0, -1)
}

// begin starts a request and returns its context after the headers, for
// tests that interleave streams.
func (e *envoy) begin(r request) uint32 {
	id := e.InitializeHttpContext()
	e.drive(id, r, 0, 0)
	return id
}

// drive delivers the request's parts from part "from" to part "to"
// (inclusive; -1 for all); part 0 is the headers, then each body chunk,
// then the trailers.
func (e *envoy) drive(id uint32, r request, from, to int) response {
	e.tb.Helper()
	chunks := splitBody(r.Body, r.Chunks)
	hasBody := len(chunks) > 0 || r.Trailers != nil
	parts := 1 + len(chunks)
	if r.Trailers != nil {
		parts++
	}
	if to < 0 || to >= parts {
		to = parts - 1
	}
	var res response
	var action types.Action
	for part := from; part <= to; part++ {
		switch {
		case part == 0:
			hdrs := [][2]string{{":method", r.Method}, {":path", r.Target}, {":authority", r.Authority}, {":scheme", orDefault(r.Scheme, "https")}}
			hdrs = append(hdrs, r.Headers...)
			if len(r.Body) > 0 && !r.NoContentLength {
				hdrs = append(hdrs, [2]string{"content-length", strconv.Itoa(len(r.Body))})
			}
			action = e.CallOnRequestHeaders(id, hdrs, !hasBody)
		case part <= len(chunks):
			last := part == len(chunks) && r.Trailers == nil
			action = e.CallOnRequestBody(id, chunks[part-1], last)
		default:
			action = e.CallOnRequestTrailers(id, r.Trailers)
		}
		if lr := e.GetSentLocalResponse(id); lr != nil {
			res.Status = int(lr.StatusCode)
			res.Body = bytes.Clone(lr.Data)
			res.Headers = cloneHeaders(lr.Headers)
			if action != types.ActionPause {
				e.tb.Errorf("filter sent a local response but returned action %v", action)
			}
			return res
		}
	}
	if to == parts-1 {
		if action != types.ActionContinue {
			e.tb.Fatalf("filter neither answered nor continued the request (action %v)", action)
		}
		res.Forwarded = true
		res.Upstream = cloneHeaders(e.GetCurrentRequestHeaders(id))
		res.UpstreamBody = bytes.Clone(e.GetCurrentRequestBody(id))
	}
	return res
}

func splitBody(b []byte, n int) [][]byte {
	if len(b) == 0 {
		return nil
	}
	if n < 1 {
		n = 1
	}
	n = min(n, len(b))
	var out [][]byte
	size := (len(b) + n - 1) / n
	for len(b) > 0 {
		k := min(size, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// mustJSON marshals v for a plugin configuration.
func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
