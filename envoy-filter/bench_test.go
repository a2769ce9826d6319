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
	"github.com/amesh-go/amesh/internal/benchutil"
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

var benchFigures struct {
	once                sync.Once
	native, guest, host float64 // ns per request, medians of rounds
}

// BenchmarkEnvoyFilter measures one request through amesh-envoy.wasm (under
// wazero, in the SDK's emulator) with Envoy's verify_signature: that is its
// ns/op. For build/bench.json it measures, in rounds that interleave them,
// the native core's decision, the filter with Envoy's crypto and the filter
// verifying signatures itself, each over some 300 ms, and reports the
// medians: a single timed request (make bench runs -benchtime 1x) would say
// more about the machine's moment than about the filter.
func BenchmarkEnvoyFilter(b *testing.B) {
	quiet(b)
	wasmModule(b)
	benchFigures.once.Do(func() {
		const rounds = 3
		var nat, guest, host []float64
		for range rounds {
			nat = append(nat, perOp(func(n int) runner { return nativeRunner(b, n) }))
			host = append(host, perOp(func(n int) runner { return filterRunner(b, wasm, "host", n) }))
			guest = append(guest, perOp(func(n int) runner { return filterRunner(b, wasm, "guest", n) }))
		}
		benchFigures.native, benchFigures.host, benchFigures.guest = benchutil.Median(nat), benchutil.Median(host), benchutil.Median(guest)
	})
	r := filterRunner(b, wasm, "host", b.N)
	defer r.close()
	b.ResetTimer()
	for i := range b.N {
		r.run(i)
	}
	b.StopTimer()
	f := &benchFigures
	b.ReportMetric(f.host/f.native, "ratio:envoy_hostcrypto_over_native")
	b.ReportMetric(f.host/1e6, "value:envoy_hostcrypto_ms")
	b.ReportMetric(f.guest/f.native, "ratio:envoy_guestcrypto_over_native")
	b.ReportMetric(f.guest/1e6, "value:envoy_guestcrypto_ms")
	b.ReportMetric(f.native/1e6, "value:envoy_native_core_ms")
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
