package p256

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

// verify runs VerifyECDSA on big-integer r and s, so that the tests can
// build signatures with math/big; an r or s of more than 256 bits is no
// signature at all.
func verify(pub, digest []byte, r, s *big.Int) bool {
	q, err := NewPoint().SetBytes(pub)
	if err != nil {
		return false
	}
	if r.Sign() < 0 || s.Sign() < 0 || r.BitLen() > 256 || s.BitLen() > 256 {
		return false
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return VerifyECDSA(q, digest, &sig)
}

// stdKey parses an uncompressed point as a crypto/ecdsa key.
func stdKey(t testing.TB, pub []byte) *ecdsa.PublicKey {
	t.Helper()
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
	if err != nil {
		t.Fatalf("crypto/ecdsa refuses %x: %v", pub, err)
	}
	return k
}

// TestECDSAAgainstStdlib verifies genuine and tampered signatures of random
// keys, and of the keys 1 (Q = G) and n-1 (Q = -G), with both
// implementations. High-S signatures are valid ECDSA; rejecting them is
// wasm/protocol's rule, applied before verification.
func TestECDSAAgainstStdlib(t *testing.T) {
	ds := []*big.Int{big.NewInt(1), big.NewInt(2), new(big.Int).Sub(bigN, big.NewInt(1))}
	for range 40 {
		ds = append(ds, randomScalar(t))
	}
	for i, d := range ds {
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes32(d)[:])
		if err != nil {
			t.Fatal(err)
		}
		pub, err := priv.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte{byte(i), 'm'})
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		neg := func(v *big.Int) *big.Int { return new(big.Int).Sub(bigN, v) }
		negQ, _ := NewPoint().SetBytes(pub)
		negPub := mustBytes(t, NewPoint().Negate(negQ))
		otherDigest := sha256.Sum256([]byte{byte(i), 'o'})
		tests := []struct {
			name   string
			pub    []byte
			digest []byte
			r, s   *big.Int
			valid  bool // what the test expects; crypto/ecdsa must agree
		}{
			{"genuine", pub, digest[:], r, s, true},
			{"high s", pub, digest[:], r, neg(s), true},
			{"other digest", pub, otherDigest[:], r, s, false},
			{"digest truncated", pub, digest[:20], r, s, false},
			{"digest extended", pub, append(bytes.Clone(digest[:]), 1, 2), r, s, true},
			{"negated key", negPub, digest[:], r, s, false},
			{"r + 1", pub, digest[:], new(big.Int).Add(r, big.NewInt(1)), s, false},
			{"s + 1", pub, digest[:], r, new(big.Int).Add(s, big.NewInt(1)), false},
			{"r and s swapped", pub, digest[:], s, r, false},
			{"r = 0", pub, digest[:], big.NewInt(0), s, false},
			{"s = 0", pub, digest[:], r, big.NewInt(0), false},
			{"r = n", pub, digest[:], bigN, s, false},
			{"s = n", pub, digest[:], r, bigN, false},
			{"r + n", pub, digest[:], new(big.Int).Add(r, bigN), s, false},
			{"r = n - 1", pub, digest[:], neg(big.NewInt(1)), s, false},
			{"s = 1", pub, digest[:], r, big.NewInt(1), false},
		}
		for _, tt := range tests {
			want := ecdsa.Verify(stdKey(t, tt.pub), tt.digest, tt.r, tt.s)
			if want != tt.valid {
				t.Fatalf("key %d, %s: crypto/ecdsa says %v: the test is wrong", i, tt.name, want)
			}
			if got := verify(tt.pub, tt.digest, tt.r, tt.s); got != want {
				t.Errorf("key %d, %s: got %v, crypto/ecdsa %v", i, tt.name, got, want)
			}
		}
	}
}

// forgeWithRPoint returns a public key, digest and signature (r, s) whose
// verification computes u1·G + u2·Q = R for the given point R: public key
// recovery run backwards, Q = r⁻¹·(s·R - e·G). It lets the tests reach
// points R a genuine signer would hit with probability 2^-128.
func forgeWithRPoint(t *testing.T, rp refPoint, r *big.Int) (pub, digest []byte, s *big.Int) {
	t.Helper()
	s, e := randomScalar(t), randomScalar(t)
	sR := refMul(s, rp)
	eG := refMul(e, refGenerator())
	q := refMul(new(big.Int).ModInverse(r, bigN), refAdd(sR, refNeg(eG)))
	pub = append([]byte{4}, append(bytes32(q.x)[:], bytes32(q.y)[:]...)...)
	return pub, bytes32(e)[:], s
}

