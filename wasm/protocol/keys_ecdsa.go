//go:build !wasm

package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"io"
)

// This file holds the parts of the key API that are built on crypto/ecdsa:
// conversions and software private keys. GOARCH=wasm builds leave it out:
// importing crypto/ecdsa alone adds about 180 KB (gzip) to amesh.wasm, and
// a guest never holds a private key (it asks its host to sign).

// ecdsaKey is the crypto/ecdsa form a PublicKey caches natively.
type ecdsaKey = *ecdsa.PublicKey

// NewPublicKey converts an ECDSA P-256 public key.
func NewPublicKey(k *ecdsa.PublicKey) (*PublicKey, error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, errors.New("amesh: public key is not a P-256 key")
	}
	u, err := k.Bytes()
	if err != nil {
		return nil, wrap("amesh: public key", err)
	}
	pk := &PublicKey{key: k}
	copy(pk.uncompressed[:], u)
	pk.compressed[0] = 2 | u[64]&1
	copy(pk.compressed[1:], u[1:33])
	return pk, nil
}

// ECDSA returns the key as a crypto/ecdsa public key.
func (k *PublicKey) ECDSA() *ecdsa.PublicKey {
	if k.key != nil {
		return k.key
	}
	// Only the amesh_nistec build leaves key unset. The point was
	// validated when k was made, so the conversion cannot fail; it is not
	// cached, to keep PublicKey free of mutable state.
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), k.uncompressed[:])
	if err != nil {
		panic("amesh: validated public key no longer parses: " + err.Error())
	}
	return key
}

// PrivateKey is a software P-256 key that implements Signer. It is meant for
// tests, demos and the in-memory keystore backend.
type PrivateKey struct {
	key  *ecdsa.PrivateKey
	pub  *PublicKey
	rand io.Reader
}

// NewPrivateKey wraps an ECDSA P-256 private key. rand supplies signature
// randomness; nil means crypto/rand.
func NewPrivateKey(k *ecdsa.PrivateKey, rand io.Reader) (*PrivateKey, error) {
	pub, err := NewPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{key: k, pub: pub, rand: rand}, nil
}

// GeneratePrivateKey creates a new random software key. rand nil means
// crypto/rand.
func GeneratePrivateKey(rand io.Reader) (*PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, wrap("amesh: generate key", err)
	}
	return NewPrivateKey(k, rand)
}

// ParsePrivateKey builds a software key from its 32-byte big-endian scalar.
func ParsePrivateKey(scalar []byte) (*PrivateKey, error) {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		return nil, wrap("amesh: private key", err)
	}
	return NewPrivateKey(k, nil)
}

// Public returns the public half.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// PublicKey implements Signer.
func (k *PrivateKey) PublicKey() []byte { return k.pub.Bytes() }

// Bytes returns the 32-byte private scalar. Handle with care.
func (k *PrivateKey) Bytes() ([]byte, error) { return k.key.Bytes() }

// SignDigest implements Signer; the result is always low-S.
func (k *PrivateKey) SignDigest(digest []byte) ([]byte, error) {
	der, err := ecdsa.SignASN1(k.rand, k.key, digest)
	if err != nil {
		return nil, wrap("amesh: sign", err)
	}
	r, s, err := parseDERSignature(der)
	if err != nil {
		return nil, err
	}
	return RawSignature(r, s)
}

// parseDERSignature reads the ECDSA-Sig-Value crypto/ecdsa produces.
func parseDERSignature(der []byte) (r, s []byte, err error) {
	bad := errors.New("amesh: malformed DER signature")
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 {
		return nil, nil, bad
	}
	rest := der[2:]
	readInt := func() ([]byte, error) {
		if len(rest) < 2 || rest[0] != 0x02 || int(rest[1]) > len(rest)-2 || rest[1] == 0 {
			return nil, bad
		}
		v := rest[2 : 2+int(rest[1])]
		rest = rest[2+int(rest[1]):]
		return v, nil
	}
	if r, err = readInt(); err != nil {
		return nil, nil, err
	}
	if s, err = readInt(); err != nil {
		return nil, nil, err
	}
	if len(rest) != 0 {
		return nil, nil, bad
	}
	return r, s, nil
}
