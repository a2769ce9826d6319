package hostcrypto_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"

	"github.com/amesh-go/amesh/envoy-filter/internal/envoyhost"
	"github.com/amesh-go/amesh/envoy-filter/internal/hostcrypto"
	"github.com/amesh-go/amesh/wasm/protocol"
)

func envoy(name string, param []byte) ([]byte, error) {
	if name != hostcrypto.FunctionName {
		return nil, errors.New("no such function")
	}
	return envoyhost.VerifySignature(param), nil
}

// testKey returns a fresh P-256 key. It uses crypto/ecdsa directly: wasm
// builds of the protocol package have no software private keys (a guest
// never holds one), and these tests also run compiled to wasip1.
func testKey(t *testing.T) (*ecdsa.PrivateKey, *protocol.PublicKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := protocol.ParsePublicKey(elliptic.MarshalCompressed(elliptic.P256(), k.X, k.Y))
	if err != nil {
		t.Fatal(err)
	}
	return k, pub
}

// signDigest signs with crypto/ecdsa and returns a low-S r||s signature.
func signDigest(t *testing.T, k *ecdsa.PrivateKey, digest []byte) []byte {
	t.Helper()
	der, err := ecdsa.SignASN1(rand.Reader, k, digest)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &v); err != nil {
		t.Fatal(err)
	}
	sig, err := protocol.RawSignature(v.R.Bytes(), v.S.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestProbeVectorIsValidLowS(t *testing.T) {
	key, sig, msg := hostcrypto.ProbeVector()
	if !protocol.IsLowS(sig) {
		t.Fatal("probe signature is high-S")
	}
	if err := key.Verify(msg, sig); err != nil {
		t.Fatalf("probe vector does not verify with Go's crypto: %v", err)
	}
	if err := key.Verify([]byte("sample!"), sig); err == nil {
		t.Fatal("probe signature verifies over the wrong message")
	}
}

func TestSPKIParsesAsTheSameKey(t *testing.T) {
	for range 20 {
		k, pub := testKey(t)
		der, err := hostcrypto.SPKI(pub)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatalf("SPKI does not parse: %v", err)
		}
		if !parsed.(*ecdsa.PublicKey).Equal(&k.PublicKey) {
			t.Fatal("SPKI holds another key")
		}
	}
}

func TestVerifyThroughEnvoyFunction(t *testing.T) {
	k, pub := testKey(t)
	msg := []byte("AMv1\nGET\n/x\n1\nbm9uY2Vub25jZQ\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	d := sha256.Sum256(msg)
	sig := signDigest(t, k, d[:])
	der, err := hostcrypto.SPKI(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := hostcrypto.Verify(envoy, der, msg, sig); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	bad := append([]byte(nil), msg...)
	bad[len(bad)-1] ^= 1
	if err := hostcrypto.Verify(envoy, der, bad, sig); !errors.Is(err, hostcrypto.ErrInvalid) {
		t.Fatalf("tampered message: %v, want ErrInvalid", err)
	}
	failing := func(string, []byte) ([]byte, error) { return nil, errors.New("not found") }
	if err := hostcrypto.Verify(failing, der, msg, sig); err == nil || errors.Is(err, hostcrypto.ErrInvalid) {
		t.Fatalf("host failure reported as %v, want a non-ErrInvalid error", err)
	}
}

func TestProbe(t *testing.T) {
	if err := hostcrypto.Probe(envoy); err != nil {
		t.Fatalf("probe against Envoy's function: %v", err)
	}
	yes := func(string, []byte) ([]byte, error) { return []byte{0x08, 0x01}, nil }
	if err := hostcrypto.Probe(yes); err == nil {
		t.Fatal("probe trusted a host that accepts everything")
	}
	no := func(string, []byte) ([]byte, error) { return []byte{0x08, 0x00}, nil }
	if err := hostcrypto.Probe(no); err == nil {
		t.Fatal("probe trusted a host that rejects everything")
	}
	garbage := func(string, []byte) ([]byte, error) { return []byte{0xff}, nil }
	if err := hostcrypto.Probe(garbage); err == nil {
		t.Fatal("probe trusted a host that answers garbage")
	}
	missing := func(string, []byte) ([]byte, error) {
		return nil, errors.New("error status returned by host: not found")
	}
	if err := hostcrypto.Probe(missing); err == nil {
		t.Fatal("probe trusted a host without the function")
	}
}

func TestDecodeResult(t *testing.T) {
	cases := []struct {
		in      []byte
		ok      bool
		msg     string
		wantErr bool
	}{
		{nil, false, "", false},
		{[]byte{0x08, 0x01}, true, "", false},
		{[]byte{0x08, 0x00, 0x12, 0x02, 'n', 'o'}, false, "no", false},
		// Unknown fields of every wire type are skipped.
		{[]byte{0x18, 0x05, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2d, 1, 2, 3, 4, 0x08, 0x01}, true, "", false},
		{[]byte{0x12, 0x05, 'x'}, false, "", true},
		{[]byte{0x08}, false, "", true},
		{[]byte{0x0b}, false, "", true},
	}
	for i, c := range cases {
		ok, msg, err := hostcrypto.DecodeResult(c.in)
		if (err != nil) != c.wantErr || ok != c.ok || msg != c.msg {
			t.Errorf("case %d: (%v, %q, %v), want (%v, %q, err=%v)", i, ok, msg, err, c.ok, c.msg, c.wantErr)
		}
	}
}
