package wasmhost

import (
	"context"
	"testing"
	"time"

	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/keystore/swtpmtest"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// TestSignWithTPMKey signs requests inside amesh.wasm with a key held in a
// TPM (swtpm, started by the test): the guest asks through sign_digest,
// the keystore signs in the TPM, and the result verifies natively, as
// version 1 and version 2, many times (TPMs return high-S signatures half
// the time; the guest normalises them).
func TestSignWithTPMKey(t *testing.T) {
	sw := swtpmtest.Start(t)
	key, err := keystore.Create(keystore.BackendTPM, keystore.Options{Dir: t.TempDir(), TPMDevice: sw.Device})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := protocol.ParsePublicKey(key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inst := instance(t)
	list, _ := protocol.NewStaticAllowList(&protocol.Device{Role: protocol.RoleController, Key: pub})
	v, err := protocol.NewVerifier(protocol.Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(0),
		Authorities: []string{"api.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		version := []string{protocol.Version1, protocol.Version2}[i%2]
		now := time.Now()
		body := []byte{byte(i), 'x'}
		s, err := inst.Sign(ctx, key, protocol.SignParams{Version: version, Method: "POST", Target: "/tpm?i=1",
			Authority: "api.example.test", Body: body, Time: now})
		if err != nil {
			t.Fatalf("sign %d in wasm with the TPM key: %v", i, err)
		}
		req := &protocol.Request{Method: "POST", Target: "/tpm?i=1", Host: "api.example.test",
			Authorization: []string{s.Authorization}, Body: body}
		if res := v.Verify(ctx, req, now); !res.OK() {
			t.Fatalf("request %d (v%s) signed in wasm by the TPM: %s %v", i, version, res.Reason, res.Err)
		}
	}
}
