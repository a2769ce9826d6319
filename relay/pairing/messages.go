package pairing

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// Version is the pairing protocol version carried by the commitment message.
const Version = 1

// Outer message types: the first byte of every relay data frame.
const (
	msgCommit byte = 0x01 // target → controller: version, commitment to the target's ephemeral key
	msgHello  byte = 0x02 // controller → target: Noise NN message 1 (→ e)
	msgReply  byte = 0x03 // target → controller: Noise NN message 2 (← e, ee)
	msgSealed byte = 0x04 // both: a Noise transport message carrying an inner message
)

// Inner message types, inside msgSealed.
const (
	inIdentity byte = 0x10 // role, public key, name, signature over the transcript
	inConfirm  byte = 0x11 // target → controller: the verification code matched
	inAck      byte = 0x12 // controller → target: the controller recorded the target
	inDone     byte = 0x13 // target → controller: the target recorded the controller
	inReject   byte = 0x14 // either: the pairing is abandoned; one reason byte
)

// Sizes of the fixed-length parts.
const (
	dhLen        = 32 // X25519 public key
	tagLen       = 16 // ChaCha20-Poly1305 tag
	commitLen    = 32 // SHA-256
	helloLen     = dhLen
	replyLen     = dhLen + tagLen
	maxSealedLen = 1024
	identityMin  = 1 + 1 + protocol.PublicKeySize + 1 + protocol.SignatureSize
)

// rejectReason says why a peer abandons the pairing.
type rejectReason byte

const (
	rejectMismatch rejectReason = 1 // the verification code typed on the target differs
	rejectDeclined rejectReason = 2 // the operator declined
	rejectFailed   rejectReason = 3 // recording the peer failed
	rejectProtocol rejectReason = 4 // a message was invalid
	rejectCanceled rejectReason = 5 // interrupted
	rejectTimeout  rejectReason = 6 // the handshake deadline passed
)

// Role is a device's role in a pairing.
type Role byte

const (
	// RoleController signs requests; the target will accept them.
	RoleController Role = 1
	// RoleTarget verifies requests from its controllers.
	RoleTarget Role = 2
)

// String returns "controller" or "target", the role names of allow lists.
func (r Role) String() string {
	switch r {
	case RoleController:
		return "controller"
	case RoleTarget:
		return "target"
	}
	return fmt.Sprintf("role(%d)", byte(r))
}

// errMalformed is wrapped by every decoding error; it is always a protocol
// violation by the peer or the relay.
var errMalformed = errors.New("malformed pairing message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// outer is a decoded relay payload.
type outer struct {
	typ     byte
	version byte
	body    []byte // commitment, Noise message or ciphertext; aliases the input
}

// parseOuter decodes a relay payload. Lengths are exact for every type but
// sealed, which is bounded.
func parseOuter(b []byte) (outer, error) {
	if len(b) == 0 {
		return outer{}, malformed("empty message")
	}
	m := outer{typ: b[0], body: b[1:]}
	switch m.typ {
	case msgCommit:
		if len(m.body) != 1+commitLen {
			return outer{}, malformed("commitment of %d bytes", len(m.body))
		}
		m.version, m.body = m.body[0], m.body[1:]
		if m.version != Version {
			return outer{}, malformed("pairing protocol version %d, want %d", m.version, Version)
		}
	case msgHello:
		if len(m.body) != helloLen {
			return outer{}, malformed("hello of %d bytes", len(m.body))
		}
	case msgReply:
		if len(m.body) != replyLen {
			return outer{}, malformed("reply of %d bytes", len(m.body))
		}
	case msgSealed:
		if len(m.body) < tagLen || len(m.body) > maxSealedLen {
			return outer{}, malformed("sealed message of %d bytes", len(m.body))
		}
	default:
		return outer{}, malformed("unknown message type 0x%02x", m.typ)
	}
	return m, nil
}

func encodeOuter(typ byte, body []byte) []byte {
	out := make([]byte, 0, 2+len(body))
	out = append(out, typ)
	if typ == msgCommit {
		out = append(out, Version)
	}
	return append(out, body...)
}

// inner is a decoded message from inside the encrypted channel.
type inner struct {
	typ    byte
	id     identity     // inIdentity
	reason rejectReason // inReject
}

// identity is what a device tells its peer about itself.
type identity struct {
	role Role
	key  []byte // 33-byte compressed P-256 point
	name string // raw, as sent; sanitise before showing
	sig  []byte // 64-byte r||s over identityDigest
}

func parseInner(b []byte) (inner, error) {
	if len(b) == 0 {
		return inner{}, malformed("empty inner message")
	}
	m := inner{typ: b[0]}
	body := b[1:]
	switch m.typ {
	case inConfirm, inAck, inDone:
		if len(body) != 0 {
			return inner{}, malformed("inner message 0x%02x with a body", m.typ)
		}
	case inReject:
		if len(body) != 1 || body[0] < byte(rejectMismatch) || body[0] > byte(rejectTimeout) {
			return inner{}, malformed("reject without a known reason")
		}
		m.reason = rejectReason(body[0])
	case inIdentity:
		id, err := parseIdentity(body)
		if err != nil {
			return inner{}, err
		}
		m.id = id
	default:
		return inner{}, malformed("unknown inner message 0x%02x", m.typ)
	}
	return m, nil
}

func parseIdentity(b []byte) (identity, error) {
	if len(b) < identityMin-1 {
		return identity{}, malformed("identity of %d bytes", len(b))
	}
	var id identity
	id.role = Role(b[0])
	if id.role != RoleController && id.role != RoleTarget {
		return identity{}, malformed("unknown role %d", b[0])
	}
	id.key = b[1 : 1+protocol.PublicKeySize]
	rest := b[1+protocol.PublicKeySize:]
	n := int(rest[0])
	rest = rest[1:]
	if n > MaxNameBytes {
		return identity{}, malformed("identity: name of %d bytes, limit %d", n, MaxNameBytes)
	}
	if len(rest) != n+protocol.SignatureSize {
		return identity{}, malformed("identity: name of %d bytes does not fit", n)
	}
	name := rest[:n]
	if !utf8.Valid(name) {
		return identity{}, malformed("identity: name is not UTF-8")
	}
	id.name = string(name)
	id.sig = rest[n:]
	return id, nil
}

func (id identity) encode() []byte {
	out := make([]byte, 0, 1+identityMin+len(id.name))
	out = append(out, inIdentity, byte(id.role))
	out = append(out, id.key...)
	out = append(out, byte(len(id.name)))
	out = append(out, id.name...)
	return append(out, id.sig...)
}

func encodeReject(r rejectReason) []byte { return []byte{inReject, byte(r)} }
