package httpauth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/amesh-go/amesh/host/wasmhost"
	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/wasm/protocol"
)

var engines = []Engine{Native, Wasm}

func testKey(t testing.TB, b byte) *protocol.PrivateKey {
	t.Helper()
	k, err := protocol.ParsePrivateKey(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func list(t testing.TB, keys ...*protocol.PrivateKey) protocol.StaticAllowList {
	t.Helper()
	var devs []*protocol.Device
	for _, k := range keys {
		devs = append(devs, &protocol.Device{Role: protocol.RoleController, Key: k.Public(), Name: "ctl-" + k.Public().DeviceID()[3:7]})
	}
	l, err := protocol.NewStaticAllowList(devs...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// swapSource is a Source whose list a test replaces while the server runs.
type swapSource struct {
	mu      sync.Mutex
	devices protocol.StaticAllowList
	err     error
	version atomic.Int64
}

func (s *swapSource) Load() AllowList {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.version.Load()
	return AllowList{Devices: s.devices, Err: s.err, Changed: func() bool { return s.version.Load() != v }}
}

func (s *swapSource) set(devices protocol.StaticAllowList, err error) {
	s.mu.Lock()
	s.devices, s.err = devices, err
	s.mu.Unlock()
	s.version.Add(1)
}

func newMiddleware(t testing.TB, opts Options) (*Middleware, *testenv.Logs) {
	t.Helper()
	logs := &testenv.Logs{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.Engine != Native && opts.WasmEngine == nil {
		e, err := wasmhost.Shared()
		if err != nil {
			t.Fatal(err)
		}
		opts.WasmEngine = e
		if opts.WasmPoolSize == 0 {
			opts.WasmPoolSize = 2
		}
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, logs
}

// echo is a handler that reports what it received.
type echoed struct {
	Device string `json:"device"`
	Path   string `json:"path"`
	URI    string `json:"uri"`
	Body   []byte `json:"body"`
}

func echo(w http.ResponseWriter, r *http.Request) {
	d, ok := DeviceFrom(r.Context())
	if !ok {
		http.Error(w, "no device in context", 500)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	json.NewEncoder(w).Encode(echoed{Device: d.ID, Path: r.URL.Path, URI: r.RequestURI, Body: body})
}

func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request and returns status and body.
func do(t testing.TB, c *http.Client, method, url string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}
