package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// PublicKeySize is the length of a compressed P-256 point.
const PublicKeySize = 33

// SignatureSize is the length of a raw r||s P-256 signature.
const SignatureSize = 64

// P-256 group order n, and n/2 (rounded down). A signature is low-S when
// s <= n/2.
var (
	orderN = [32]byte{
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
	}
	halfN = [32]byte{
		0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
	}
	// fieldP is the P-256 field prime; a compressed x coordinate must be below it.
	fieldP = [32]byte{
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	}
)

// PublicKey is a device's P-256 public key. The zero value is not usable;
// create one with ParsePublicKey or DecodePublicKey.
type PublicKey struct {
	compressed [PublicKeySize]byte
	key        *ecdsa.PublicKey
}

// ParsePublicKey parses a 33-byte compressed P-256 point and checks that it is
// on the curve.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("amesh: public key is %d bytes, want %d (compressed P-256 point)", len(b), PublicKeySize)
	}
	if !plausibleCompressed(b) {
		return nil, errors.New("amesh: public key is not a compressed P-256 point")
	}
	x, y := elliptic.UnmarshalCompressed(elliptic.P256(), b)
	if x == nil {
		return nil, errors.New("amesh: public key is not on the P-256 curve")
	}
	var u [65]byte
	u[0] = 4
	x.FillBytes(u[1:33])
	y.FillBytes(u[33:])
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), u[:])
	if err != nil {
		return nil, fmt.Errorf("amesh: public key: %w", err)
	}
	pk := &PublicKey{key: k}
	copy(pk.compressed[:], b)
	return pk, nil
}

// plausibleCompressed checks the cheap part of point validity: the prefix
// and x < p. Whether x is on the curve needs a square root, done only when the
// key is actually used.
func plausibleCompressed(b []byte) bool {
	if len(b) != PublicKeySize || (b[0] != 2 && b[0] != 3) {
		return false
	}
	return lessThan(b[1:], fieldP[:])
}

// lessThan compares two big-endian numbers of the same length. It is used on
// public values only.
func lessThan(a, b []byte) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// DecodePublicKey parses a public key as it appears in an Authorization
// header or an allow list: standard base64 (the form clients send) or
// base64url, without padding ambiguity, of the 33-byte compressed point.
func DecodePublicKey(s string) (*PublicKey, error) {
	b, err := decodeKeyString(s)
	if err != nil {
		return nil, err
	}
	return ParsePublicKey(b)
}

// decodeKeyString decodes the two accepted spellings of a public key. 33 bytes
// are exactly 44 base64 characters, so neither form ever has padding.
func decodeKeyString(s string) ([]byte, error) {
	if len(s) != 44 {
		return nil, fmt.Errorf("amesh: public key is %d characters, want 44", len(s))
	}
	enc := base64.StdEncoding
	for i := 0; i < len(s); i++ {
		if s[i] == '-' || s[i] == '_' {
			enc = base64.URLEncoding
			break
		}
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("amesh: public key is not base64: %w", err)
	}
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("amesh: public key is %d bytes, want %d", len(b), PublicKeySize)
	}
	return b, nil
}

// NewPublicKey converts an ECDSA P-256 public key.
func NewPublicKey(k *ecdsa.PublicKey) (*PublicKey, error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, errors.New("amesh: public key is not a P-256 key")
	}
	u, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("amesh: public key: %w", err)
	}
	pk := &PublicKey{key: k}
	pk.compressed[0] = 2 | u[64]&1
	copy(pk.compressed[1:], u[1:33])
	return pk, nil
}

// Bytes returns the 33-byte compressed point.
func (k *PublicKey) Bytes() []byte { b := k.compressed; return b[:] }

// Array returns the compressed point as an array, usable as a map key.
func (k *PublicKey) Array() [PublicKeySize]byte { return k.compressed }

// String returns the standard base64 form used in headers and files.
func (k *PublicKey) String() string { return base64.StdEncoding.EncodeToString(k.compressed[:]) }

// ECDSA returns the key as a crypto/ecdsa public key.
func (k *PublicKey) ECDSA() *ecdsa.PublicKey { return k.key }

// Equal reports whether k and o are the same point.
func (k *PublicKey) Equal(o *PublicKey) bool {
	return o != nil && subtle.ConstantTimeCompare(k.compressed[:], o.compressed[:]) == 1
}

// DeviceID returns the device ID shown to people: "am_" followed by the first
// 16 characters of base64url(SHA-256(compressed point)).
func (k *PublicKey) DeviceID() string { return DeviceID(k.compressed[:]) }

