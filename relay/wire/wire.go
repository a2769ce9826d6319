// Package wire is the framing spoken between amesh-relay and its clients
// over a WebSocket.
//
// Every WebSocket message is binary and carries one frame: a type byte
// followed by a body whose layout depends on the type. The relay reads only
// the control frames (create, join, and the provisioning frames deliver,
// collect and ack); a data frame's body is opaque to it and forwarded
// unchanged to the other peer of the room, and a delivery is stored and
// handed over without being read (docs/PROVISIONING.md). The pairing protocol
// (package pairing) travels inside data frames, end-to-end encrypted once its
// handshake is done.
//
// Parsing is strict: a frame whose length does not match its type, a code
// that is not exactly six ASCII digits or an unknown type or reason is an
// error, so a client and the relay never disagree about what a frame means.
package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Subprotocol is the WebSocket subprotocol (Sec-WebSocket-Protocol) of this
// framing. A relay refuses clients that do not offer it, so that an
// incompatible future version fails at the upgrade and not mid-pairing.
const Subprotocol = "amesh-relay.v1"

// CodeLen is the number of decimal digits of a pairing code.
const CodeLen = 6

// BucketLen is the number of leading digits of a pairing code that locate its
// room; the remaining digits are checked. A failed join counts as a wrong
// attempt against every waiting room of its bucket, which is what lets the
// relay burn a live code after a few wrong guesses.
const BucketLen = 3

// Type is the first byte of a frame.
type Type byte

// Frame types. Upper-case letters travel from a client to the relay,
// lower-case ones from the relay to a client; Data travels both ways.
const (
	// Create asks for a new room and its pairing code (target side). No body.
	Create Type = 'C'
	// Join enters the waiting room of a pairing code (controller side).
	// Body: the six ASCII digits.
	Join Type = 'J'
	// Data is an opaque payload for the other peer of the room.
	Data Type = 'D'
	// Created answers Create. Body: the six digits, then the rendezvous
	// lifetime in milliseconds as a big-endian uint32.
	Created Type = 'c'
	// Peer says that the room now has both peers: sent to the target when a
	// controller joins and to the controller as the answer to Join. No body.
	Peer Type = 'p'
	// PeerGone says that the other peer left. Body: one Reason byte. The
	// relay closes the connection after it.
	PeerGone Type = 'g'
	// Error says why the relay refuses a request or ends the session. Body:
	// one Reason byte, then a big-endian uint32 retry-after in milliseconds
	// (zero unless Reason is RateLimited). The relay closes the connection
	// after it.
	Error Type = 'e'

	// Deliver stores a provisioning delivery for a controller that may be
	// offline (target side, docs/PROVISIONING.md). Body: the bootstrap
	// token's one-time ID (TokenIDLen bytes), the token's expiry as a
	// big-endian uint64 of Unix seconds, the mailbox address (MailboxLen
	// bytes), then the sealed delivery (1 to MaxDelivery bytes), opaque to
	// the relay. The relay answers Accepted or Error, then closes.
	Deliver Type = 'P'
	// Collect asks for the deliveries stored in mailboxes (controller
	// side). Body: a flags byte (bit 0: keep waiting for new deliveries),
	// then 1 to MaxMailboxes mailbox keys of MailboxLen bytes each; the
	// relay derives each mailbox's address from its key (MailboxAddress).
	Collect Type = 'K'
	// Ack says that the client has handled the first N Mail frames of this
	// connection; the relay forgets them. Body: N as a big-endian uint32.
	Ack Type = 'A'
	// Accepted answers Deliver: the delivery is stored. No body.
	Accepted Type = 'a'
	// Mail carries one stored delivery to a collector. Body: the mailbox
	// address (MailboxLen bytes), then the sealed delivery.
	Mail Type = 'm'
	// Batch follows the Mail frames of everything stored so far: the
	// collector may acknowledge. No body.
	Batch Type = 'n'
)

// Sizes of the provisioning frames' fields.
const (
	// TokenIDLen is the length of a bootstrap token's one-time ID.
	TokenIDLen = 16
	// MailboxLen is the length of a mailbox key and of a mailbox address.
	MailboxLen = 32
	// MaxMailboxes bounds the mailbox keys of one Collect frame.
	MaxMailboxes = 256
	// MaxDelivery bounds a sealed delivery. A target's identity is far
	// smaller; the bound keeps what the relay stores for a day small.
	MaxDelivery = 1024
)

