// Package pairing is the handshake by which two amesh devices come to trust
// each other once, through an untrusted amesh-relay: the target (a server,
// `amesh listen`) shows a six-digit pairing code, the controller (`amesh
// invite CODE`) joins with it and shows a six-digit verification code, and
// the target's operator types that code in. Afterwards the target accepts
// the controller's signed requests; the controller records the target, which
// gains no access to it.
//
// The key agreement and the encrypted channel are Noise NN
// (Noise_NN_25519_ChaChaPoly_SHA256). Before the controller reveals its
// ephemeral key, the target commits to its own with a hash sent ahead, so a
// man in the middle (the relay itself, say) must fix its keys before it can
// know the codes they will produce: it gets one guess in a million per
// pairing attempt, and no way to grind. The verification code is derived
// from the Noise handshake hash. Inside the channel each device sends its
// identity (device public key, friendly name, role) signed by its device key
// over the handshake hash with a domain-separation label, which proves
// possession of the key and binds it to this session.
//
// The ordering of the final messages guarantees that a broken connection
// never leaves the target trusting a controller that does not know it: the
// target confirms the code, the controller records the target and
// acknowledges, and only then does the target record the controller.
//
// The package writes no files. The caller supplies callbacks to show codes,
// to ask the operator, and to record the peer; every failure is an error
// that errors.Is matches against the Err values below, and when Listen or
// Invite fails the caller's Commit has not been called (except as documented
// for ErrUnconfirmed). docs/PAIRING.md specifies the protocol and its threat
// model.
package pairing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/wire"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Errors returned by Listen and Invite, for errors.Is. The pairing-code
// errors are the relay client's, so that either name matches.
var (
	// ErrMismatch: the verification code typed on the target is not the
	// one its session derived. Either a typo or a man in the middle;
	// nothing was recorded on either side.
	ErrMismatch = errors.New("pairing: verification codes do not match")
	// ErrCommitment: the target's ephemeral key does not match the
	// commitment it sent first. Only an attacker on the path (for instance
	// a malicious relay trying to grind the verification code) causes it.
	ErrCommitment = errors.New("pairing: the target's key does not match its commitment: the connection is being tampered with (man in the middle)")
	// ErrBadSignature: the peer's identity signature does not verify over
	// this session.
	ErrBadSignature = errors.New("pairing: the peer's identity signature is invalid")
	// ErrProtocol: a message was malformed, out of order, replayed or
	// altered.
	ErrProtocol = errors.New("pairing: protocol violation (replayed, reordered or altered message)")
	// ErrTimeout: the handshake did not finish within its deadline.
	ErrTimeout = errors.New("pairing: timed out")
	// ErrPeerGone: the other device disconnected, or the relay ended the
	// session.
	ErrPeerGone = errors.New("pairing: the other device disconnected")
	// ErrRelay: the relay cannot be reached or refused the request.
	ErrRelay = errors.New("pairing: relay error")
	// ErrDeclined: the operator declined (locally, or on the other device).
	ErrDeclined = errors.New("pairing: declined")
	// ErrPeerFailed: the other device could not record the pairing.
	ErrPeerFailed = errors.New("pairing: the other device failed to record the pairing")
	// ErrUnconfirmed (controller only): the controller recorded the target
	// and acknowledged, but the target's final confirmation never came.
	// The target may or may not have recorded the controller; the
	// controller's record is harmless either way (a target gains no access
	// to its controller). Invite returns the target's Peer with it.
	ErrUnconfirmed = errors.New("pairing: the target did not confirm that it recorded this controller")
	// ErrBadCode: the pairing code given to Invite is not six digits.
	ErrBadCode = errors.New("pairing: the pairing code must be 6 digits")

	ErrCodeUnknown = client.ErrUnknownCode // no pairing waits on this code
	ErrCodeExpired = client.ErrCodeExpired // the code's 60 seconds passed
	ErrCodeBurned  = client.ErrCodeBurned  // too many wrong join attempts
	ErrCodeUsed    = client.ErrCodeUsed    // another controller used the code
	ErrCodeClosed  = client.ErrCodeClosed  // the target stopped waiting
	ErrRateLimited = client.ErrRateLimited // too many attempts from this address
)

// DefaultHandshakeTimeout bounds a pairing from the moment both devices are
// in the room, including the time the operator takes to type the code. The
// relay's idle timeout must be longer.
const DefaultHandshakeTimeout = 3 * time.Minute

// Peer is the verified identity of the other device.
type Peer struct {
	// PublicKey is the peer's device key, proven by its signature.
	PublicKey *protocol.PublicKey
	// DeviceID is the ID shown to people ("am_…").
	DeviceID string
	// Name is the peer's friendly name, sanitised (SanitizeName).
	Name string
	// Role is the role to record the peer with: RoleController on the
	// target, RoleTarget on the controller.
	Role Role
}

// RelayOptions say how to reach the relay.
type RelayOptions struct {
	// URL of the relay: ws://, wss://, http:// or https:// (path /ws by
	// default).
	URL string
	// Dial holds TLS settings and extra headers; nil means defaults.
	Dial *client.Options
}

