//go:build !wasm

package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"io"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
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
	return SignatureFromDER(der)
}

// SignatureFromDER turns an ASN.1 DER ECDSA-Sig-Value (what crypto/ecdsa,
// the Secure Enclave and most signers return) into the 64-byte low-S r||s
// the protocol uses. It accepts strict DER only (minimal lengths and
// integers, nothing after the sequence), and r and s in [1, n-1]: the range
// is checked before normalising, since replacing an s >= n by its
// "negation" could turn garbage into something in range.
func SignatureFromDER(der []byte) ([]byte, error) {
	var seq cryptobyte.String
	var r, s []byte
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return nil, errors.New("amesh: not a DER ECDSA signature")
	}
	for _, v := range [][]byte{r, s} {
		v = trimZeros(v)
		var b [32]byte
		if len(v) > 32 {
			return nil, errors.New("amesh: r or s out of range")
		}
		copy(b[32-len(v):], v)
		if !inScalarRange(b[:]) {
			return nil, errors.New("amesh: r or s out of range")
		}
	}
	return RawSignature(r, s)
}
