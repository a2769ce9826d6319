package protocol

import (
	"errors"

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
// The caller has checked that r and s are in [1, n-1]; they are checked
// again here because a wrong answer would be a forgery.
func p256Verify(pub *[UncompressedKeySize]byte, digest []byte, sig *[SignatureSize]byte) bool {
	q, err := nistec.NewP256Point().SetBytes(pub[:])
	if err != nil {
		return false
	}
	r := scalarFromBytes((*[32]byte)(sig[:32]))
	s := scalarFromBytes((*[32]byte)(sig[32:]))
	if r.isZero() || s.isZero() || !r.lessThanN() || !s.lessThanN() {
		return false
	}
	// e is the leftmost 256 bits of the digest, as crypto/ecdsa takes them
	// (the bit length of n is a whole number of bytes, so no shift is
	// needed), reduced mod n.
	var eb [32]byte
	if len(digest) > 32 {
		digest = digest[:32]
	}
	copy(eb[32-len(digest):], digest)
	e := scalarFromBytes(&eb)
	e = e.reduceOnce()
	w := invMod(&s)
	u1, u2 := mulMod(&e, &w), mulMod(&r, &w)
	b1, b2 := u1.bytes(), u2.bytes()
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
	// x < p < 2n, so one conditional subtraction reduces it mod n.
	v := scalarFromBytes((*[32]byte)(x))
	return v.reduceOnce() == r
}
