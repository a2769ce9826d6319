package protocol_test

import (
	"errors"
	"testing"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// TestVectors runs every section of every vector file through the native
// core.
func TestVectors(t *testing.T) {
	files := vectors.Load(t)
	counts := map[string]int{}
	for _, f := range files {
		for i, v := range f.Canonical {
			counts["canonical"]++
			t.Run(vectors.Name(f, "canonical", v.ID, i), func(t *testing.T) { checkCanonical(t, v) })
		}
		for i, v := range f.Verify {
			counts["verify"]++
			t.Run(vectors.Name(f, "verify", v.ID, i), func(t *testing.T) { checkVerify(t, v) })
		}
		for i, v := range f.Header {
			counts["header"]++
			t.Run(vectors.Name(f, "header", v.ID, i), func(t *testing.T) { checkHeader(t, v) })
		}
		for i, v := range f.DeviceID {
			counts["device_id"]++
			t.Run(vectors.Name(f, "device_id", v.ID, i), func(t *testing.T) {
				k, err := protocol.DecodePublicKey(v.PublicKey)
				if err != nil {
					t.Fatalf("vector %s: %v", v.ID, err)
				}
				if got := k.DeviceID(); got != v.DeviceID {
					t.Errorf("vector %s: device ID %q, want %q", v.ID, got, v.DeviceID)
				}
			})
		}
		for name, k := range f.Keys {
			t.Run(vectors.Name(f, "keys", name, 0), func(t *testing.T) { checkKey(t, k) })
		}
	}
	t.Run("request", func(t *testing.T) { vectors.RunRequests(t, files, vectors.NativeDecide) })
	for _, s := range vectors.Sections[:4] {
		if counts[s] == 0 {
			t.Errorf("no %s vectors in any file", s)
		}
	}
}

func checkKey(t *testing.T, k vectors.Key) {
	raw, err := decodeHex(k.PrivateHex)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := protocol.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := priv.Public().String(); got != k.PublicKey {
		t.Errorf("public key %q, want %q", got, k.PublicKey)
	}
	if got := priv.Public().DeviceID(); got != k.DeviceID {
		t.Errorf("device ID %q, want %q", got, k.DeviceID)
	}
}

func checkCanonical(t *testing.T, v *vectors.Canonical) {
	body, err := vectors.DecodeStd(v.BodyB64)
	if err != nil {
		t.Fatalf("vector %s: body_b64: %v", v.ID, err)
	}
	target, err := protocol.ClientCanonicalTarget(v.Target)
	if err != nil {
		t.Fatalf("vector %s: target %q: %v", v.ID, v.Target, err)
	}
	version := v.Version
	if version == "" {
		version = protocol.Version1
	}
	m := protocol.Message{Version: version, Method: v.Method, Authority: v.Authority, Target: target,
		TS: v.TS, Nonce: v.Nonce, BodyHash: protocol.BodyHash(body)}
	got, err := m.Bytes()
	if err != nil {
		t.Fatalf("vector %s: %v", v.ID, err)
	}
	if string(got) != v.Expected {
		t.Errorf("vector %s: canonical string\n got %q\nwant %q", v.ID, got, v.Expected)
	}
	// The verifying side must agree: what a WHATWG client sends on the
	// wire canonicalises to the same TARGET.
	wire, err := protocol.RequestTarget(v.Target)
	if err != nil {
		t.Fatalf("vector %s: RequestTarget: %v", v.ID, err)
	}
	server, err := protocol.CanonicalTarget(wire)
	if err != nil {
		t.Fatalf("vector %s: CanonicalTarget(%q): %v", v.ID, wire, err)
	}
	if server != target {
		t.Errorf("vector %s: verifier side %q (wire %q), signer side %q", v.ID, server, wire, target)
	}
}

func checkVerify(t *testing.T, v *vectors.Verify) {
	k, err := protocol.DecodePublicKey(v.PublicKey)
	if err != nil {
		if v.Valid {
			t.Fatalf("vector %s: key: %v", v.ID, err)
		}
		return
	}
	sig, err := protocol.DecodeSignatureText(v.Sig)
	if err != nil {
		if v.Valid {
			t.Fatalf("vector %s: sig: %v", v.ID, err)
		}
		return
	}
	err = k.Verify([]byte(v.Message), sig[:])
	if (err == nil) != v.Valid {
		t.Errorf("vector %s: valid=%v, want %v (%v)", v.ID, err == nil, v.Valid, err)
	}
}

func checkHeader(t *testing.T, v *vectors.Header) {
	h, err := protocol.ParseHeader(v.Value)
	got := "ok"
	if err != nil {
		var he *protocol.HeaderError
		if !errors.As(err, &he) {
			t.Fatalf("vector %s: error %v is not a HeaderError", v.ID, err)
		}
		got = string(he.Code)
	}
	if got != v.Result {
		t.Fatalf("vector %s: result %q, want %q (%v)", v.ID, got, v.Result, err)
	}
	if err != nil {
		return
	}
	fields := map[string]string{"v": h.V, "id": h.ID, "ts": h.TS, "nonce": h.Nonce, "sig": h.Sig}
	for k, want := range v.Fields {
		if fields[k] != want {
			t.Errorf("vector %s: field %s = %q, want %q", v.ID, k, fields[k], want)
		}
	}
}

func decodeHex(s string) ([]byte, error) {
	b := make([]byte, len(s)/2)
	for i := range b {
		var x byte
		for _, c := range []byte(s[2*i : 2*i+2]) {
			switch {
			case c >= '0' && c <= '9':
				x = x<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				x = x<<4 | (c - 'a' + 10)
			default:
				return nil, errors.New("bad hex")
			}
		}
		b[i] = x
	}
	return b, nil
}