// MailboxAddress returns the address of the mailbox whose key is key: the
// target, which knows only the address, stores deliveries under it, and
// only a collector that knows the key can take them.
func MailboxAddress(key []byte) [MailboxLen]byte {
	h := sha256.New()
	h.Write([]byte("amesh provision v1 mailbox address"))
	h.Write([]byte{0})
	h.Write(key)
	var out [MailboxLen]byte
	h.Sum(out[:0])
	return out
}

// String returns the type's name, for logs and errors.
func (t Type) String() string {
	switch t {
	case Create:
		return "create"
	case Join:
		return "join"
	case Data:
		return "data"
	case Created:
		return "created"
	case Peer:
		return "peer"
	case PeerGone:
		return "peer_gone"
	case Error:
		return "error"
	case Deliver:
		return "deliver"
	case Collect:
		return "collect"
	case Ack:
		return "ack"
	case Accepted:
		return "accepted"
	case Mail:
		return "mail"
	case Batch:
		return "batch"
	}
	return fmt.Sprintf("type(0x%02x)", byte(t))
}

// Reason says why a connection or room ended, or why a request was refused.
// Reasons are also the label values of the relay's rejection metric.
type Reason byte

// Reasons. Their numeric values are part of the wire format.
const (
	ReasonNone         Reason = 0
	ReasonBadFrame     Reason = 1  // a frame that does not parse
	ReasonProtocol     Reason = 2  // a valid frame at the wrong moment
	ReasonUnknownCode  Reason = 3  // no room has this code
	ReasonCodeBurned   Reason = 4  // too many wrong join attempts burned the code
	ReasonCodeExpired  Reason = 5  // the rendezvous lifetime passed without a join
	ReasonCodeUsed     Reason = 6  // a controller already joined with this code
	ReasonCodeClosed   Reason = 7  // the target stopped waiting
	ReasonRateLimited  Reason = 8  // a per-IP limit is exhausted; see retry-after
	ReasonFrameTooBig  Reason = 9  // a frame over the size limit
	ReasonQuota        Reason = 10 // the session sent more bytes than allowed
	ReasonIdle         Reason = 11 // nothing happened for too long
	ReasonSessionLimit Reason = 12 // the session outlived its maximum duration
	ReasonShutdown     Reason = 13 // the relay is shutting down
	ReasonPeerLeft     Reason = 14 // the other peer closed its connection
	ReasonSlowPeer     Reason = 15 // a peer did not read its frames fast enough
	ReasonInternal     Reason = 16 // the relay failed
	ReasonMaxConns     Reason = 17 // the relay (or this IP) has too many connections
	ReasonPingTimeout  Reason = 18 // no pong in time: the connection is dead
	ReasonTokenUsed    Reason = 19 // the bootstrap token's one-time ID was used already
	ReasonTokenExpired Reason = 20 // the bootstrap token expired
	ReasonUnavailable  Reason = 21 // the relay's shared state (Redis) cannot be reached
	ReasonMailboxFull  Reason = 22 // the mailbox holds too many deliveries

	maxReason = ReasonMailboxFull
)

var reasonNames = [...]string{
	ReasonNone:         "none",
	ReasonBadFrame:     "bad_frame",
	ReasonProtocol:     "protocol",
	ReasonUnknownCode:  "unknown_code",
	ReasonCodeBurned:   "code_burned",
	ReasonCodeExpired:  "code_expired",
	ReasonCodeUsed:     "code_used",
	ReasonCodeClosed:   "code_closed",
	ReasonRateLimited:  "rate_limited",
	ReasonFrameTooBig:  "frame_too_large",
	ReasonQuota:        "session_quota",
	ReasonIdle:         "idle_timeout",
	ReasonSessionLimit: "session_timeout",
	ReasonShutdown:     "shutting_down",
	ReasonPeerLeft:     "peer_left",
	ReasonSlowPeer:     "slow_peer",
	ReasonInternal:     "internal",
	ReasonMaxConns:     "max_connections",
	ReasonPingTimeout:  "ping_timeout",
	ReasonTokenUsed:    "token_used",
	ReasonTokenExpired: "token_expired",
	ReasonUnavailable:  "unavailable",
	ReasonMailboxFull:  "mailbox_full",
}

// String returns the reason's stable name, used in metrics and logs.
func (r Reason) String() string {
	if r <= maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", byte(r))
}

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool { return r <= maxReason }

// Reasons returns every known reason, in numeric order.
func Reasons() []Reason {
	out := make([]Reason, 0, maxReason+1)
	for r := ReasonNone; r <= maxReason; r++ {
		out = append(out, r)
	}
	return out
}

