package protocol_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/benchutil"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// benchRequests signs n distinct requests (1 KiB JSON body) for version v.
func benchRequests(b *testing.B, key *protocol.PrivateKey, v string, n int, now time.Time) []*protocol.Request {
	b.Helper()
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	reqs := make([]*protocol.Request, n)
	for i := range reqs {
		s, err := protocol.SignRequest(key, protocol.SignParams{Version: v, Method: "POST",
			Target: "/api/orders?b=2&a=1", Authority: "api.example.test", Body: body, Time: now})
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = &protocol.Request{Method: "POST", Target: "/api/orders?b=2&a=1", Host: "api.example.test",
			Authorization: []string{s.Authorization}, Body: body}
	}
	return reqs
}

func benchVerifier(b *testing.B, key *protocol.PrivateKey) *protocol.Verifier {
	list, err := protocol.NewStaticAllowList(&protocol.Device{Name: "c", Role: protocol.RoleController, Key: key.Public()})
	if err != nil {
		b.Fatal(err)
	}
	v, err := protocol.NewVerifier(protocol.Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(0),
		Authorities: []string{"api.example.test"}})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// decisionLoop returns a loop over the full decision: parse, allow-list
// lookup (key cached), time window, canonical string, SHA-256 of a 1 KiB
// body, ECDSA, memory nonce store. Each request is distinct; when all have
// been used, the store is replaced by an empty one (a rare, cheap step).
func decisionLoop(b *testing.B, v string) func(n int) {
	key, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1743160800, 0)
	reqs := benchRequests(b, key, v, 1024, now)
	ver := benchVerifier(b, key)
	ctx := context.Background()
	next := 0
	return func(n int) {
		for range n {
			if next == len(reqs) {
				ver, next = benchVerifier(b, key), 0
			}
			if res := ver.Verify(ctx, reqs[next], now); !res.OK() {
				b.Fatalf("rejected: %s %v", res.Reason, res.Err)
			}
			next++
		}
	}
}

// bareECDSALoop returns a loop over crypto/ecdsa alone on a precomputed
// digest: the floor of any verifier.
func bareECDSALoop(b *testing.B) func(n int) {
	key, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("message"))
	der, err := ecdsa.SignASN1(nil, keyECDSA(b, key), digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := key.Public().ECDSA()
	return func(n int) {
		for range n {
			if !ecdsa.VerifyASN1(pub, digest[:], der) {
				b.Fatal("verify failed")
			}
		}
	}
}

func runLoop(b *testing.B, loop func(n int)) {
	b.ReportAllocs()
	b.ResetTimer()
	loop(b.N)
}

func keyECDSA(b *testing.B, k *protocol.PrivateKey) *ecdsa.PrivateKey {
	raw, err := k.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	e, err := ecdsa.ParseRawPrivateKey(k.Public().ECDSA().Curve, raw)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkBareECDSA(b *testing.B) { runLoop(b, bareECDSALoop(b)) }
func BenchmarkVerifyV1(b *testing.B)  { runLoop(b, decisionLoop(b, protocol.Version1)) }
func BenchmarkVerifyV2(b *testing.B)  { runLoop(b, decisionLoop(b, protocol.Version2)) }

// BenchmarkRatios measures the baseline and the full decisions in turn, in
// the same process, and reports full/bare as ratios for build/bench.json:
// medians of ratios paired round by round (benchutil.PairedRatios), which
// on this shared machine stay within a few thousandths from run to run.
func BenchmarkRatios(b *testing.B) {
	bare := bareECDSALoop(b)
	v1 := decisionLoop(b, protocol.Version1)
	v2 := decisionLoop(b, protocol.Version2)
	for i := 0; i < b.N; i++ {
		r, ns := benchutil.PairedRatios(90, 10*time.Millisecond, bare, v1, v2)
		b.ReportMetric(r[0], "ratio:verify_v1_over_bare_ecdsa")
		b.ReportMetric(r[1], "ratio:verify_v2_over_bare_ecdsa")
		b.ReportMetric(ns[0]/1e3, "value:bare_ecdsa_us")
		b.ReportMetric(ns[1]/1e3, "value:verify_v1_us")
		b.ReportMetric(ns[2]/1e3, "value:verify_v2_us")
	}
}