// DeviceID derives the device ID from a compressed public key.
func DeviceID(compressed []byte) string {
	sum := sha256.Sum256(compressed)
	return "am_" + base64.RawURLEncoding.EncodeToString(sum[:12])[:16]
}

// checkScalars reports whether r and s of a raw signature are in [1, n-1] and
// s is low (s <= n/2). A plain ECDSA verify accepts high-S signatures; the
// protocol does not, so that a signature cannot be rewritten into a second
// valid one.
func checkScalars(sig *[SignatureSize]byte) error {
	r, s := sig[:32], sig[32:]
	if isZero(r) || !lessThan(r, orderN[:]) {
		return errors.New("r out of range")
	}
	if isZero(s) || !lessThan(s, orderN[:]) {
		return errors.New("s out of range")
	}
	if lessThan(halfN[:], s) {
		return errors.New("high-S signature")
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// IsLowS reports whether a raw r||s signature has s <= n/2.
func IsLowS(sig []byte) bool {
	return len(sig) == SignatureSize && !lessThan(halfN[:], sig[32:])
}

// VerifyDigest checks a raw r||s signature over a SHA-256 digest with the
// protocol's rules: r and s in range, s low, then ECDSA.
func (k *PublicKey) VerifyDigest(digest []byte, sig []byte) error {
	if len(sig) != SignatureSize {
		return fmt.Errorf("signature is %d bytes, want %d", len(sig), SignatureSize)
	}
	var a [SignatureSize]byte
	copy(a[:], sig)
	if err := checkScalars(&a); err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(k.key, digest, derSignature(&a)) {
		return errors.New("signature does not verify")
	}
	return nil
}

// Verify checks a raw r||s signature over message (hashed with SHA-256).
func (k *PublicKey) Verify(message, sig []byte) error {
	d := sha256.Sum256(message)
	return k.VerifyDigest(d[:], sig)
}

// derSignature encodes r||s as the ASN.1 ECDSA-Sig-Value that crypto/ecdsa
// verifies. r and s are below n < 2^256, so every length fits in one byte.
func derSignature(sig *[SignatureSize]byte) []byte {
	out := make([]byte, 0, 72)
	out = append(out, 0x30, 0)
	out = appendDERInt(out, sig[:32])
	out = appendDERInt(out, sig[32:])
	out[1] = byte(len(out) - 2)
	return out
}

func appendDERInt(out, v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	out = append(out, 0x02)
	if v[0]&0x80 != 0 {
		out = append(out, byte(len(v)+1), 0)
	} else {
		out = append(out, byte(len(v)))
	}
	return append(out, v...)
}

// NormalizeLowS rewrites a raw r||s signature in place so that s <= n/2,
// replacing s by n - s when needed. Both forms verify under plain ECDSA; only
// the low one is valid in amesh. Hardware signers (TPM, Keychain) and
// crypto/ecdsa return either.
func NormalizeLowS(sig []byte) error {
	if len(sig) != SignatureSize {
		return fmt.Errorf("amesh: signature is %d bytes, want %d", len(sig), SignatureSize)
	}
	if IsLowS(sig) {
		return nil
	}
	n := new(big.Int).SetBytes(orderN[:])
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	s.FillBytes(sig[32:])
	return nil
}

// RawSignature converts big-endian r and s of any length up to 32 bytes (as a
// TPM returns them) into a 64-byte low-S r||s signature.
func RawSignature(r, s []byte) ([]byte, error) {
	r, s = trimZeros(r), trimZeros(s)
	if len(r) > 32 || len(s) > 32 {
		return nil, errors.New("amesh: signature scalar longer than 32 bytes")
	}
	out := make([]byte, SignatureSize)
	copy(out[32-len(r):32], r)
	copy(out[64-len(s):], s)
	if err := NormalizeLowS(out); err != nil {
		return nil, err
	}
	return out, nil
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// Signer is a device key that signs SHA-256 digests. Keystore backends
// implement it; the private key never has to leave the backend.
type Signer interface {
	// PublicKey returns the 33-byte compressed public key.
	PublicKey() []byte
	// SignDigest signs a 32-byte SHA-256 digest and returns a 64-byte raw
	// r||s signature. Callers normalise it to low-S.
	SignDigest(digest []byte) ([]byte, error)
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
		return nil, fmt.Errorf("amesh: generate key: %w", err)
	}
	return NewPrivateKey(k, rand)
}

// ParsePrivateKey builds a software key from its 32-byte big-endian scalar.
func ParsePrivateKey(scalar []byte) (*PrivateKey, error) {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		return nil, fmt.Errorf("amesh: private key: %w", err)
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
		return nil, fmt.Errorf("amesh: sign: %w", err)
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
