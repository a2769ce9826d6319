package protocol_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/protocol"
)

var t0 = time.Unix(1743160800, 0)

type fixture struct {
	key   *protocol.PrivateKey
	store *protocol.MemoryNonceStore
	v     *protocol.Verifier
}

func newFixture(t testing.TB, mod func(*protocol.Config)) *fixture {
	t.Helper()
	key, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := protocol.NewStaticAllowList(&protocol.Device{Name: "laptop", Role: protocol.RoleController, Key: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	store := protocol.NewMemoryNonceStore(0)
	cfg := protocol.Config{AllowList: list, Nonces: store}
	if mod != nil {
		mod(&cfg)
	}
	v, err := protocol.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{key: key, store: store, v: v}
}

func (f *fixture) sign(t testing.TB, p protocol.SignParams) *protocol.Request {
	t.Helper()
	if p.Method == "" {
		p.Method = "POST"
	}
	if p.Target == "" {
		p.Target = "/api/orders"
	}
	if p.Time.IsZero() {
		p.Time = t0
	}
	if p.Authority == "" {
		p.Authority = "api.example.test"
	}
	s, err := protocol.SignRequest(f.key, p)
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.Request{Method: p.Method, Target: p.Target, Host: p.Authority,
		Authorization: []string{s.Authorization}, Body: p.Body}
}

// A request with a bad signature must not record its nonce: otherwise
// anyone could burn the nonces of a legitimate request in flight.
func TestNonceRecordedOnlyAfterValidSignature(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	nonce := []byte("0123456789abcdef")
	good := f.sign(t, protocol.SignParams{Body: []byte(`{"a":1}`), Nonce: nonce})
	forged := *good
	forged.Body = []byte(`{"a":2}`)
	for range 3 {
		if res := f.v.Verify(ctx, &forged, t0); res.Reason != protocol.ReasonBadSignature {
			t.Fatalf("forged request: %s, want bad_signature", res.Reason)
		}
	}
	if n := f.store.Len(); n != 0 {
		t.Fatalf("forged requests recorded %d nonces", n)
	}
	if res := f.v.Verify(ctx, good, t0); !res.OK() {
		t.Fatalf("genuine request after forgeries: %s %v", res.Reason, res.Err)
	}
	if res := f.v.Verify(ctx, good, t0); res.Reason != protocol.ReasonReplay || res.Status() != 401 {
		t.Fatalf("replay: %s %d, want replay 401", res.Reason, res.Status())
	}
}

func TestReplayAcrossStagesAndExpiry(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	req := f.sign(t, protocol.SignParams{})
	if res := f.v.Verify(ctx, req, t0); !res.OK() {
		t.Fatal(res.Err)
	}
	// Still inside the window and the TTL: replay.
	if res := f.v.Verify(ctx, req, t0.Add(29*time.Second)); res.Reason != protocol.ReasonReplay {
		t.Fatalf("replay at +29s: %s", res.Reason)
	}
	// Outside the window the time check rejects before the store is asked.
	if res := f.v.Verify(ctx, req, t0.Add(31*time.Second)); res.Reason != protocol.ReasonTimestampRange {
		t.Fatalf("at +31s: %s", res.Reason)
	}
}

func TestVerifierSameUnauthorizedBody(t *testing.T) {
	f := newFixture(t, nil)
	other := newFixture(t, nil)
	ctx := context.Background()
	good := f.sign(t, protocol.SignParams{})
	stale := f.sign(t, protocol.SignParams{Time: t0.Add(-time.Hour)})
	unknown := other.sign(t, protocol.SignParams{})
	tampered := f.sign(t, protocol.SignParams{})
	tampered.Target = "/api/other"
	cases := []struct {
		name   string
		req    *protocol.Request
		reason protocol.Reason
	}{
		{"stale", stale, protocol.ReasonTimestampRange},
		{"unknown", unknown, protocol.ReasonUnknownKey},
		{"tampered", tampered, protocol.ReasonBadSignature},
	}
	if res := f.v.Verify(ctx, good, t0); !res.OK() {
		t.Fatal(res.Err)
	}
	for _, c := range cases {
		res := f.v.Verify(ctx, c.req, t0)
		if res.Reason != c.reason || res.Status() != 401 || string(res.Code.Body()) != `{"error":"unauthorized"}` {
			t.Errorf("%s: %s %d %s", c.name, res.Reason, res.Status(), res.Code.Body())
		}
	}
	if res := f.v.Verify(ctx, good, t0); string(res.Code.Body()) != `{"error":"unauthorized"}` {
		t.Errorf("replay body %s", res.Code.Body())
	}
}

func TestSignAlwaysLowSAndVerifies(t *testing.T) {
	key, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		sig, err := key.SignDigest(d[:])
		if err != nil {
			t.Fatal(err)
		}
		if !protocol.IsLowS(sig) {
			t.Fatalf("signature %d is high-S", i)
		}
		if err := key.Public().VerifyDigest(d[:], sig); err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
}

// highSigner returns high-S signatures, as a TPM may; SignRequest must fix
// them.
type highSigner struct{ *protocol.PrivateKey }

func (h highSigner) SignDigest(d []byte) ([]byte, error) {
	sig, err := h.PrivateKey.SignDigest(d)
	if err != nil {
		return nil, err
	}
	// n - s, computed through NormalizeLowS's inverse: flip by big arithmetic.
	return vectors.HighS(sig), nil
}

func TestSignRequestNormalisesHighS(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 20 {
		s, err := protocol.SignRequest(highSigner{f.key}, protocol.SignParams{Method: "GET", Target: "/", Time: t0})
		if err != nil {
			t.Fatal(err)
		}
		req := &protocol.Request{Method: "GET", Target: "/", Authorization: []string{s.Authorization}}
		if res := f.v.Verify(context.Background(), req, t0); !res.OK() {
			t.Fatalf("request %d: %s %v", i, res.Reason, res.Err)
		}
	}
}

type brokenSigner struct{ *protocol.PrivateKey }

func (b brokenSigner) SignDigest(d []byte) ([]byte, error) { return make([]byte, 64), nil }

func TestSignRequestRejectsBadSigner(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := protocol.SignRequest(brokenSigner{f.key}, protocol.SignParams{Method: "GET", Target: "/", Time: t0}); err == nil {
		t.Fatal("a signer returning zeros was accepted")
	}
}

func TestRawSignature(t *testing.T) {
	r := []byte{0, 0, 1, 2}
	s := []byte{3}
	sig, err := protocol.RawSignature(r, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 64 || sig[30] != 1 || sig[31] != 2 || sig[63] != 3 {
		t.Fatalf("padding wrong: %x", sig)
	}
	if _, err := protocol.RawSignature(make([]byte, 33), s); err != nil {
		t.Fatalf("leading zero byte beyond 32 should be trimmed: %v", err)
	}
	long := append([]byte{1}, make([]byte, 32)...)
	if _, err := protocol.RawSignature(long, s); err == nil {
		t.Fatal("33 significant bytes accepted")
	}
}

func TestNonceStore(t *testing.T) {
	ctx := context.Background()
	s := protocol.NewMemoryNonceStore(64)
	fresh, err := s.Record(ctx, "k", t0, time.Minute)
	if !fresh || err != nil {
		t.Fatalf("first record: %v %v", fresh, err)
	}
	if fresh, _ := s.Record(ctx, "k", t0.Add(59*time.Second), time.Minute); fresh {
		t.Fatal("replay inside the TTL accepted")
	}
	if fresh, _ := s.Record(ctx, "k", t0.Add(61*time.Second), time.Minute); !fresh {
		t.Fatal("expired entry still counted")
	}
}

func TestNonceStoreFailsClosedWhenFull(t *testing.T) {
	ctx := context.Background()
	// Capacity is split over shards; record until one refuses.
	s := protocol.NewMemoryNonceStore(64)
	refused := ""
	for i := 0; i < 10000 && refused == ""; i++ {
		key := string(rune(i)) + "nonce"
		fresh, err := s.Record(ctx, key, t0, time.Minute)
		if errors.Is(err, protocol.ErrNonceStoreFull) {
			if fresh {
				t.Fatal("a refused nonce was reported fresh")
			}
			refused = key
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused == "" {
		t.Fatal("store never filled up")
	}
	if n := s.Len(); n > 64+32 {
		t.Fatalf("store holds %d entries, capacity 64", n)
	}
	// Once entries expire there is room again, without any background work.
	if fresh, err := s.Record(ctx, refused, t0.Add(2*time.Minute), time.Minute); !fresh || err != nil {
		t.Fatalf("after expiry: %v %v", fresh, err)
	}
}

func TestVerifierFullStoreIs503(t *testing.T) {
	f := newFixture(t, func(c *protocol.Config) { c.Nonces = fullStore{} })
	res := f.v.Verify(context.Background(), f.sign(t, protocol.SignParams{}), t0)
	if res.Status() != 503 || res.Code != protocol.CodeUnavailable || res.Reason != protocol.ReasonNonceStore {
		t.Fatalf("got %d %s %s", res.Status(), res.Code, res.Reason)
	}
}

type fullStore struct{}

func (fullStore) Record(context.Context, string, time.Time, time.Duration) (bool, error) {
	return false, protocol.ErrNonceStoreFull
}

func TestNonceStoreConcurrentReplays(t *testing.T) {
	f := newFixture(t, nil)
	req := f.sign(t, protocol.SignParams{})
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f.v.Verify(context.Background(), req, t0).OK() {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of 64 concurrent replays accepted, want 1", ok.Load())
	}
}

func TestVerifierConfig(t *testing.T) {
	f := newFixture(t, func(c *protocol.Config) { c.ClockSkew = 45 * time.Second; c.NonceTTL = time.Second })
	if got := f.v.Config().NonceTTL; got != 90*time.Second {
		t.Errorf("TTL %v, want it raised to 2×skew = 90s", got)
	}
	for name, cfg := range map[string]protocol.Config{
		"no allow list":  {Nonces: protocol.NewMemoryNonceStore(1)},
		"no nonce store": {AllowList: protocol.StaticAllowList{}},
		"bad authority":  {AllowList: protocol.StaticAllowList{}, Nonces: protocol.NewMemoryNonceStore(1), Authorities: []string{"a b"}},
		"tiny skew":      {AllowList: protocol.StaticAllowList{}, Nonces: protocol.NewMemoryNonceStore(1), ClockSkew: time.Millisecond},
	} {
		if _, err := protocol.NewVerifier(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAuthority(t *testing.T) {
	cases := []struct{ in, scheme, want string }{
		{"API.Example.Test", "https", "api.example.test"},
		{"api.example.test:443", "https", "api.example.test"},
		{"api.example.test:443", "http", "api.example.test:443"},
		{"api.example.test:80", "http", "api.example.test"},
		{"api.example.test:80", "https", "api.example.test:80"},
		{"api.example.test:", "https", "api.example.test"},
		{"api.example.test:0080", "http", "api.example.test"},
		{"[::1]:8080", "https", "[::1]:8080"},
		{"[::1]:443", "https", "[::1]"},
		{"[FE80::1]", "https", "[fe80::1]"},
		{"127.0.0.1:9000", "http", "127.0.0.1:9000"},
		{"xn--bcher-kva.example", "https", "xn--bcher-kva.example"},
		{"", "https", "!"},
		{"a b", "https", "!"},
		{"host:99999", "https", "!"},
		{"host:-1", "https", "!"},
		{"host:+80", "https", "!"},
		{"b\u00fccher.example", "https", "!"},
		{"[::1", "https", "!"},
		{"[::1]x", "https", "!"},
		{"[zz]", "https", "!"},
		{"user@host", "https", "!"},
		{"a/b", "https", "!"},
		{":80", "http", "!"},
	}
	for _, c := range cases {
		got, err := protocol.Authority(c.in, c.scheme)
		if err != nil {
			got = "!"
		}
		if got != c.want {
			t.Errorf("Authority(%q, %s) = %q (%v), want %q", c.in, c.scheme, got, err, c.want)
		}
	}
}

// Verifier-side targets arrive as raw bytes; these cases have no client
// counterpart in the vectors.
func TestCanonicalTargetWire(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/caf\xc3\xa9", "/caf%C3%A9"},
		{"/a\xffb", "/a%FFb"},
		{"/x?a=\xff", "/x?a=%EF%BF%BD"},
		{"//x/y", "//x/y"},
		{"*", "/*"},
		{"http://h/a?b=1", "/a?b=1"},
		{"HTTPS://h:8443/a/../b", "/b"},
		{"ftp://h/a", "!"},
		{"mailto:x", "!"},
		{"http:///", "!"},
		{"/a?", "/a"},
		{"/a?#", "/a"},
	}
	for _, c := range cases {
		got, err := protocol.CanonicalTarget(c.in)
		if err != nil {
			got = "!"
		}
		if got != c.want {
			t.Errorf("CanonicalTarget(%q) = %q (%v), want %q", c.in, got, err, c.want)
		}
	}
}

func TestMessageRejectsLineBreaks(t *testing.T) {
	for _, m := range []protocol.Message{
		{Version: "1", Method: "GET\nX", Target: "/", TS: "1", Nonce: "n", BodyHash: protocol.EmptyBodyHash},
		{Version: "1", Method: "GET", Target: "/\n", TS: "1", Nonce: "n", BodyHash: protocol.EmptyBodyHash},
		{Version: "2", Method: "GET", Target: "/", TS: "1", Nonce: "n", BodyHash: protocol.EmptyBodyHash},
		{Version: "3", Method: "GET", Target: "/", TS: "1", Nonce: "n", BodyHash: protocol.EmptyBodyHash},
		{Version: "1", Method: "", Target: "/", TS: "1", Nonce: "n", BodyHash: protocol.EmptyBodyHash},
	} {
		if b, err := m.Bytes(); err == nil {
			t.Errorf("%+v gave %q", m, b)
		}
	}
}

func TestStagedAPI(t *testing.T) {
	f := newFixture(t, func(c *protocol.Config) { c.MaxBodyBytes = 8 })
	ctx := context.Background()
	req := f.sign(t, protocol.SignParams{Body: []byte("0123456789")})
	c, res := f.v.Begin(req, t0)
	if c == nil {
		t.Fatalf("Begin: %s", res.Reason)
	}
	if res := c.Finish(ctx, t0, nil); res.OK() {
		t.Fatal("Finish before AddBody accepted")
	}
	if res := c.AddBody(req.Body); res.Status() != 413 {
		t.Fatalf("oversize body: %d", res.Status())
	}
	if f.store.Len() != 0 {
		t.Fatal("nonce recorded for an oversize body")
	}
	// A host whose crypto said no: bad signature, nothing recorded.
	req = f.sign(t, protocol.SignParams{Body: []byte("0123")})
	c, _ = f.v.Begin(req, t0)
	if res := c.AddBody(req.Body); !res.OK() {
		t.Fatal(res.Err)
	}
	if res := c.Finish(ctx, t0, errors.New("host: invalid")); res.Reason != protocol.ReasonBadSignature || f.store.Len() != 0 {
		t.Fatalf("host-rejected signature: %s, %d nonces", res.Reason, f.store.Len())
	}
	if res := c.Finish(ctx, t0, c.VerifySignature()); !res.OK() {
		t.Fatalf("valid: %s %v", res.Reason, res.Err)
	}
}

// Times a header cannot carry are refused when signing, not sent.
func TestSignRequestTimeRange(t *testing.T) {
	f := newFixture(t, nil)
	for _, tm := range []time.Time{time.Unix(-1, 0), time.Unix(1_000_000_000_000_000_000, 0)} {
		if _, err := protocol.SignRequest(f.key, protocol.SignParams{Method: "GET", Target: "/", Time: tm}); err == nil {
			t.Errorf("signed at %d", tm.Unix())
		}
	}
	if _, err := protocol.SignRequest(f.key, protocol.SignParams{Method: "GET", Target: "/", Time: time.Unix(0, 0)}); err != nil {
		t.Errorf("epoch: %v", err)
	}
}

// The verifier keeps canonical strings of up to 256 bytes inside its Check
// and longer ones on the heap: both must verify, through Verify and
// through the Begin/AddBody/Finish steps, and both must catch tampering.
func TestVerifyCanonicalStringLengths(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 100, 120, 150, 200, 1000} {
		for _, v := range []string{protocol.Version1, protocol.Version2} {
			f := newFixture(t, func(c *protocol.Config) { c.Authorities = []string{"api.example.test"} })
			target := "/" + strings.Repeat("p", n) + "?b=2&a=1"
			req := f.sign(t, protocol.SignParams{Version: v, Target: target, Body: []byte("x")})
			c, res := f.v.Begin(req, t0)
			if c == nil {
				t.Fatalf("v%s, %d: Begin: %s %v", v, n, res.Reason, res.Err)
			}
			if res := c.AddBody(req.Body); !res.OK() {
				t.Fatalf("v%s, %d: AddBody: %s %v", v, n, res.Reason, res.Err)
			}
			if !bytes.Contains(c.Message(), []byte("\n/"+strings.Repeat("p", n)+"?a=1&b=2\n")) {
				t.Fatalf("v%s, %d: canonical string %q", v, n, c.Message())
			}
			if err := c.VerifySignature(); err != nil {
				t.Fatalf("v%s, %d: steps: %v", v, n, err)
			}
			tampered := *req
			tampered.Target = "/" + strings.Repeat("q", n) + "?b=2&a=1"
			if res := f.v.Verify(ctx, &tampered, t0); res.Reason != protocol.ReasonBadSignature {
				t.Fatalf("v%s, %d: tampered target: %s", v, n, res.Reason)
			}
			if res := f.v.Verify(ctx, req, t0); !res.OK() {
				t.Fatalf("v%s, %d: Verify: %s %v", v, n, res.Reason, res.Err)
			}
		}
	}
}

// What the verifier records is what Record sees under NonceKey, and the
// other way round: hosts that run the steps themselves (Begin, AddBody,
// Finish) and hosts that share a store with a Verifier agree on replays.
func TestVerifierRecordsUnderNonceKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	first := f.sign(t, protocol.SignParams{Body: []byte("1")})
	if res := f.v.Verify(ctx, first, t0); !res.OK() {
		t.Fatalf("first: %s %v", res.Reason, res.Err)
	}
	c, res := f.v.Begin(first, t0)
	if c == nil {
		t.Fatalf("Begin: %s", res.Reason)
	}
	if fresh, err := f.store.Record(ctx, c.NonceKey(), t0, time.Minute); fresh || err != nil {
		t.Fatalf("Record after Verify: fresh=%v err=%v, want a replay", fresh, err)
	}
	second := f.sign(t, protocol.SignParams{Body: []byte("2")})
	c, res = f.v.Begin(second, t0)
	if c == nil {
		t.Fatalf("Begin: %s", res.Reason)
	}
	if fresh, err := f.store.Record(ctx, c.NonceKey(), t0, time.Minute); !fresh || err != nil {
		t.Fatalf("Record: fresh=%v err=%v", fresh, err)
	}
	if res := f.v.Verify(ctx, second, t0); res.Reason != protocol.ReasonReplay {
		t.Fatalf("Verify after Record: %s, want replay", res.Reason)
	}
}

// Configured authorities hold for "http" and "https" as spelled; a request
// that names any other scheme answers for no configured authority.
func TestConfiguredAuthoritySchemes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *protocol.Config) { c.Authorities = []string{"api.example.test"} })
	for _, c := range []struct {
		scheme, host string
		want         protocol.Reason
	}{
		{"", "api.example.test", protocol.ReasonOK},
		{"https", "api.example.test:443", protocol.ReasonOK},
		{"http", "api.example.test", protocol.ReasonOK},
		{"http", "API.example.test:80", protocol.ReasonOK},
		{"http", "api.example.test:443", protocol.ReasonWrongAudience},
		{"HTTPS", "api.example.test", protocol.ReasonWrongAudience},
		{"ws", "api.example.test", protocol.ReasonWrongAudience},
		{"https", "other.example.test", protocol.ReasonWrongAudience},
	} {
		auth, err := protocol.Authority(c.host, cmp.Or(c.scheme, "https"))
		if err != nil {
			t.Fatal(err)
		}
		req := f.sign(t, protocol.SignParams{Version: protocol.Version2, Authority: auth})
		req.Host, req.Scheme = c.host, c.scheme
		if res := f.v.Verify(ctx, req, t0); res.Reason != c.want {
			t.Errorf("scheme %q, host %q: %s (%v), want %s", c.scheme, c.host, res.Reason, res.Err, c.want)
		}
	}
}

func TestParseUncompressedPublicKey(t *testing.T) {
	key, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := key.Public().Uncompressed()
	k, err := protocol.ParseUncompressedPublicKey(good)
	if err != nil || !k.Equal(key.Public()) {
		t.Fatalf("valid point: %v, %v", k, err)
	}
	offCurve := bytes.Clone(good)
	offCurve[64] ^= 1 // y flipped in its last bit: the same x, another y
	compressed := key.Public().Bytes()
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"off the curve": {offCurve, "not on the P-256 curve"},
		"compressed":    {compressed, "65-byte uncompressed"},
		"wrong prefix":  {append([]byte{3}, good[1:]...), "65-byte uncompressed"},
		"short":         {good[:64], "65-byte uncompressed"},
	} {
		if _, err := protocol.ParseUncompressedPublicKey(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, c.want)
		}
	}
}