// curvePointNear returns the first point at or after x (stepping by step)
// whose x coordinate is on the curve.
func curvePointNear(x *big.Int, step int64) refPoint {
	x = new(big.Int).Set(x)
	for {
		rhs := new(big.Int).Exp(x, big.NewInt(3), bigP)
		rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), x)).Add(rhs, bigB).Mod(rhs, bigP)
		if y := new(big.Int).ModSqrt(rhs, bigP); y != nil {
			return refPoint{x: x, y: y}
		}
		x.Add(x, big.NewInt(step))
	}
}

// TestECDSAXModN covers the signatures whose point R = u1·G + u2·Q has an
// x coordinate where x mod n and the second comparison of XModNEquals
// matter: x in [n, p), where r = x - n is valid, and small x, where
// r = x + p - n is not (x + p - n ≡ x + p ≡ x only mod p, not mod n) but
// an off-by-one in the range check would accept it. Genuine signers hit
// these with probability about 2^-128; forgeWithRPoint makes them.
func TestECDSAXModN(t *testing.T) {
	pMinusN := new(big.Int).Sub(bigP, bigN)
	one := big.NewInt(1)
	tests := []struct {
		name  string
		rp    refPoint
		r     func(x *big.Int) *big.Int
		valid bool
	}{
		{"x just above n, r = x - n", curvePointNear(new(big.Int).Add(bigN, one), 1),
			func(x *big.Int) *big.Int { return new(big.Int).Sub(x, bigN) }, true},
		{"x just below p, r = x - n", curvePointNear(new(big.Int).Sub(bigP, one), -1),
			func(x *big.Int) *big.Int { return new(big.Int).Sub(x, bigN) }, true},
		{"x just below n, r = x", curvePointNear(new(big.Int).Sub(bigN, one), -1),
			func(x *big.Int) *big.Int { return x }, true},
		{"x just above n, r = x (not below n)", curvePointNear(new(big.Int).Add(bigN, one), 1),
			func(x *big.Int) *big.Int { return x }, false},
		{"small x, r = x + p - n", curvePointNear(one, 1),
			func(x *big.Int) *big.Int { return new(big.Int).Add(x, pMinusN) }, false},
		{"small x, r = x", curvePointNear(one, 1),
			func(x *big.Int) *big.Int { return x }, true},
	}
	for _, tt := range tests {
		r := tt.r(tt.rp.x)
		// Q is built from r mod n; the signature carries r itself, which
		// may be out of range.
		pub, digest, s := forgeWithRPoint(t, tt.rp, new(big.Int).Mod(r, bigN))
		want := ecdsa.Verify(stdKey(t, pub), digest, r, s)
		if want != tt.valid {
			t.Fatalf("%s: crypto/ecdsa says %v: the test is wrong", tt.name, want)
		}
		if got := verify(pub, digest, r, s); got != want {
			t.Errorf("%s: got %v, crypto/ecdsa %v", tt.name, got, want)
		}
	}
}

// TestXModNEquals checks the comparison on its own: the identity never
// matches, and a point matches its own x mod n and nothing next to it.
func TestXModNEquals(t *testing.T) {
	if NewPoint().XModNEquals(new([32]byte)) {
		t.Error("the identity matches r = 0")
	}
	for range 20 {
		k := randomScalar(t)
		p := scalarBaseMult(k)
		// Scale Z so that the projective comparison is really exercised.
		p.Add(p, NewPoint())
		p.Double(p)
		x, err := p.BytesX()
		if err != nil {
			t.Fatal(err)
		}
		xv := new(big.Int).SetBytes(x[:])
		r := new(big.Int).Mod(xv, bigN)
		if !p.XModNEquals(bytes32(r)) {
			t.Fatalf("x = %x does not match itself", xv)
		}
		for _, d := range []int64{-1, 1} {
			o := new(big.Int).Add(r, big.NewInt(d))
			if o.Sign() >= 0 && p.XModNEquals(bytes32(o)) {
				t.Fatalf("x = %x matches %x", xv, o)
			}
		}
	}
}

