//go:build !wasm && !amesh_nistec

package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
)

// This file holds the ECDSA back end of native builds: crypto/ecdsa, with
// its assembly and its FIPS 140 module. Builds for GOARCH=wasm (and builds
// with the amesh_nistec tag) use ecdsa_p256.go instead, which links only
// the P-256 code the verifier needs and keeps amesh.wasm small.

// decompressPoint fills in the uncompressed form and the crypto/ecdsa key of
// pk from the compressed point b, whose prefix and range are already
// checked.
func decompressPoint(pk *PublicKey, b []byte) error {
	x, y := elliptic.UnmarshalCompressed(elliptic.P256(), b)
	if x == nil {
		return errors.New("amesh: public key is not on the P-256 curve")
	}
	u := &pk.uncompressed
	u[0] = 4
	x.FillBytes(u[1:33])
	y.FillBytes(u[33:])
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), u[:])
	if err != nil {
		return wrap("amesh: public key", err)
	}
	pk.key = k
	return nil
}

// verifyECDSA runs plain ECDSA verification; the caller has checked the
// ranges of r and s and the low-S rule.
func verifyECDSA(k *PublicKey, digest []byte, sig *[SignatureSize]byte) bool {
	der, _ := DERSignature(sig[:]) // 64 bytes: cannot fail
	return ecdsa.VerifyASN1(k.key, digest, der)
}
