package provision

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/relay/wire"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// A delivery is what the target leaves at the relay for its controller:
//
//	version (1) || nonce (12) || AES-256-GCM(seal key, nonce, identity, aad)
//	aad      = "amesh provision v1 delivery" || 0x00 || version || token ID || mailbox address
//	identity = role 0x02 (target) || key (33) || name length (1) || name || signature (64)
//
// The signature is the target device key's, over
// H("amesh provision v1 target identity" || 0x00 || token digest || role ||
// key || name length || name), where the token digest is the one the
// controller signed: it covers the one-time ID and the secret, so the
// identity is bound to this very token and proves possession of the key.
const (
	deliveryVersion = 1
	nonceLen        = 12
	identityMin     = 1 + protocol.PublicKeySize + 1 + protocol.SignatureSize
	// maxSealed is the largest delivery this package writes or reads; it is
	// below what the relay accepts.
	maxSealed = 1 + nonceLen + identityMin + pairing.MaxNameBytes + 16
)

func init() {
	if maxSealed > wire.MaxDelivery {
		panic("provision: a delivery may exceed the relay's limit")
	}
}

type identity struct {
	key  []byte
	name string
	sig  []byte
}

func identityDigest(tokenDigest []byte, key []byte, name string) []byte {
	h := sha256.New()
	h.Write([]byte(labelIdentity))
	h.Write([]byte{0})
	h.Write(tokenDigest)
	h.Write([]byte{byte(pairing.RoleTarget)})
	h.Write(key)
	h.Write([]byte{byte(len(name))})
	h.Write([]byte(name))
	return h.Sum(nil)
}

func (id identity) marshal() []byte {
	b := make([]byte, 0, identityMin+len(id.name))
	b = append(b, byte(pairing.RoleTarget))
	b = append(b, id.key...)
	b = append(b, byte(len(id.name)))
	b = append(b, id.name...)
	return append(b, id.sig...)
}

func parseIdentity(b []byte) (identity, error) {
	if len(b) < identityMin {
		return identity{}, errors.New("identity too short")
	}
	if b[0] != byte(pairing.RoleTarget) {
		return identity{}, fmt.Errorf("identity claims role %d, want target", b[0])
	}
	b = b[1:]
	id := identity{key: b[:protocol.PublicKeySize]}
	b = b[protocol.PublicKeySize:]
	n := int(b[0])
	if n > pairing.MaxNameBytes || len(b) != 1+n+protocol.SignatureSize {
		return identity{}, errors.New("identity length does not match its name")
	}
	id.name = string(b[1 : 1+n])
	if !utf8.ValidString(id.name) {
		return identity{}, errors.New("name is not UTF-8")
	}
	id.sig = b[1+n:]
	return id, nil
}

func aad(t *Token, addr []byte) []byte {
	out := append([]byte(labelAAD), 0, deliveryVersion)
	out = append(out, t.id[:]...)
	return append(out, addr...)
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key never fails
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// sealDelivery builds the target's sealed identity for t.
func sealDelivery(t *Token, signer protocol.Signer, name string) ([]byte, error) {
	key := signer.PublicKey()
	pub, err := protocol.ParsePublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	name = pairing.SanitizeName(name)
	sig, err := signDigest(signer, pub, identityDigest(t.digest(), key, name))
	if err != nil {
		return nil, err
	}
	_, addr, sealKey := t.keys()
	out := make([]byte, 1+nonceLen, maxSealed)
	out[0] = deliveryVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("random nonce: %w", err)
	}
	plain := identity{key: key, name: name, sig: sig}.marshal()
	return newGCM(sealKey).Seal(out, out[1:1+nonceLen], plain, aad(t, addr[:])), nil
}

// openDelivery opens and verifies a delivery for t and returns the target
// it names. Anything that fails to open or verify is ErrTampered: only a
// holder of the token's secret can seal, only the target's key can sign.
func openDelivery(t *Token, sealed []byte) (Target, error) {
	if len(sealed) < 1+nonceLen+16 || len(sealed) > maxSealed {
		return Target{}, fmt.Errorf("%w: delivery of %d bytes", ErrTampered, len(sealed))
	}
	if sealed[0] != deliveryVersion {
		return Target{}, fmt.Errorf("%w: delivery version %d", ErrTampered, sealed[0])
	}
	_, addr, sealKey := t.keys()
	plain, err := newGCM(sealKey).Open(nil, sealed[1:1+nonceLen], sealed[1+nonceLen:], aad(t, addr[:]))
	if err != nil {
		return Target{}, fmt.Errorf("%w: the delivery does not open with this token's secret", ErrTampered)
	}
	id, err := parseIdentity(plain)
	if err != nil {
		// Sealed by a holder of the secret, but malformed.
		return Target{}, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	pub, err := protocol.ParsePublicKey(id.key)
	if err != nil {
		return Target{}, fmt.Errorf("%w: target key: %v", ErrTampered, err)
	}
	if pub.Equal(t.controller) {
		return Target{}, fmt.Errorf("%w: the delivery names the controller's own key", ErrTampered)
	}
	if err := pub.VerifyDigest(identityDigest(t.digest(), id.key, id.name), id.sig); err != nil {
		return Target{}, fmt.Errorf("%w: target signature: %v", ErrTampered, err)
	}
	claimed := pairing.SanitizeName(id.name)
	name := t.targetName
	if name == "" {
		name = claimed
	}
	return Target{
		PublicKey:   pub,
		DeviceID:    pub.DeviceID(),
		Name:        name,
		ClaimedName: claimed,
		Role:        pairing.RoleTarget,
		Token:       t,
	}, nil
}
