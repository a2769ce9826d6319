package protocol

import (
	"errors"

	"github.com/amesh-go/amesh/wasm/internal/p256"
)

// ECDSA verification on wasm/internal/p256, the project's own P-256 group
// code for verifying public values: ecdsa_p256.go selects it for the
// wasm build (and the amesh_nistec tag), and p256_test.go holds it to
// crypto/ecdsa. It runs in variable time, which is sound because every
// input (key, digest, signature) is public; it never sees a private key.

// p256Decompress writes the uncompressed encoding of the compressed point b
// to out, or fails if b is not a point on the curve.
func p256Decompress(out *[UncompressedKeySize]byte, b []byte) error {
	if len(b) != PublicKeySize {
		return errors.New("amesh: public key is not a compressed P-256 point")
	}
	p, err := new(p256.Point).SetBytes(b)
	if err != nil {
		return errors.New("amesh: public key is not on the P-256 curve")
	}
	// SetBytes never yields the point at infinity, so this cannot fail.
	u, err := p.Bytes()
	if err != nil {
		return errors.New("amesh: public key is the point at infinity")
	}
	*out = u
	return nil
}

// p256Verify is ECDSA verification (SEC 1, version 2.0, section 4.1.4) of
// the raw signature sig over digest with the uncompressed public key pub.
// The caller has checked that r and s are in [1, n-1]; they are checked
// again here because a wrong answer would be a forgery.
func p256Verify(pub *[UncompressedKeySize]byte, digest []byte, sig *[SignatureSize]byte) bool {
	q, err := new(p256.Point).SetBytes(pub[:])
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
	// u1 and u2 are public, so the variable-time multiplication is fine.
	// XModNEquals compares x(u1·G + u2·Q) mod n with r without the field
	// inversion that converting the point to affine coordinates would
	// take; it is false for the point at infinity.
	rb := r.bytes()
	return q.DoubleScalarMultVarTime(&b1, &b2, q).XModNEquals(&rb)
}
