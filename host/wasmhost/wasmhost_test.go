package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/amesh-go/amesh/host/wasmhost/internal/wasmbuild"
	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// TestEmbeddedModuleUpToDate checks that the committed amesh.wasm is what
// its sources build: the source fingerprint always, and the bytes, by
// rebuilding, when this toolchain is the one that built it.
func TestEmbeddedModuleUpToDate(t *testing.T) {
	root, err := vectors.Root()
	if err != nil {
		t.Fatal(err)
	}
	stamp, err := wasmbuild.ReadStamp("amesh.wasm.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := wasmbuild.Sum(Module()); got != stamp.Wasm {
		t.Fatalf("amesh.wasm has sha256 %s, its stamp says %s: run go generate ./host/wasmhost", got, stamp.Wasm)
	}
	src, err := wasmbuild.Sources(root)
	if err != nil {
		t.Fatal(err)
	}
	if src != stamp.Sources {
		t.Fatalf("the guest's sources changed since amesh.wasm was built: run go generate ./host/wasmhost")
	}
	if stamp.Go != runtime.Version() {
		t.Logf("amesh.wasm was built by %s, this is %s: sources match, bytes not compared", stamp.Go, runtime.Version())
		return
	}
	out := filepath.Join(t.TempDir(), "amesh.wasm")
	if err := wasmbuild.Build(root, out); err != nil {
		t.Fatal(err)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, Module()) {
		t.Fatalf("rebuilding amesh.wasm gives sha256 %s, the committed one is %s: run go generate ./host/wasmhost",
			wasmbuild.Sum(built), stamp.Wasm)
	}
}

func TestSignKeepsPrivateKeyOutOfGuest(t *testing.T) {
	ctx := context.Background()
	inst := instance(t)
	k := key(t, 0x5a)
	scalar, _ := k.Bytes()
	now := time.Now()
	for _, version := range []string{protocol.Version1, protocol.Version2} {
		p := protocol.SignParams{Version: version, Method: "post", Target: "/orders?b=2&a=1", Authority: "api.example.test:8443",
			Body: []byte(`{"x":1}`), Time: now}
		s, err := inst.Sign(ctx, k, p)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := protocol.NewVerifier(protocol.Config{AllowList: allow(t, protocol.RoleController, k),
			Nonces: protocol.NewMemoryNonceStore(0), Authorities: []string{"api.example.test:8443"}})
		req := &protocol.Request{Method: "POST", Target: "/orders?b=2&a=1", Host: "api.example.test:8443",
			Authorization: []string{s.Authorization}, Body: p.Body}
		if res := v.Verify(ctx, req, now); !res.OK() {
			t.Fatalf("v%s: signed in wasm, rejected natively: %s %v", version, res.Reason, res.Err)
		}
	}
	mem, ok := inst.mod.Memory().Read(0, inst.mod.Memory().Size())
	if !ok {
		t.Fatal("cannot read guest memory")
	}
	if bytes.Contains(mem, scalar) {
		t.Fatal("the private scalar is in guest memory")
	}

	// A signer for another key is refused, and the host's error surfaces.
	if _, err := inst.Sign(ctx, failingSigner{k.PublicKey()}, protocol.SignParams{Method: "GET", Target: "/", Time: now}); err == nil ||
		!strings.Contains(err.Error(), "token removed") {
		t.Fatalf("failing signer: err %v", err)
	}
}

type failingSigner struct{ pub []byte }

func (s failingSigner) PublicKey() []byte                 { return s.pub }
func (s failingSigner) SignDigest([]byte) ([]byte, error) { return nil, errors.New("token removed") }

