package vectors

import (
	"bytes"
	"crypto/ecdsa"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amesh-go/amesh/wasm/protocol"
)

func TestExtraVectors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"schema":"amesh-vectors/1","device_id":[{"id":"x","public_key":"k","device_id":"d","unknown":1}],"future_section":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	badSchema := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badSchema, []byte(`{"schema":"other/1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	notJSON := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(notJSON, []byte(`{"schema":`), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv(ExtraEnv, good)
	paths, err := Paths()
	if err != nil {
		t.Fatal(err)
	}
	if paths[len(paths)-1] != good {
		t.Fatalf("extra file not listed last: %v", paths)
	}
	f, err := Read(good)
	if err != nil {
		t.Fatalf("unknown fields and sections must be ignored: %v", err)
	}
	if len(f.DeviceID) != 1 || f.DeviceID[0].ID != "x" {
		t.Fatalf("parsed %+v", f.DeviceID)
	}
	for _, p := range []string{badSchema, notJSON, filepath.Join(dir, "missing.json")} {
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), filepath.Base(p)) && !os.IsNotExist(err) {
			t.Errorf("Read(%s) = %v, want an error naming the file", p, err)
		}
	}
}

func TestProjectVectorsCount(t *testing.T) {
	t.Setenv(ExtraEnv, "")
	files := Load(t)
	own := 0
	for _, f := range files {
		if filepath.Base(f.Path) == "public.json" {
			continue
		}
		own += len(f.Canonical) + len(f.Verify) + len(f.Header) + len(f.DeviceID) + len(f.Request)
	}
	if own < 200 {
		t.Fatalf("%d project vectors, want at least 200", own)
	}
}

func TestHighS(t *testing.T) {
	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := make([]byte, 32)
	sig, err := k.SignDigest(d)
	if err != nil {
		t.Fatal(err)
	}
	high := HighS(sig)
	if protocol.IsLowS(high) || !bytes.Equal(high[:32], sig[:32]) {
		t.Fatalf("HighS(%x) = %x: want the same r and a high s", sig, high)
	}
	if !bytes.Equal(HighS(high), sig) {
		t.Fatal("HighS is not its own inverse")
	}
	// Plain ECDSA accepts the twin: it is the same signature.
	if !ecdsa.VerifyASN1(k.Public().ECDSA(), d, mustDER(t, high)) {
		t.Fatal("the twin does not verify under plain ECDSA")
	}
}

func mustDER(t *testing.T, raw []byte) []byte {
	t.Helper()
	der, err := protocol.DERSignature(raw)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