// Frame is one decoded frame. Only the fields of its Type are set.
type Frame struct {
	Type Type
	// Code is the pairing code of Join and Created frames.
	Code string
	// Lifetime is the rendezvous lifetime announced by Created.
	Lifetime time.Duration
	// Reason is set on PeerGone and Error frames.
	Reason Reason
	// RetryAfter is set on Error frames with ReasonRateLimited.
	RetryAfter time.Duration
	// Payload is the body of a Data frame, or the sealed delivery of
	// Deliver and Mail frames. After Parse it aliases the input.
	Payload []byte
	// TokenID is the one-time ID of a Deliver frame (TokenIDLen bytes).
	TokenID []byte
	// Expires is the token expiry of a Deliver frame, in whole seconds.
	Expires time.Time
	// Mailbox is the mailbox address of Deliver and Mail frames
	// (MailboxLen bytes).
	Mailbox []byte
	// Keys are the mailbox keys of a Collect frame (MailboxLen bytes each).
	Keys [][]byte
	// Wait is the flag of a Collect frame: keep the connection open and
	// send deliveries as they arrive.
	Wait bool
	// Count is the number of Mail frames an Ack frame acknowledges.
	Count uint32
}

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed relay frame")

func malformed(format string, args ...any) error {
	return fmt.Errorf("wire: %w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ValidCode reports whether s is exactly CodeLen ASCII digits.
func ValidCode(s string) bool {
	if len(s) != CodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Bucket returns the leading digits of a valid code that locate its room.
func Bucket(code string) string { return code[:BucketLen] }

// maxWireDuration bounds durations carried as uint32 milliseconds (about 49 days).
const maxWireDuration = time.Duration(^uint32(0)) * time.Millisecond

func millis(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	if d >= maxWireDuration {
		return ^uint32(0)
	}
	return uint32(d / time.Millisecond)
}

// Append encodes f onto dst. It fails on a frame that Parse would reject, so
// that nothing invalid is ever sent.
func (f Frame) Append(dst []byte) ([]byte, error) {
	switch f.Type {
	case Create, Peer, Accepted, Batch:
		return append(dst, byte(f.Type)), nil
	case Deliver:
		if len(f.TokenID) != TokenIDLen || len(f.Mailbox) != MailboxLen || len(f.Payload) == 0 ||
			len(f.Payload) > MaxDelivery || f.Expires.Unix() <= 0 {
			return nil, errors.New("wire: deliver: want a token ID, a positive expiry, a mailbox address and 1 to 1024 bytes")
		}
		dst = append(append(dst, byte(f.Type)), f.TokenID...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(f.Expires.Unix()))
		return append(append(dst, f.Mailbox...), f.Payload...), nil
	case Collect:
		if len(f.Keys) == 0 || len(f.Keys) > MaxMailboxes {
			return nil, fmt.Errorf("wire: collect: want 1 to %d mailbox keys", MaxMailboxes)
		}
		flags := byte(0)
		if f.Wait {
			flags = 1
		}
		dst = append(dst, byte(f.Type), flags)
		for _, k := range f.Keys {
			if len(k) != MailboxLen {
				return nil, errors.New("wire: collect: mailbox key of the wrong length")
			}
			dst = append(dst, k...)
		}
		return dst, nil
	case Ack:
		return binary.BigEndian.AppendUint32(append(dst, byte(f.Type)), f.Count), nil
	case Mail:
		if len(f.Mailbox) != MailboxLen || len(f.Payload) == 0 || len(f.Payload) > MaxDelivery {
			return nil, errors.New("wire: mail: want a mailbox address and 1 to 1024 bytes")
		}
		return append(append(append(dst, byte(f.Type)), f.Mailbox...), f.Payload...), nil
	case Join:
		if !ValidCode(f.Code) {
			return nil, errors.New("wire: join: code is not six digits")
		}
		return append(append(dst, byte(f.Type)), f.Code...), nil
	case Created:
		if !ValidCode(f.Code) {
			return nil, errors.New("wire: created: code is not six digits")
		}
		dst = append(append(dst, byte(f.Type)), f.Code...)
		return binary.BigEndian.AppendUint32(dst, millis(f.Lifetime)), nil
	case Data:
		return append(append(dst, byte(f.Type)), f.Payload...), nil
	case PeerGone:
		if !f.Reason.Valid() {
			return nil, fmt.Errorf("wire: peer gone: unknown reason %d", f.Reason)
		}
		return append(dst, byte(f.Type), byte(f.Reason)), nil
	case Error:
		if !f.Reason.Valid() || f.Reason == ReasonNone {
			return nil, fmt.Errorf("wire: error: invalid reason %d", f.Reason)
		}
		dst = append(dst, byte(f.Type), byte(f.Reason))
		return binary.BigEndian.AppendUint32(dst, millis(f.RetryAfter)), nil
	}
	return nil, fmt.Errorf("wire: cannot encode frame type %v", f.Type)
}

// Encode returns f's encoding, or panics on an invalid frame. It is meant for
// frames built from constants.
func (f Frame) Encode() []byte {
	b, err := f.Append(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// Parse decodes one frame. A Data frame's Payload aliases b.
func Parse(b []byte) (Frame, error) {
	if len(b) == 0 {
		return Frame{}, malformed("empty frame")
	}
	f := Frame{Type: Type(b[0])}
	body := b[1:]
	switch f.Type {
	case Create, Peer, Accepted, Batch:
		if len(body) != 0 {
			return Frame{}, malformed("%v frame with a %d-byte body", f.Type, len(body))
		}
	case Join:
		if !ValidCode(string(body)) {
			return Frame{}, malformed("join: code is not %d digits", CodeLen)
		}
		f.Code = string(body)
	case Created:
		if len(body) != CodeLen+4 || !ValidCode(string(body[:CodeLen])) {
			return Frame{}, malformed("created: want %d digits and a lifetime", CodeLen)
		}
		f.Code = string(body[:CodeLen])
		f.Lifetime = time.Duration(binary.BigEndian.Uint32(body[CodeLen:])) * time.Millisecond
	case Data:
		f.Payload = body
	case PeerGone:
		if len(body) != 1 || !Reason(body[0]).Valid() {
			return Frame{}, malformed("peer gone: want one known reason byte")
		}
		f.Reason = Reason(body[0])
	case Error:
		if len(body) != 5 || !Reason(body[0]).Valid() || body[0] == byte(ReasonNone) {
			return Frame{}, malformed("error: want a known reason and a retry-after")
		}
		f.Reason = Reason(body[0])
		f.RetryAfter = time.Duration(binary.BigEndian.Uint32(body[1:])) * time.Millisecond
	case Deliver:
		const head = TokenIDLen + 8 + MailboxLen
		if len(body) <= head || len(body) > head+MaxDelivery {
			return Frame{}, malformed("deliver: want a token ID, an expiry, a mailbox address and 1 to %d bytes", MaxDelivery)
		}
		exp := binary.BigEndian.Uint64(body[TokenIDLen:])
		if exp == 0 || exp > math.MaxInt64/2 {
			return Frame{}, malformed("deliver: expiry out of range")
		}
		f.TokenID = body[:TokenIDLen]
		f.Expires = time.Unix(int64(exp), 0)
		f.Mailbox = body[TokenIDLen+8 : head]
		f.Payload = body[head:]
	case Collect:
		if len(body) < 1+MailboxLen || (len(body)-1)%MailboxLen != 0 || (len(body)-1)/MailboxLen > MaxMailboxes {
			return Frame{}, malformed("collect: want a flags byte and 1 to %d mailbox keys", MaxMailboxes)
		}
		if body[0] > 1 {
			return Frame{}, malformed("collect: unknown flags 0x%02x", body[0])
		}
		f.Wait = body[0] == 1
		for k := body[1:]; len(k) > 0; k = k[MailboxLen:] {
			f.Keys = append(f.Keys, k[:MailboxLen:MailboxLen])
		}
	case Ack:
		if len(body) != 4 {
			return Frame{}, malformed("ack: want a 4-byte count")
		}
		f.Count = binary.BigEndian.Uint32(body)
	case Mail:
		if len(body) <= MailboxLen || len(body) > MailboxLen+MaxDelivery {
			return Frame{}, malformed("mail: want a mailbox address and 1 to %d bytes", MaxDelivery)
		}
		f.Mailbox = body[:MailboxLen]
		f.Payload = body[MailboxLen:]
	default:
		return Frame{}, malformed("unknown frame type 0x%02x", b[0])
	}
	return f, nil
}

// FromClient reports whether frames of type t may be sent by a client.
func (t Type) FromClient() bool {
	return t == Create || t == Join || t == Data || t == Deliver || t == Collect || t == Ack
}

// FromRelay reports whether frames of type t may be sent by the relay.
func (t Type) FromRelay() bool {
	return t == Created || t == Peer || t == PeerGone || t == Error || t == Data ||
		t == Accepted || t == Mail || t == Batch
}
