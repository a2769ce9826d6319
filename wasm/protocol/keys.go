package protocol

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/amesh-go/amesh/wasm/internal/p256"
	"github.com/amesh-go/amesh/wasm/internal/sha256"
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
	compressed   [PublicKeySize]byte
	uncompressed [UncompressedKeySize]byte
	// key caches the crypto/ecdsa form in native builds (keys_ecdsa.go);
	// wasm builds have no crypto/ecdsa (see ecdsa_p256.go).
	key ecdsaKey
}

// UncompressedKeySize is the length of an uncompressed P-256 point (SEC 1:
// 0x04, X, Y), the form WebCrypto imports as "raw".
const UncompressedKeySize = 65

// ParsePublicKey parses a 33-byte compressed P-256 point and checks that it is
// on the curve.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, errors.New("amesh: public key is " + strconv.Itoa(len(b)) + " bytes, want " +
			strconv.Itoa(PublicKeySize) + " (compressed P-256 point)")
	}
	if !plausibleCompressed(b) {
		return nil, errors.New("amesh: public key is not a compressed P-256 point")
	}
	pk := &PublicKey{}
	if err := decompressPoint(pk, b); err != nil {
		return nil, err
	}
	copy(pk.compressed[:], b)
	return pk, nil
}

// ParseUncompressedPublicKey parses a 65-byte uncompressed point
// (0x04 || X || Y), as hardware and WebCrypto export keys, and checks that
// it is on the curve.
func ParseUncompressedPublicKey(b []byte) (*PublicKey, error) {
	if len(b) != UncompressedKeySize || b[0] != 4 {
		return nil, errors.New("amesh: public key is not a 65-byte uncompressed P-256 point (" + strconv.Itoa(len(b)) + " bytes)")
	}
	var c [PublicKeySize]byte
	c[0] = 2 | b[64]&1
	copy(c[1:], b[1:33])
	k, err := ParsePublicKey(c[:])
	if err != nil {
		return nil, err
	}
	// Decompressing recomputes y from x: equal only if the point is on
	// the curve.
	if string(k.Uncompressed()) != string(b) {
		return nil, errors.New("amesh: public key is not on the P-256 curve")
	}
	return k, nil
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
		return nil, errors.New("amesh: public key is " + strconv.Itoa(len(s)) + " characters, want 44")
	}
	enc := base64.StdEncoding
	if isURLKeySpelling(s) {
		enc = base64.URLEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, wrap("amesh: public key is not base64", err)
	}
	if len(b) != PublicKeySize {
		return nil, errors.New("amesh: public key is " + strconv.Itoa(len(b)) + " bytes, want " + strconv.Itoa(PublicKeySize))
	}
	return b, nil
}

// isURLKeySpelling reports whether the 44 characters of a public key are
// its base64url spelling: as soon as one of them is - or _. (Two IndexByte
// calls cost several times less than strings.ContainsAny.)
func isURLKeySpelling(s string) bool {
	return strings.IndexByte(s, '-') >= 0 || strings.IndexByte(s, '_') >= 0
}

// Bytes returns the 33-byte compressed point.
func (k *PublicKey) Bytes() []byte { b := k.compressed; return b[:] }

// Array returns the compressed point as an array, usable as a map key.
func (k *PublicKey) Array() [PublicKeySize]byte { return k.compressed }

// String returns the standard base64 form used in headers and files.
func (k *PublicKey) String() string { return base64.StdEncoding.EncodeToString(k.compressed[:]) }

// Uncompressed returns the 65-byte uncompressed point (0x04, X, Y).
func (k *PublicKey) Uncompressed() []byte { b := k.uncompressed; return b[:] }

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
	if !inScalarRange(r) {
		return errors.New("r out of range")
	}
	if !inScalarRange(s) {
		return errors.New("s out of range")
	}
	if lessThan(halfN[:], s) {
		return errors.New("high-S signature")
	}
	return nil
}

// inScalarRange reports whether the 32-byte big-endian b is in [1, n-1],
// the range of r and s.
func inScalarRange(b []byte) bool { return !isZero(b) && lessThan(b, orderN[:]) }

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// CheckScalars applies the protocol's rules to a raw r||s signature before
// any ECDSA: r and s in [1, n-1] and s low. A host that verifies with its
// own ECDSA (node:crypto, WebCrypto) must pass a signature through it
// first, since plain ECDSA accepts high-S.
func CheckScalars(sig []byte) error {
	if len(sig) != SignatureSize {
		return errors.New("signature is " + strconv.Itoa(len(sig)) + " bytes, want " + strconv.Itoa(SignatureSize))
	}
	return checkScalars((*[SignatureSize]byte)(sig))
}

// IsLowS reports whether a raw r||s signature has s <= n/2.
func IsLowS(sig []byte) bool {
	return len(sig) == SignatureSize && !lessThan(halfN[:], sig[32:])
}

// VerifyDigest checks a raw r||s signature over a SHA-256 digest with the
// protocol's rules: r and s in range, s low, then ECDSA.
func (k *PublicKey) VerifyDigest(digest []byte, sig []byte) error {
	if len(sig) != SignatureSize {
		return errors.New("signature is " + strconv.Itoa(len(sig)) + " bytes, want " + strconv.Itoa(SignatureSize))
	}
	var a [SignatureSize]byte
	copy(a[:], sig)
	if err := checkScalars(&a); err != nil {
		return err
	}
	if !verifyECDSA(k, digest, &a) {
		return errors.New("signature does not verify")
	}
	return nil
}

// Verify checks a raw r||s signature over message (hashed with SHA-256).
func (k *PublicKey) Verify(message, sig []byte) error {
	d := sha256.Sum256(message)
	return k.VerifyDigest(d[:], sig)
}

// NormalizeLowS rewrites a raw r||s signature in place so that s <= n/2,
// replacing s by n - s when needed. Both forms verify under plain ECDSA; only
// the low one is valid in amesh. Hardware signers (TPM, Keychain) and
// crypto/ecdsa return either.
func NormalizeLowS(sig []byte) error {
	if len(sig) != SignatureSize {
		return errors.New("amesh: signature is " + strconv.Itoa(len(sig)) + " bytes, want " + strconv.Itoa(SignatureSize))
	}
	if IsLowS(sig) {
		return nil
	}
	// |n - s|: an s >= n, no valid signature either way, stays invalid.
	b := p256.OrderMinus((*[32]byte)(sig[32:]))
	copy(sig[32:], b[:])
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
