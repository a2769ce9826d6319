package wasmhost

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// Flags of FuzzDifferential.
const (
	diffSignerMask   = 3 // 0 controller, 1 target-role device, 2 stranger, 3 the raw header input
	diffV2           = 1 << 2
	diffOtherBody    = 1 << 3
	diffOtherTarget  = 1 << 4
	diffRequireV2    = 1 << 5
	diffAuthorities  = 1 << 6
	diffSmallLimit   = 1 << 7
	diffIntegrity    = 1 << 8
	diffTwoHeaders   = 1 << 9
	diffHTTP         = 1 << 10
	diffPrepareFlow  = 1 << 11
	diffPureWasmMode = 1 << 12
)

var diffInst struct {
	once sync.Once
	inst *Instance
	err  error
}

// FuzzDifferential sends the same request, built from random parts and
// signed or not, to the native core and to amesh.wasm, and requires the
// same code, reason, version and device, for the request and its replay.
func FuzzDifferential(f *testing.F) {
	f.Add("POST", "/api/orders?b=2&a=1", "api.example.test", []byte(`{"a":1}`), "", int64(0), uint16(0))
	f.Add("get", "/a/./b/../c?x=%7e&&y", "API.example.test:443", []byte{}, "", int64(-29), uint16(diffV2|diffAuthorities))
	f.Add("PUT", "https://api.example.test/abs?q", "api.example.test:80", []byte("x"), "", int64(31), uint16(diffV2|diffHTTP|diffPrepareFlow))
	f.Add("GET", "/", "h", []byte("0123456789abcdefX"), "", int64(0), uint16(diffSmallLimit|diffOtherBody))
	f.Add("GET", "/", "h", []byte(nil), `AuthMesh v="1",id="A3zyexiNA09+ilI4AwS1GsPAiWnid/IbNaYLSPxHZpl4",ts="1",nonce="AAAAAAAAAAAAAAAAAAAAAA",sig="x"`, int64(0), uint16(3))
	f.Add("DELETE", "//double//slash", "h", []byte(nil), "", int64(5), uint16(1|diffIntegrity))
	f.Add("GET", "/t", "h", []byte(nil), "", int64(0), uint16(2|diffTwoHeaders|diffRequireV2))
	f.Add("GET", "/p", "h", []byte("b"), "", int64(0), uint16(diffOtherTarget|diffPureWasmMode))
	keys := []*protocol.PrivateKey{key(f, 0x21), key(f, 0x22), key(f, 0x23)}
	devs := []*protocol.Device{
		{Role: protocol.RoleController, Key: keys[0].Public(), Name: "ctl"},
		{Role: protocol.RoleTarget, Key: keys[1].Public(), Name: "tgt"},
	}
	list, err := protocol.NewStaticAllowList(devs...)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, method, target, host string, body []byte, header string, tsDelta int64, flags uint16) {
		ctx := context.Background()
		diffInst.once.Do(func() { diffInst.inst, diffInst.err = engine(t).NewInstance(ctx) })
		if diffInst.err != nil {
			t.Fatal(diffInst.err)
		}
		inst := diffInst.inst
		scheme := "https"
		if flags&diffHTTP != 0 {
			scheme = "http"
		}
		cfg := protocol.Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(0), RequireV2: flags&diffRequireV2 != 0}
		if flags&diffAuthorities != 0 {
			cfg.Authorities = []string{"api.example.test", host}
		}
		if flags&diffSmallLimit != 0 {
			cfg.MaxBodyBytes = 16
		}
		native, err := protocol.NewVerifier(cfg)
		if err != nil {
			return // refused natively; TestConfigureRejects covers amesh.wasm refusing too
		}
		var auth []string
		if s := flags & diffSignerMask; s == 3 {
			auth = []string{header}
		} else {
			p := protocol.SignParams{Method: method, Target: target, Body: body,
				Time: now.Add(time.Duration(tsDelta%120) * time.Second)}
			if flags&diffV2 != 0 {
				p.Version = protocol.Version2
				p.Authority, _ = protocol.Authority(host, scheme)
			}
			if flags&diffOtherBody != 0 {
				p.Body = append(p.Body, 'x')
			}
			if flags&diffOtherTarget != 0 {
				p.Target = "/other"
			}
			signed, err := protocol.SignRequest(keys[s], p)
			if err != nil {
				auth = []string{header}
			} else {
				auth = []string{signed.Authorization}
			}
		}
		if flags&diffTwoHeaders != 0 {
			auth = append(auth, auth[0])
		}
		if auth[0] == "" && len(auth) == 1 {
			auth = nil
		}
		req := &protocol.Request{Method: method, Target: target, Host: host, Scheme: scheme, Authorization: auth, Body: body}

		m := hostCrypto
		switch {
		case flags&diffPrepareFlow != 0:
			m = prepareCommit
		case flags&diffPureWasmMode != 0:
			m = pureWasm
		}
		wnonces := protocol.NewMemoryNonceStore(0)
		wcfg := wasmConfig(cfg, flags&diffIntegrity != 0, m)
		wcfg.Nonces = wnonces
		if flags&diffIntegrity != 0 {
			native, _ = protocol.NewVerifier(withBrokenList(cfg))
		}
		if err := inst.Configure(ctx, wcfg); err != nil {
			t.Fatalf("configuration accepted natively, refused by amesh.wasm: %v", err)
		}
		for round := range 2 { // the request, then its replay
			n := native.Verify(ctx, req, now)
			w := decideWasm(ctx, inst, m, wnonces, req, now)
			if err := sameDecision(n, w); err != nil {
				t.Fatalf("round %d, %s: %v", round, m, err)
			}
		}
	})
}

type brokenAllowList struct{}

func (brokenAllowList) Lookup([protocol.PublicKeySize]byte) (*protocol.Device, error) {
	return nil, protocol.ErrIntegrity
}

func withBrokenList(cfg protocol.Config) protocol.Config {
	cfg.AllowList = brokenAllowList{}
	return cfg
}
