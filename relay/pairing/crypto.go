package pairing

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// Domain-separation labels. Each hash in the protocol starts with its own
// label and a zero byte, so that no value computed for one purpose can be
// passed off as another, nor as an amesh request signature (whose canonical
// strings start with "AMv").
const (
	labelPrologue   = "amesh pairing v1 prologue"
	labelCommitment = "amesh pairing v1 commitment"
	labelCode       = "amesh pairing v1 verification code"
	labelIdentity   = "amesh pairing v1 identity"
)

// cipherSuite is Noise_NN_25519_ChaChaPoly_SHA256.
var cipherSuite = noise.NewCipherSuite(committedDH{noise.DH25519}, noise.CipherChaChaPoly, noise.HashSHA256)

// committedDH is X25519 whose key generation, when handed a committedKey as
// its random source, returns that key pair. flynn/noise draws the
// responder's ephemeral key while writing message 2; this is how the target
// makes it use the key it committed to in advance. Its name stays "25519", so
// the protocol is unchanged.
type committedDH struct{ noise.DHFunc }

// committedKey carries a pre-generated ephemeral key pair.
type committedKey struct{ key noise.DHKey }

func (committedKey) Read([]byte) (int, error) {
	return 0, errors.New("pairing: committed key used as a random source")
}

// GenerateKeypair implements noise.DHFunc.
func (d committedDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	if k, ok := rng.(committedKey); ok {
		return k.key, nil
	}
	return d.DHFunc.GenerateKeypair(rng)
}

func labelled(label string, parts ...[]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte{0})
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// commitment is the target's hash commitment to its ephemeral public key,
// sent before the controller reveals its own key.
func commitment(ephemeral []byte) [32]byte { return labelled(labelCommitment, ephemeral) }

// commitmentMatches compares in constant time.
func commitmentMatches(ephemeral []byte, c []byte) bool {
	want := commitment(ephemeral)
	return subtle.ConstantTimeCompare(want[:], c) == 1
}

// prologue binds the commitment into the Noise handshake hash: a relay that
// alters the commitment on its way breaks the handshake.
func prologue(c []byte) []byte {
	out := append([]byte(labelPrologue), 0, Version)
	return append(out, c...)
}

// verificationCode derives the six-digit code both screens show from the
// Noise handshake hash, which covers the prologue (and so the commitment)
// and both ephemeral keys.
func verificationCode(h []byte) string {
	sum := labelled(labelCode, h)
	// 64 bits reduced mod 10^6: the bias is below 2^-44.
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(sum[:8])%1_000_000)
}

// codesEqual compares a typed code with the expected one in constant time.
func codesEqual(typed, want string) bool {
	return subtle.ConstantTimeCompare([]byte(typed), []byte(want)) == 1
}

// identityDigest is what a device signs with its device key to prove that
// it holds the key and takes part in this very session (h is unique to it).
func identityDigest(h []byte, role Role, key []byte, name string) []byte {
	d := labelled(labelIdentity, h, []byte{byte(role)}, key, []byte{byte(len(name))}, []byte(name))
	return d[:]
}

// signIdentity builds this device's identity message.
func signIdentity(s protocol.Signer, h []byte, role Role, name string) (identity, error) {
	key := s.PublicKey()
	pub, err := protocol.ParsePublicKey(key)
	if err != nil {
		return identity{}, fmt.Errorf("pairing: device key: %w", err)
	}
	name = wireName(name)
	digest := identityDigest(h, role, key, name)
	sig, err := s.SignDigest(digest)
	if err != nil {
		return identity{}, fmt.Errorf("pairing: sign identity: %w", err)
	}
	if len(sig) != protocol.SignatureSize {
		return identity{}, fmt.Errorf("pairing: signer returned %d bytes, want %d", len(sig), protocol.SignatureSize)
	}
	sig = append([]byte(nil), sig...)
	if err := protocol.NormalizeLowS(sig); err != nil {
		return identity{}, fmt.Errorf("pairing: sign identity: %w", err)
	}
	// A faulty signer (hardware, driver) fails here, not at the peer.
	if err := pub.VerifyDigest(digest, sig); err != nil {
		return identity{}, fmt.Errorf("pairing: device key produced an invalid signature: %w", err)
	}
	return identity{role: role, key: key, name: name, sig: sig}, nil
}

// verifyIdentity checks a peer's identity against the session and the role
// it must have.
func verifyIdentity(id identity, h []byte, want Role) (Peer, error) {
	if id.role != want {
		return Peer{}, fmt.Errorf("%w: peer claims role %v, want %v", ErrProtocol, id.role, want)
	}
	pub, err := protocol.ParsePublicKey(id.key)
	if err != nil {
		return Peer{}, fmt.Errorf("%w: peer key: %v", ErrProtocol, err)
	}
	if err := pub.VerifyDigest(identityDigest(h, id.role, id.key, id.name), id.sig); err != nil {
		return Peer{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return Peer{PublicKey: pub, DeviceID: pub.DeviceID(), Name: SanitizeName(id.name), Role: id.role}, nil
}
