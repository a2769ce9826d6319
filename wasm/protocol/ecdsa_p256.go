//go:build wasm || amesh_nistec

package protocol

// This file selects the back end of p256.go, on wasm/internal/p256, for
// GOARCH=wasm, where crypto/ecdsa would link its generic multi-curve code,
// DRBG and FIPS self-tests into amesh.wasm for nothing: a verifier needs
// P-256 point decompression and one double scalar multiplication. The
// amesh_nistec tag selects it natively too (and, in wasm/internal/sha256,
// the wasm build's SHA-256), so that the wasm crypto can be tested at
// native speed. The tag is named after filippo.io/nistec, which the wasm
// build used before; the name stays so that existing commands keep
// testing what they tested.

// decompressPoint fills in the uncompressed form of pk from the compressed
// point b, whose prefix and range are already checked. The crypto/ecdsa key
// is left unset; PublicKey.ECDSA converts on demand.
func decompressPoint(pk *PublicKey, b []byte) error {
	return p256Decompress(&pk.uncompressed, b)
}

// verifyECDSA runs plain ECDSA verification; the caller has checked the
// ranges of r and s and the low-S rule.
func verifyECDSA(k *PublicKey, digest []byte, sig *[SignatureSize]byte) bool {
	return p256Verify(&k.uncompressed, digest, sig)
}