func TestSignPrepareFinish(t *testing.T) {
	ctx := context.Background()
	inst := instance(t)
	k := key(t, 0x33)
	now := time.Unix(1_800_000_000, 0)
	ps, err := inst.SignPrepare(ctx, k.PublicKey(), protocol.SignParams{Method: "GET", Target: "/a/../b?z=1&y", Time: now,
		Nonce: bytes.Repeat([]byte{1}, 16)})
	if err != nil {
		t.Fatal(err)
	}
	want := "AMv1\nGET\n/b?y=&z=1\n1800000000\nAQEBAQEBAQEBAQEBAQEBAQ\n" + protocol.EmptyBodyHash
	if string(ps.Message) != want || ps.TS != "1800000000" || ps.Nonce != "AQEBAQEBAQEBAQEBAQEBAQ" {
		t.Fatalf("prepared %q ts %s nonce %s", ps.Message, ps.TS, ps.Nonce)
	}
	sig, err := k.SignDigest(ps.Digest)
	if err != nil {
		t.Fatal(err)
	}
	s, err := inst.SignFinish(ctx, ps, sig)
	if err != nil {
		t.Fatal(err)
	}
	h, err := protocol.ParseHeader(s.Authorization)
	if err != nil || h.TS != ps.TS || h.Nonce != ps.Nonce {
		t.Fatalf("header %q: %v", s.Authorization, err)
	}
	// A handle is good for one finish; a wrong signature is refused.
	if _, err := inst.SignFinish(ctx, ps, sig); err == nil {
		t.Fatal("second sign_finish on one handle succeeded")
	}
	ps, _ = inst.SignPrepare(ctx, k.PublicKey(), protocol.SignParams{Method: "GET", Target: "/", Time: now})
	bad := append([]byte(nil), sig...)
	bad[10] ^= 1
	if _, err := inst.SignFinish(ctx, ps, bad); err == nil {
		t.Fatal("sign_finish accepted a signature that does not verify")
	}
}

// call invokes an export with raw numbers, as a careless or hostile host
// might, and returns the guest's result record.
func rawCall(t *testing.T, inst *Instance, name string, args ...uint64) (*abi.Result, error) {
	t.Helper()
	return inst.invoke(context.Background(), inst.mod.ExportedFunction(name), args...)
}

func alloc(t *testing.T, inst *Instance, data []byte) uint32 {
	t.Helper()
	r, err := inst.mod.ExportedFunction("amesh_alloc").Call(context.Background(), uint64(len(data)))
	if err != nil || api.DecodeU32(r[0]) == 0 {
		t.Fatalf("amesh_alloc: %v %v", r, err)
	}
	p := api.DecodeU32(r[0])
	inst.mod.Memory().Write(p, data)
	return p
}

