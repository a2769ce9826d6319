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

// p256Verify verifies the raw signature sig over digest with the
// uncompressed public key pub.
func p256Verify(pub *[UncompressedKeySize]byte, digest []byte, sig *[SignatureSize]byte) bool {
	q, err := new(p256.Point).SetBytes(pub[:])
	if err != nil {
		return false
	}
	return p256.VerifyECDSA(q, digest, sig)
}