// FuzzVerify holds verification to crypto/ecdsa for arbitrary digests and
// signatures, under the key d·G for a d from the input.
func FuzzVerify(f *testing.F) {
	priv, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes32(big.NewInt(7))[:])
	digest := sha256.Sum256([]byte("amesh"))
	r, s, _ := ecdsa.Sign(rand.Reader, priv, digest[:])
	f.Add(bytes32(big.NewInt(7))[:], digest[:], bytes32(r)[:], bytes32(s)[:])
	f.Add(bytes32(big.NewInt(1))[:], digest[:20], bytes32(r)[:], bytes32(s)[:])
	f.Fuzz(func(t *testing.T, d, digest, rb, sb []byte) {
		if len(d) != 32 || len(rb) > 32 || len(sb) > 32 {
			return
		}
		dv := new(big.Int).SetBytes(d)
		if dv.Sign() == 0 || dv.Cmp(bigN) >= 0 {
			return
		}
		key, err := ecdh.P256().NewPrivateKey(d)
		if err != nil {
			t.Fatal(err)
		}
		pub := key.PublicKey().Bytes()
		r, s := new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)
		if got, want := verify(pub, digest, r, s), ecdsa.Verify(stdKey(t, pub), digest, r, s); got != want {
			t.Fatalf("verify = %v, crypto/ecdsa %v", got, want)
		}
	})
}

// FuzzSetBytes holds decoding to crypto/ecdh (uncompressed) and
// crypto/elliptic (compressed), and checks that what decodes encodes back.
func FuzzSetBytes(f *testing.F) {
	g := generatorBytes
	f.Add(g[:])
	f.Add(append([]byte{2 + g[64]&1}, g[1:33]...))
	f.Add(append([]byte{3 - g[64]&1}, g[1:33]...))
	f.Add([]byte{0})
	f.Add(append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := NewPoint().SetBytes(b)
		var want []byte
		switch len(b) {
		case UncompressedSize:
			if k, err := ecdh.P256().NewPublicKey(b); err == nil {
				want = k.Bytes()
			}
		case CompressedSize:
			if x, y := elliptic.UnmarshalCompressed(elliptic.P256(), b); x != nil {
				want = append([]byte{4}, append(bytes32(x)[:], bytes32(y)[:]...)...)
			}
		}
		if (err == nil) != (want != nil) {
			t.Fatalf("SetBytes(%x): error %v, reference accepts: %v", b, err, want != nil)
		}
		if err == nil {
			if got := mustBytes(t, p); !bytes.Equal(got, want) {
				t.Fatalf("SetBytes(%x) = %x, want %x", b, got, want)
			}
		}
	})
}

// FuzzDoubleScalarMult holds u1·G + u2·Q to the math/big model, with
// Q = c·G for a c from the input (which may make the two halves cancel).
func FuzzDoubleScalarMult(f *testing.F) {
	one := bytes32(big.NewInt(1))[:]
	nm1 := bytes32(new(big.Int).Sub(bigN, big.NewInt(1)))[:]
	f.Add(one, one, nm1)
	f.Add(nm1, one, one)
	f.Add(make([]byte, 32), bytes32(bigN)[:], one)
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 32), bytes32(big.NewInt(2))[:])
	f.Fuzz(func(t *testing.T, u1, u2, c []byte) {
		if len(u1) != 32 || len(u2) != 32 || len(c) != 32 {
			return
		}
		cv := new(big.Int).SetBytes(c)
		g := refGenerator()
		q := refMul(cv, g)
		want := refAdd(refMul(new(big.Int).SetBytes(u1), g), refMul(new(big.Int).SetBytes(u2), q))
		got := NewPoint().DoubleScalarMultVarTime((*[32]byte)(u1), (*[32]byte)(u2), fromRef(q))
		if !refEqual(toRef(got), want) {
			t.Fatalf("u1 = %x, u2 = %x, c = %x: wrong sum", u1, u2, c)
		}
	})
}