// TestABIBoundaries feeds the exports pointers, lengths, handles and
// records a host must not send, and checks that each is refused with an
// error record and leaves the instance working.
func TestABIBoundaries(t *testing.T) {
	ctx := context.Background()
	inst := instance(t)
	if res, err := rawCall(t, inst, "amesh_verify", 0, 0); err == nil || !strings.Contains(res.Error, "amesh_alloc") {
		t.Fatalf("verify before configure with a null pointer: %v", err)
	}
	k := key(t, 7)
	if err := inst.Configure(ctx, &Config{AllowList: allow(t, protocol.RoleController, k), Nonces: protocol.NewMemoryNonceStore(0)}); err != nil {
		t.Fatal(err)
	}
	var e abi.Encoder
	(&abi.Request{Method: "GET", Target: "/"}).Encode(&e)
	p := alloc(t, inst, e.Buf)
	mem := uint64(inst.mod.Memory().Size())
	cases := []struct {
		name string
		fn   string
		args []uint64
		want string
	}{
		{"pointer inside a buffer", "amesh_verify", []uint64{uint64(p) + 1, 4}, "amesh_alloc"},
		{"length beyond the buffer", "amesh_verify", []uint64{uint64(p), uint64(len(e.Buf)) + 1}, "exceeds"},
		{"length 4 GiB - 1", "amesh_verify", []uint64{uint64(p), 1<<32 - 1}, "exceeds"},
		{"pointer past memory", "amesh_verify", []uint64{mem + 16, 8}, "amesh_alloc"},
		{"truncated record", "amesh_verify", []uint64{uint64(p), 3}, "truncated"},
		{"record of another export", "amesh_configure", []uint64{uint64(p), uint64(len(e.Buf))}, "malformed"},
		{"unknown handle", "amesh_commit", []uint64{12345, 0, 0}, "no pending"},
		{"sig_status out of range", "amesh_commit", []uint64{1, 7, 0}, "no pending"},
		{"sign_finish, unknown handle", "amesh_sign_finish", []uint64{99, uint64(p), 0}, "no pending"},
	}
	for _, c := range cases {
		res, err := rawCall(t, inst, c.fn, c.args...)
		if err == nil || !strings.Contains(res.Error, c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
	// Freed buffers are no longer accepted.
	inst.mod.ExportedFunction("amesh_free").Call(ctx, uint64(p))
	if res, err := rawCall(t, inst, "amesh_verify", uint64(p), uint64(len(e.Buf))); err == nil || !strings.Contains(res.Error, "freed") {
		t.Errorf("freed buffer: %v", err)
	}
	// An allocation above the ABI limit fails with 0.
	if r, err := inst.mod.ExportedFunction("amesh_alloc").Call(ctx, abi.MaxRecordSize+1); err != nil || api.DecodeU32(r[0]) != 0 {
		t.Errorf("oversized alloc: %v %v", r, err)
	}
	// Bad commit arguments on a real handle are refused too.
	now := time.Now()
	pr, _ := inst.Prepare(ctx, signed(t, k, "GET", "/", nil, now), now)
	if pr == nil {
		t.Fatal("prepare failed")
	}
	if res, err := rawCall(t, inst, "amesh_commit", uint64(pr.Handle), 9, 0); err == nil || !strings.Contains(res.Error, "sig_status") {
		t.Errorf("sig_status 9: %v", err)
	}
	if inst.Broken() != nil {
		t.Fatalf("instance broken: %v", inst.Broken())
	}
	if res := inst.Verify(ctx, signed(t, k, "GET", "/", nil, now), now); !res.OK() {
		t.Fatalf("after the misuse, a good request: %s %v", res.Reason, res.Err)
	}
}

func TestPrepareLimitAndRelease(t *testing.T) {
	ctx := context.Background()
	inst := instance(t)
	k := key(t, 8)
	if err := inst.Configure(ctx, &Config{AllowList: allow(t, protocol.RoleController, k), MaxPending: 3}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var held []*Prepared
	for range 3 {
		p, res := inst.Prepare(ctx, signed(t, k, "GET", "/", nil, now), now)
		if p == nil {
			t.Fatalf("prepare: %s %v", res.Reason, res.Err)
		}
		held = append(held, p)
	}
	if p, res := inst.Prepare(ctx, signed(t, k, "GET", "/", nil, now), now); p != nil || res.Code != protocol.CodeUnavailable {
		t.Fatalf("fourth pending check: %v %s", p, res.Code)
	}
	if err := inst.Release(ctx, held[0].Handle); err != nil {
		t.Fatal(err)
	}
	p, _ := inst.Prepare(ctx, signed(t, k, "GET", "/", nil, now), now)
	if p == nil {
		t.Fatal("prepare after release failed")
	}
	// The guest verifies (sig unsupported) and records in its own store.
	if res := inst.Commit(ctx, p, abi.SigUnsupported, abi.CommitNonceByGuest); !res.OK() {
		t.Fatalf("commit: %s %v", res.Reason, res.Err)
	}
	// A host that says the signature is invalid gets a 401, whatever it
	// says of the nonce.
	if res := inst.Commit(ctx, held[1], abi.SigInvalid, abi.CommitNonceFresh); res.Reason != protocol.ReasonBadSignature {
		t.Fatalf("invalid signature: %s", res.Reason)
	}
	if res := inst.Commit(ctx, held[2], abi.SigValid, abi.CommitNonceFailure); res.Code != protocol.CodeUnavailable {
		t.Fatalf("host nonce failure: %s", res.Code)
	}
}

// TestGuestNonceStoreSurvivesReload checks that reconfiguring (an
// allow-list reload) keeps the nonces the guest has seen.
func TestGuestNonceStoreSurvivesReload(t *testing.T) {
	ctx := context.Background()
	inst := instance(t)
	k := key(t, 9)
	cfg := &Config{AllowList: allow(t, protocol.RoleController, k)}
	if err := inst.Configure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	req := signed(t, k, "GET", "/", nil, now)
	if res := inst.Verify(ctx, req, now); !res.OK() {
		t.Fatal(res.Reason)
	}
	if err := inst.Configure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if res := inst.Verify(ctx, req, now); res.Reason != protocol.ReasonReplay {
		t.Fatalf("replay after reload: %s", res.Reason)
	}
}

// TestConfigureRejects checks that a bad configuration is refused and the
// previous one stays.
func TestConfigureRejects(t *testing.T) {
	ctx := context.Background()
	inst := instance(t)
	k := key(t, 10)
	if err := inst.Configure(ctx, &Config{AllowList: allow(t, protocol.RoleController, k)}); err != nil {
		t.Fatal(err)
	}
	bad := []*Config{
		{ClockSkew: 10 * time.Millisecond},
		{Authorities: []string{"bad host"}},
		{MaxBodyBytes: -1},
	}
	for _, c := range bad {
		if err := inst.Configure(ctx, c); err == nil {
			t.Errorf("configuration %+v accepted", c)
		}
	}
	now := time.Now()
	if res := inst.Verify(ctx, signed(t, k, "GET", "/", nil, now), now); !res.OK() {
		t.Fatalf("previous configuration lost: %s", res.Reason)
	}
}

func TestVerifierPool(t *testing.T) {
	ctx := context.Background()
	k, other := key(t, 11), key(t, 12)
	nonces := protocol.NewMemoryNonceStore(0)
	v, err := engine(t).NewVerifier(ctx, Config{AllowList: allow(t, protocol.RoleController, k, other), Nonces: nonces}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	now := time.Now()
	var reqs []*protocol.Request
	for i := range 32 {
		reqs = append(reqs, signed(t, k, "POST", fmt.Sprintf("/n/%d", i), []byte("body"), now))
	}
	var wg sync.WaitGroup
	results := make([]protocol.Result, 2*len(reqs))
	for i := range results {
		wg.Go(func() { results[i] = v.Verify(ctx, reqs[i%len(reqs)], now) })
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.OK():
			ok++
		case r.Reason != protocol.ReasonReplay:
			t.Fatalf("unexpected rejection %s %v", r.Reason, r.Err)
		}
	}
	if ok != len(reqs) {
		t.Fatalf("%d requests accepted, want %d (each sent twice)", ok, len(reqs))
	}

	// Revocation: the new list applies to every instance.
	if err := v.SetAllowList(ctx, allow(t, protocol.RoleController, other), false); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if r := v.Verify(ctx, signed(t, k, "GET", "/", nil, now), now); r.Reason != protocol.ReasonUnknownKey {
			t.Fatalf("revoked key: %s", r.Reason)
		}
		if r := v.Verify(ctx, signed(t, other, "GET", "/", nil, now), now); !r.OK() {
			t.Fatalf("remaining key: %s", r.Reason)
		}
	}
	if err := v.SetAllowList(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	if r := v.Verify(ctx, signed(t, other, "GET", "/", nil, now), now); r.Status() != 500 {
		t.Fatalf("integrity failure: %d", r.Status())
	}

	// A broken instance is replaced, and the replacement is configured.
	if err := v.SetAllowList(ctx, allow(t, protocol.RoleController, other), false); err != nil {
		t.Fatal(err)
	}
	p, _ := v.borrow(ctx)
	p.inst.broken = errors.New("simulated trap")
	v.give(ctx, p)
	for range 4 {
		if r := v.Verify(ctx, signed(t, other, "GET", "/", nil, now), now); !r.OK() {
			t.Fatalf("after replacing an instance: %s %v", r.Reason, r.Err)
		}
	}

	// A nonce store failure is a 503 whose error is the store's.
	storeErr := errors.New("redis: connection refused")
	if err := v.Reconfigure(ctx, Config{AllowList: allow(t, protocol.RoleController, other), Nonces: failingStore{storeErr}}); err != nil {
		t.Fatal(err)
	}
	if r := v.Verify(ctx, signed(t, other, "GET", "/", nil, now), now); r.Status() != 503 || !errors.Is(r.Err, storeErr) {
		t.Fatalf("store failure: %d %v", r.Status(), r.Err)
	}

	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if r := v.Verify(ctx, signed(t, other, "GET", "/", nil, now), now); r.Status() != 503 {
		t.Fatalf("closed verifier: %d", r.Status())
	}
}

type failingStore struct{ err error }

func (s failingStore) Record(context.Context, string, time.Time, time.Duration) (bool, error) {
	return false, s.err
}

// The Go host hashes canonical strings natively (crypto 2) unless told to
// verify in wasm: the difference is only speed, so only this pins it.
func TestConfigRecordCrypto(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want int64
	}{
		{Config{}, abi.CryptoHostMessage},
		{Config{PureWasm: true}, abi.CryptoGuest},
	} {
		got, err := abi.DecodeConfig(c.cfg.record())
		if err != nil {
			t.Fatal(err)
		}
		if got.Crypto != c.want {
			t.Errorf("PureWasm=%v: crypto %d, want %d", c.cfg.PureWasm, got.Crypto, c.want)
		}
	}
}
