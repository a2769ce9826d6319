//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/config"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// benchRequests signs n distinct requests (v2 POST with a small JSON body,
// the common case) before any timing starts.
func benchRequests(tb testing.TB, n int) []request {
	reqs := make([]request, n)
	body := []byte(`{"order":4711,"items":[{"sku":"A-1","qty":2}],"note":"bench"}`)
	for i := range reqs {
		reqs[i] = sign(tb, signed{Version: protocol.Version2, Method: "POST", Target: "/api/orders?tenant=7",
			Body: body, Nonce: []byte(fmt.Sprintf("bench-nonce-%012d", i))})
	}
	return reqs
}

// runner decides prepared request i; close releases what it holds.
type runner struct {
	run   func(i int)
	close func()
}

// benchConfig is the deployed default configuration (default nonce cache).
func benchConfig(crypto string) map[string]any {
	cfg := baseConfig()
	delete(cfg, "nonce_cache")
	cfg["crypto"] = crypto
	return cfg
}

// filterRunner sends requests through the filter in mode m. The emulator's
// own cost (header maps, copies into the module) is included, as Envoy's is
// in a real proxy.
func filterRunner(tb testing.TB, m mode, crypto string, n int) runner {
	hc := withEnvoyCrypto
	if crypto == "guest" {
		hc = withoutForeign
	}
	e := openEnvoy(tb, m, mustJSON(tb, benchConfig(crypto)), hc)
	e.mustStart()
	e.setTime(t0)
	reqs := benchRequests(tb, n)
	return runner{
		run: func(i int) {
			if res := e.do(reqs[i]); !res.Forwarded {
				tb.Fatalf("request %d rejected: %d %s", i, res.Status, res.Body)
			}
		},
		close: e.close,
	}
}

// nativeRunner makes the native core's decision for the same requests: what
// the Go middleware pays.
func nativeRunner(tb testing.TB, n int) runner {
	c, err := config.Parse(mustJSON(tb, benchConfig("guest")))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := protocol.NewVerifier(c.Protocol(protocol.NewMemoryNonceStore(0)))
	if err != nil {
		tb.Fatal(err)
	}
	reqs := make([]*protocol.Request, n)
	for i, r := range benchRequests(tb, n) {
		reqs[i] = &protocol.Request{Method: r.Method, Target: r.Target, Host: r.Authority, Scheme: "https",
			Authorization: []string{r.Headers[0][1]}, Body: r.Body}
	}
	ctx := context.Background()
	return runner{
		run: func(i int) {
			if res := v.Verify(ctx, reqs[i], t0); !res.OK() {
				tb.Fatalf("request %d rejected: %s %v", i, res.Reason, res.Err)
			}
		},
		close: func() {},
	}
}

// perOp measures the time per request of the runners newRunner makes,
// growing the count until a run lasts about 300 ms. testing.Benchmark
// cannot do this inside a benchmark: it waits for the lock the running
// benchmark holds.
func perOp(newRunner func(n int) runner) float64 {
	const target = 300 * time.Millisecond
	n := 8
	for {
		r := newRunner(n)
		start := time.Now()
		for i := range n {
			r.run(i)
		}
		d := time.Since(start)
		r.close()
		if d >= target || n >= 1<<20 {
			return float64(d.Nanoseconds()) / float64(n)
		}
		next := int(float64(n) * 1.2 * float64(target) / float64(max(d, time.Microsecond)))
		n = min(max(next, 2*n), 100*n, 1<<20)
	}
}

var benchBaselines struct {
	once          sync.Once
	native, guest float64 // ns per request
}

// BenchmarkEnvoyFilter measures one request through amesh-envoy.wasm (under
// wazero, in the SDK's emulator) with Envoy's verify_signature: that is its
// ns/op. In the same function it measures the native core's decision and
// the module verifying signatures itself, and reports the ratios and values
// that go to build/bench.json.
func BenchmarkEnvoyFilter(b *testing.B) {
	quiet(b)
	wasmModule(b)
	benchBaselines.once.Do(func() {
		benchBaselines.native = perOp(func(n int) runner { return nativeRunner(b, n) })
		benchBaselines.guest = perOp(func(n int) runner { return filterRunner(b, wasm, "guest", n) })
	})
	r := filterRunner(b, wasm, "host", b.N)
	defer r.close()
	b.ResetTimer()
	for i := range b.N {
		r.run(i)
	}
	b.StopTimer()
	host := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	nat := benchBaselines.native
	b.ReportMetric(host/nat, "ratio:envoy_hostcrypto_over_native")
	b.ReportMetric(host/1e6, "value:envoy_hostcrypto_ms")
	b.ReportMetric(benchBaselines.guest/nat, "ratio:envoy_guestcrypto_over_native")
	b.ReportMetric(benchBaselines.guest/1e6, "value:envoy_guestcrypto_ms")
	b.ReportMetric(nat/1e6, "value:envoy_native_core_ms")
}

// BenchmarkEnvoyFilterNative runs the filter's Go code natively in the
// emulator: the emulator's share of the wasm-mode figure.
func BenchmarkEnvoyFilterNative(b *testing.B) {
	quiet(b)
	r := filterRunner(b, native, "host", b.N)
	defer r.close()
	b.ResetTimer()
	for i := range b.N {
		r.run(i)
	}
}

// quiet silences the emulator's logging for a benchmark: the standard
// logger skips formatting entirely when it writes to io.Discard, and the
// emulator logs every foreign call.
func quiet(b *testing.B) {
	log.SetOutput(io.Discard)
	b.Cleanup(func() { log.SetOutput(&sink) })
}