// ListenOptions configure the target side (`amesh listen`).
type ListenOptions struct {
	Relay RelayOptions
	// Signer is this device's key.
	Signer protocol.Signer
	// Name is this device's friendly name as sent to the controller.
	Name string
	// OnCode shows the pairing code and when it stops being valid. It is
	// called once, before waiting for the controller. Optional.
	OnCode func(code string, expires time.Time)
	// Prompt asks the operator for the verification code shown on the
	// controller, whose verified identity it is given. ctx ends when the
	// pairing is abandoned (the controller left, the deadline passed); the
	// prompt must then return. Return an error wrapping ErrDeclined to
	// decline. The typed code may contain spaces or dashes.
	Prompt func(ctx context.Context, controller Peer) (string, error)
	// Commit records the controller (role controller). It is called at most
	// once, last, after the controller acknowledged that it recorded this
	// target. An error aborts the pairing.
	Commit func(ctx context.Context, controller Peer) error
	// HandshakeTimeout defaults to DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// InviteOptions configure the controller side (`amesh invite CODE`).
type InviteOptions struct {
	Relay RelayOptions
	// Code is the pairing code shown by the target.
	Code   string
	Signer protocol.Signer
	Name   string
	// ShowCode shows the verification code that the target's operator
	// must type, with the target's verified identity. It is called once,
	// only after the target's commitment checked out.
	ShowCode func(code string, target Peer)
	// Commit records the target (role target). It is called at most once,
	// after the target confirmed the verification code and before the
	// controller's acknowledgement. An error aborts the pairing and the
	// target records nothing.
	Commit func(ctx context.Context, target Peer) error
	// HandshakeTimeout defaults to DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// NormalizeCode removes the spaces and dashes people type inside a six-digit
// code and reports whether six digits remain.
func NormalizeCode(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) != 6 {
		return s, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return s, false
		}
	}
	return s, true
}

// rendezvousSlack is how much longer than the relay's announced lifetime
// the target waits, in case the relay never says the code expired.
const rendezvousSlack = 5 * time.Second

// Listen runs the target side: it creates a room on the relay, shows the
// pairing code, waits for a controller, and runs the handshake. On success
// the controller has been recorded through opts.Commit; on any error it has
// not.
func Listen(ctx context.Context, opts ListenOptions) (Peer, error) {
	if opts.Signer == nil || opts.Prompt == nil || opts.Commit == nil {
		return Peer{}, errors.New("pairing: listen: Signer, Prompt and Commit are required")
	}
	if _, err := protocol.ParsePublicKey(opts.Signer.PublicKey()); err != nil {
		return Peer{}, fmt.Errorf("pairing: listen: device key: %w", err)
	}
	conn, err := client.Dial(ctx, opts.Relay.URL, opts.Relay.Dial)
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: listen: %w: %w", ErrRelay, err)
	}
	defer conn.Close()
	code, lifetime, err := conn.Create(ctx)
	if err != nil {
		return Peer{}, relayErr(ctx, "create room", err)
	}
	if opts.OnCode != nil {
		opts.OnCode(code, time.Now().Add(lifetime))
	}
	wctx, cancel := context.WithTimeoutCause(ctx, lifetime+rendezvousSlack, ErrCodeExpired)
	err = conn.WaitPeer(wctx)
	cancel()
	if err != nil {
		if context.Cause(wctx) == ErrCodeExpired && ctx.Err() == nil {
			return Peer{}, fmt.Errorf("pairing: wait for the controller: %w", ErrCodeExpired)
		}
		return Peer{}, relayErr(ctx, "wait for the controller", err)
	}
	hctx, cancel := context.WithTimeoutCause(ctx, timeoutOr(opts.HandshakeTimeout), ErrTimeout)
	defer cancel()
	s := newSession(hctx, conn)
	defer s.stop()
	return s.runTarget(&opts)
}

// Invite runs the controller side: it joins the target's room with the
// pairing code and runs the handshake. On success the target has been
// recorded through opts.Commit and has recorded this controller.
func Invite(ctx context.Context, opts InviteOptions) (Peer, error) {
	if opts.Signer == nil || opts.Commit == nil {
		return Peer{}, errors.New("pairing: invite: Signer and Commit are required")
	}
	if _, err := protocol.ParsePublicKey(opts.Signer.PublicKey()); err != nil {
		return Peer{}, fmt.Errorf("pairing: invite: device key: %w", err)
	}
	code, ok := NormalizeCode(opts.Code)
	if !ok {
		return Peer{}, ErrBadCode
	}
	conn, err := client.Dial(ctx, opts.Relay.URL, opts.Relay.Dial)
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: invite: %w: %w", ErrRelay, err)
	}
	defer conn.Close()
	if err := conn.Join(ctx, code); err != nil {
		return Peer{}, relayErr(ctx, "join", err)
	}
	hctx, cancel := context.WithTimeoutCause(ctx, timeoutOr(opts.HandshakeTimeout), ErrTimeout)
	defer cancel()
	s := newSession(hctx, conn)
	defer s.stop()
	return s.runController(&opts)
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultHandshakeTimeout
	}
	return d
}

// relayErr classifies an error of the relay client.
func relayErr(ctx context.Context, what string, err error) error {
	var re *client.RelayError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("pairing: %s: %w", what, context.Cause(ctx))
	case errors.Is(err, client.ErrPeerGone):
		return fmt.Errorf("pairing: %s: %w (%w)", what, ErrPeerGone, err)
	case errors.As(err, &re):
		switch re.Reason {
		case client.ErrUnknownCode.Reason, client.ErrCodeBurned.Reason, client.ErrCodeExpired.Reason,
			client.ErrCodeUsed.Reason, client.ErrCodeClosed.Reason:
			return fmt.Errorf("pairing: %s: %w", what, err)
		case wire.ReasonIdle, wire.ReasonSessionLimit:
			return fmt.Errorf("pairing: %s: %w: %w", what, ErrTimeout, err)
		}
		return fmt.Errorf("pairing: %s: %w: %w", what, ErrRelay, err)
	case errors.Is(err, client.ErrDisconnected):
		return fmt.Errorf("pairing: %s: %w: %w", what, ErrPeerGone, err)
	}
	return fmt.Errorf("pairing: %s: %w: %w", what, ErrRelay, err)
}
