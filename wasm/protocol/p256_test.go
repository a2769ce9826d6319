//go:build !wasm

package protocol

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
)

// The wasm build verifies with p256.go instead of crypto/ecdsa. These tests
// run natively in every build and hold the two to the same answers.

func stdVerify(pub *[UncompressedKeySize]byte, digest []byte, sig *[SignatureSize]byte) bool {
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub[:])
	if err != nil {
		return false
	}
	return ecdsa.VerifyASN1(k, digest, derDiff(sig))
}

// derDiff is a DER encoder independent of the one in ecdsa_std.go (which
// the amesh_nistec build does not compile).
func derDiff(sig *[SignatureSize]byte) []byte {
	enc := func(v []byte) []byte {
		b := new(big.Int).SetBytes(v).Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{2, byte(len(b))}, b...)
	}
	body := append(enc(sig[:32]), enc(sig[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestP256AgainstCryptoECDSA(t *testing.T) {
	for i := range 40 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := k.PublicKey.Bytes()
		var pub [UncompressedKeySize]byte
		copy(pub[:], u)
		comp := elliptic.MarshalCompressed(elliptic.P256(), k.X, k.Y)
		var dec [UncompressedKeySize]byte
		if err := p256Decompress(&dec, comp); err != nil || dec != pub {
			t.Fatalf("decompress %x: %v, got %x want %x", comp, err, dec, pub)
		}
		digest := sha256.Sum256([]byte{byte(i)})
		der, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		raw, err := SignatureFromDER(der)
		if err != nil {
			t.Fatal(err)
		}
		sig := [SignatureSize]byte(raw)
		cases := map[string]func(d []byte, s *[SignatureSize]byte){
			"valid":      func([]byte, *[SignatureSize]byte) {},
			"digest bit": func(d []byte, _ *[SignatureSize]byte) { d[i%32] ^= 1 << (i % 8) },
			"r bit":      func(_ []byte, s *[SignatureSize]byte) { s[i%32] ^= 1 },
			"s bit":      func(_ []byte, s *[SignatureSize]byte) { s[32+i%32] ^= 0x80 },
			"swap r and s": func(_ []byte, s *[SignatureSize]byte) {
				r := [32]byte(s[:32])
				copy(s[:32], s[32:])
				copy(s[32:], r[:])
			},
			"high s": func(_ []byte, s *[SignatureSize]byte) {
				n := new(big.Int).SetBytes(orderN[:])
				v := new(big.Int).SetBytes(s[32:])
				v.Sub(n, v).FillBytes(s[32:])
			},
			"short digest": func([]byte, *[SignatureSize]byte) {},
		}
		for name, mutate := range cases {
			d := bytes.Clone(digest[:])
			sg := sig
			mutate(d, &sg)
			if name == "short digest" {
				d = d[:20]
			}
			if got, want := p256Verify(&pub, d, &sg), stdVerify(&pub, d, &sg); got != want {
				t.Errorf("key %d, %s: p256Verify %v, crypto/ecdsa %v", i, name, got, want)
			}
		}
		long := append(bytes.Clone(digest[:]), 0xaa, 0xbb)
		if got, want := p256Verify(&pub, long, &sig), stdVerify(&pub, long, &sig); got != want || !got {
			t.Errorf("key %d, long digest: p256Verify %v, crypto/ecdsa %v", i, got, want)
		}
	}
}

func TestP256DecompressRejects(t *testing.T) {
	var out [UncompressedKeySize]byte
	bad := [][]byte{
		nil, {0}, {2}, append([]byte{4}, make([]byte, 32)...),
		append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...), // x >= p
	}
	// A valid point, but uncompressed: keys on the wire are compressed.
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	bad = append(bad, u)
	// x = 0 has no square root for y^2 = x^3 - 3x + b with this b? Find an
	// x that is not on the curve by trying small values.
	for x := byte(1); x < 40; x++ {
		c := append([]byte{2}, make([]byte, 32)...)
		c[32] = x
		if xs, _ := elliptic.UnmarshalCompressed(elliptic.P256(), c); xs == nil {
			bad = append(bad, c)
		}
	}
	for _, b := range bad {
		if err := p256Decompress(&out, b); err == nil {
			t.Errorf("p256Decompress(%x) accepted", b)
		}
	}
}

// FuzzP256Verify holds the wasm build's verifier to crypto/ecdsa on arbitrary
// digests and signatures under a fixed key and a key from the input.
func FuzzP256Verify(f *testing.F) {
	k, _ := ParsePrivateKey(bytes.Repeat([]byte{7}, 32))
	digest := sha256.Sum256([]byte("amesh"))
	sig, _ := k.SignDigest(digest[:])
	f.Add(k.Public().Bytes(), digest[:], sig)
	f.Add(k.Public().Bytes(), digest[:20], sig)
	f.Fuzz(func(t *testing.T, key, digest, sig []byte) {
		if len(sig) != SignatureSize {
			return
		}
		pk, err := ParsePublicKey(key)
		if err != nil {
			return
		}
		var pub [UncompressedKeySize]byte
		copy(pub[:], pk.Uncompressed())
		a := [SignatureSize]byte(sig)
		if checkScalars(&a) != nil {
			return
		}
		if got, want := p256Verify(&pub, digest, &a), stdVerify(&pub, digest, &a); got != want {
			t.Fatalf("p256Verify %v, crypto/ecdsa %v", got, want)
		}
	})
}

// p256Verify refuses a signature whose s is not reduced (s + n for a valid
// s), whatever its callers check first. The digest is chosen so that s = 1
// (e = k - r·d), which makes s + n fit in 32 bytes.
func TestP256VerifyRefusesUnreducedScalars(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	nonce, err := rand.Int(rand.Reader, new(big.Int).Sub(n, big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	nonce.Add(nonce, big.NewInt(1)) // in [1, n-1]
	kG, err := ecdh.P256().NewPrivateKey(nonce.FillBytes(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	r := new(big.Int).Mod(new(big.Int).SetBytes(kG.PublicKey().Bytes()[1:33]), n)
	kb, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	e := new(big.Int).Mul(r, new(big.Int).SetBytes(kb))
	e.Sub(nonce, e).Mod(e, n)
	var pub [UncompressedKeySize]byte
	b, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	copy(pub[:], b)
	digest := e.FillBytes(make([]byte, 32))
	var sig [SignatureSize]byte
	r.FillBytes(sig[:32])
	big.NewInt(1).FillBytes(sig[32:])
	if !p256Verify(&pub, digest, &sig) || !stdVerify(&pub, digest, &sig) {
		t.Fatal("the signature with s = 1 does not verify: the test is wrong")
	}
	new(big.Int).Add(n, big.NewInt(1)).FillBytes(sig[32:])
	if p256Verify(&pub, digest, &sig) {
		t.Fatal("s + n accepted")
	}
}
