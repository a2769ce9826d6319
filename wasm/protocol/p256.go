package protocol

import (
	"errors"
	"math/big"

	"filippo.io/nistec"
)

// P-256 on filippo.io/nistec, the exported copy of the standard library's
// crypto/internal/fips140/nistec. This is what crypto/ecdsa itself computes
// for P-256, minus the curve-generic plumbing; ecdsa_nistec.go selects it
// for the wasm build and p256_test.go checks it against crypto/ecdsa.

// p256Decompress writes the uncompressed encoding of the compressed point b
// to out, or fails if b is not a point on the curve.
func p256Decompress(out *[UncompressedKeySize]byte, b []byte) error {
	p, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		return errors.New("amesh: public key is not on the P-256 curve")
	}
	u := p.Bytes()
	if len(u) != UncompressedKeySize {
		// SetBytes accepts the one-byte encoding of the point at infinity;
		// a compressed input never decodes to it, but a key must not be it.
		return errors.New("amesh: public key is the point at infinity")
	}
	copy(out[:], u)
	return nil
}

// p256Verify is ECDSA verification (SEC 1, version 2.0, section 4.1.4) of
// the raw signature sig over digest with the uncompressed public key pub.
// The caller has checked that r and s are in [1, n-1]. The inputs are
// public, so variable-time big.Int arithmetic on the scalars is fine.
func p256Verify(pub *[UncompressedKeySize]byte, digest []byte, sig *[SignatureSize]byte) bool {
	q, err := nistec.NewP256Point().SetBytes(pub[:])
	if err != nil {
		return false
	}
	n := new(big.Int).SetBytes(orderN[:])
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return false
	}
	// e is the leftmost 256 bits of the digest, as crypto/ecdsa takes them;
	// the bit length of n is a whole number of bytes, so no shift is needed.
	if len(digest) > 32 {
		digest = digest[:32]
	}
	e := new(big.Int).SetBytes(digest)
	w := new(big.Int).ModInverse(s, n)
	u1 := e.Mul(e, w)
	u1.Mod(u1, n)
	u2 := w.Mul(r, w)
	u2.Mod(u2, n)
	var b1, b2 [32]byte
	u1.FillBytes(b1[:])
	u2.FillBytes(b2[:])
	p1, err := nistec.NewP256Point().ScalarBaseMult(b1[:])
	if err != nil {
		return false
	}
	p2, err := nistec.NewP256Point().ScalarMult(q, b2[:])
	if err != nil {
		return false
	}
	x, err := p1.Add(p1, p2).BytesX()
	if err != nil {
		return false // the point at infinity
	}
	v := new(big.Int).SetBytes(x)
	v.Mod(v, n)
	return v.Cmp(r) == 0
}
