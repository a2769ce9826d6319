package pairing

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/flynn/noise"
)

// transport carries the pairing messages between the two devices; through a
// relay it is a *client.Conn.
type transport interface {
	Send(ctx context.Context, payload []byte) error
	Recv(ctx context.Context) ([]byte, error)
}

type received struct {
	b   []byte
	err error
}

// session is one run of the handshake on one side.
type session struct {
	ctx    context.Context
	cancel context.CancelFunc
	t      transport
	in     chan received
	done   chan struct{}

	// Set once the Noise handshake is complete.
	tx, rx *noise.CipherState
	h      []byte
}

// newSession starts reading from t in the background, so that the peer's
// departure is noticed even while the operator is being asked for the code.
func newSession(ctx context.Context, t transport) *session {
	ctx, cancel := context.WithCancel(ctx)
	s := &session{ctx: ctx, cancel: cancel, t: t, in: make(chan received, 4), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			b, err := t.Recv(ctx)
			select {
			case s.in <- received{b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *session) stop() {
	s.cancel()
	<-s.done
}

// fail turns a context or transport error into the package's errors.
func (s *session) fail(what string, err error) error {
	if s.ctx.Err() != nil {
		if cause := context.Cause(s.ctx); cause == ErrTimeout {
			return fmt.Errorf("pairing: %s: %w", what, ErrTimeout)
		}
		return fmt.Errorf("pairing: %s: %w", what, context.Cause(s.ctx))
	}
	return relayErr(s.ctx, what, err)
}

func (s *session) next(what string) ([]byte, error) {
	select {
	case r := <-s.in:
		if r.err != nil {
			return nil, s.fail(what, r.err)
		}
		return r.b, nil
	case <-s.ctx.Done():
		return nil, s.fail(what, s.ctx.Err())
	}
}

func (s *session) send(what string, b []byte) error {
	if err := s.t.Send(s.ctx, b); err != nil {
		return s.fail(what, err)
	}
	return nil
}

// recvOuter reads the next message, which must be of type want. Before the
// channel exists nothing else is acceptable.
func (s *session) recvOuter(what string, want byte) (outer, error) {
	b, err := s.next(what)
	if err != nil {
		return outer{}, err
	}
	m, err := parseOuter(b)
	if err != nil {
		return outer{}, fmt.Errorf("pairing: %s: %w: %v", what, ErrProtocol, err)
	}
	if m.typ != want {
		return outer{}, fmt.Errorf("pairing: %s: %w: message type 0x%02x, want 0x%02x", what, ErrProtocol, m.typ, want)
	}
	return m, nil
}

// open decrypts a sealed message. Noise's per-direction counter makes a
// replayed, dropped or reordered message fail here.
func (s *session) open(what string, b []byte) (inner, error) {
	m, err := parseOuter(b)
	if err != nil {
		return inner{}, fmt.Errorf("pairing: %s: %w: %v", what, ErrProtocol, err)
	}
	if m.typ != msgSealed {
		return inner{}, fmt.Errorf("pairing: %s: %w: plaintext message 0x%02x inside the channel", what, ErrProtocol, m.typ)
	}
	pt, err := s.rx.Decrypt(nil, nil, m.body)
	if err != nil {
		return inner{}, fmt.Errorf("pairing: %s: %w: message does not decrypt", what, ErrProtocol)
	}
	in, err := parseInner(pt)
	if err != nil {
		return inner{}, fmt.Errorf("pairing: %s: %w: %v", what, ErrProtocol, err)
	}
	return in, nil
}

// recvInner reads the next message from the channel. A reject from the peer
// becomes the matching error.
func (s *session) recvInner(what string, want byte) (inner, error) {
	b, err := s.next(what)
	if err != nil {
		return inner{}, err
	}
	in, err := s.open(what, b)
	if err != nil {
		return inner{}, err
	}
	if in.typ == inReject {
		return inner{}, rejected(what, in.reason)
	}
	if in.typ != want {
		return inner{}, fmt.Errorf("pairing: %s: %w: inner message 0x%02x, want 0x%02x", what, ErrProtocol, in.typ, want)
	}
	return in, nil
}

func rejected(what string, r rejectReason) error {
	switch r {
	case rejectMismatch:
		return fmt.Errorf("pairing: %s: the code typed on the target does not match: %w", what, ErrMismatch)
	case rejectDeclined:
		return fmt.Errorf("pairing: %s: the other device declined: %w", what, ErrDeclined)
	case rejectFailed:
		return fmt.Errorf("pairing: %s: %w", what, ErrPeerFailed)
	case rejectCanceled:
		return fmt.Errorf("pairing: %s: the other device gave up: %w", what, ErrPeerGone)
	case rejectTimeout:
		return fmt.Errorf("pairing: %s: the other device timed out: %w", what, ErrTimeout)
	}
	return fmt.Errorf("pairing: %s: the other device saw an invalid message: %w", what, ErrProtocol)
}

func (s *session) seal(what string, pt []byte) error {
	ct, err := s.tx.Encrypt(nil, nil, pt)
	if err != nil {
		return fmt.Errorf("pairing: %s: %w", what, err)
	}
	return s.send(what, encodeOuter(msgSealed, ct))
}

// abort tells the peer, if the channel exists, why this side gives up. It is
// best effort and bounded: the pairing has failed either way.
func (s *session) abort(r rejectReason) {
	if s.tx == nil {
		return
	}
	ct, err := s.tx.Encrypt(nil, nil, encodeReject(r))
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 2*time.Second)
	defer cancel()
	s.t.Send(ctx, encodeOuter(msgSealed, ct))
}

// abortFor picks the reject reason that matches a local error.
func abortReason(err error) rejectReason {
	switch {
	case errors.Is(err, ErrMismatch):
		return rejectMismatch
	case errors.Is(err, ErrDeclined):
		return rejectDeclined
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrBadSignature), errors.Is(err, ErrCommitment):
		return rejectProtocol
	case errors.Is(err, ErrTimeout):
		return rejectTimeout
	}
	return rejectCanceled
}

// whilePeerPresent runs fn (the operator prompt) with a context that ends
// as soon as anything arrives from the peer or the relay, since nothing
// should arrive at that point: it is a departure, a reject or an attack.
func (s *session) whilePeerPresent(what string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(s.ctx)
	var got *received
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case r := <-s.in:
			got = &r
			cancel()
		case <-ctx.Done():
		}
	}()
	err := fn(ctx)
	cancel()
	<-watched
	if got != nil {
		if got.err != nil {
			return s.fail(what, got.err)
		}
		in, oerr := s.open(what, got.b)
		if oerr != nil {
			return oerr
		}
		if in.typ == inReject {
			return rejected(what, in.reason)
		}
		return fmt.Errorf("pairing: %s: %w: unexpected inner message 0x%02x", what, ErrProtocol, in.typ)
	}
	if err != nil && s.ctx.Err() != nil {
		return s.fail(what, err)
	}
	return err
}

// runTarget is the target's side of the handshake; see docs/PAIRING.md.
func (s *session) runTarget(o *ListenOptions) (peer Peer, err error) {
	defer func() {
		if err != nil {
			s.abort(abortReason(err))
		}
	}()
	// 1. Commit to an ephemeral key before the controller reveals its own.
	e, err := cipherSuite.GenerateKeypair(rand.Reader)
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: ephemeral key: %w", err)
	}
	c := commitment(e.Public)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: cipherSuite, Pattern: noise.HandshakeNN, Initiator: false,
		Prologue: prologue(c[:]), Random: committedKey{e},
	})
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: handshake: %w", err)
	}
	if err := s.send("send commitment", encodeOuter(msgCommit, c[:])); err != nil {
		return Peer{}, err
	}
	// 2. The controller's ephemeral key.
	m, err := s.recvOuter("receive hello", msgHello)
	if err != nil {
		return Peer{}, err
	}
	if _, _, _, err := hs.ReadMessage(nil, m.body); err != nil {
		return Peer{}, fmt.Errorf("pairing: receive hello: %w: %v", ErrProtocol, err)
	}
	// 3. Reveal the committed key; the Noise handshake completes.
	msg2, c1, c2, err := hs.WriteMessage(nil, nil)
	if err != nil || c1 == nil {
		return Peer{}, fmt.Errorf("pairing: reply: %w: %v", ErrProtocol, err)
	}
	if !bytes.Equal(hs.LocalEphemeral().Public, e.Public) {
		return Peer{}, errors.New("pairing: reply: the Noise library did not use the committed key")
	}
	s.rx, s.tx, s.h = c1, c2, hs.ChannelBinding()
	if err := s.send("send reply", encodeOuter(msgReply, msg2)); err != nil {
		return Peer{}, err
	}
	code := verificationCode(s.h)
	// 4. Identities, each signed over the handshake hash.
	mine, err := signIdentity(o.Signer, s.h, RoleTarget, o.Name)
	if err != nil {
		return Peer{}, err
	}
	if err := s.seal("send identity", mine.encode()); err != nil {
		return Peer{}, err
	}
	in, err := s.recvInner("receive the controller's identity", inIdentity)
	if err != nil {
		return Peer{}, err
	}
	peer, err = verifyIdentity(in.id, s.h, RoleController)
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: controller identity: %w", err)
	}
	if bytes.Equal(peer.PublicKey.Bytes(), mine.key) {
		return Peer{}, fmt.Errorf("pairing: %w: the controller has this device's own key", ErrProtocol)
	}
	// 5. The operator types the code shown on the controller.
	var typed string
	err = s.whilePeerPresent("verification code", func(ctx context.Context) error {
		var perr error
		typed, perr = o.Prompt(ctx, peer)
		return perr
	})
	if err != nil {
		if errors.Is(err, ErrDeclined) && !errors.Is(err, ErrPeerGone) {
			return Peer{}, fmt.Errorf("pairing: verification code: %w", err)
		}
		return Peer{}, err
	}
	norm, _ := NormalizeCode(typed)
	if !codesEqual(norm, code) {
		return Peer{}, fmt.Errorf("pairing: the code entered is not the one this session derived: %w", ErrMismatch)
	}
	// 6. Confirm; the controller records this target and acknowledges.
	if err := s.seal("send confirmation", []byte{inConfirm}); err != nil {
		return Peer{}, err
	}
	if _, err := s.recvInner("receive acknowledgement", inAck); err != nil {
		return Peer{}, err
	}
	// 7. Only now grant the controller access: it knows this target.
	if err := o.Commit(s.ctx, peer); err != nil {
		s.abort(rejectFailed)
		return Peer{}, fmt.Errorf("pairing: record the controller: %w", err)
	}
	// Both sides have recorded each other; if Done is lost the controller
	// reports ErrUnconfirmed, which is accurate.
	s.seal("send done", []byte{inDone})
	return peer, nil
}

// runController is the controller's side of the handshake.
func (s *session) runController(o *InviteOptions) (peer Peer, err error) {
	committed := false
	defer func() {
		if err != nil && !committed {
			s.abort(abortReason(err))
		}
	}()
	// 1. The target's commitment comes first.
	m, err := s.recvOuter("receive commitment", msgCommit)
	if err != nil {
		return Peer{}, err
	}
	c := append([]byte(nil), m.body...)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: cipherSuite, Pattern: noise.HandshakeNN, Initiator: true,
		Prologue: prologue(c), Random: rand.Reader,
	})
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: handshake: %w", err)
	}
	// 2. Reveal our ephemeral key.
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: hello: %w", err)
	}
	if err := s.send("send hello", encodeOuter(msgHello, msg1)); err != nil {
		return Peer{}, err
	}
	// 3. The target's key must be the one it committed to before it saw
	// ours; otherwise it was chosen afterwards, which is what grinding
	// the verification code needs.
	m, err = s.recvOuter("receive reply", msgReply)
	if err != nil {
		return Peer{}, err
	}
	if !commitmentMatches(m.body[:dhLen], c) {
		return Peer{}, ErrCommitment
	}
	_, c1, c2, err := hs.ReadMessage(nil, m.body)
	if err != nil || c1 == nil {
		return Peer{}, fmt.Errorf("pairing: receive reply: %w: %v", ErrProtocol, err)
	}
	s.tx, s.rx, s.h = c1, c2, hs.ChannelBinding()
	code := verificationCode(s.h)
	// 4. Identities.
	mine, err := signIdentity(o.Signer, s.h, RoleController, o.Name)
	if err != nil {
		return Peer{}, err
	}
	if err := s.seal("send identity", mine.encode()); err != nil {
		return Peer{}, err
	}
	in, err := s.recvInner("receive the target's identity", inIdentity)
	if err != nil {
		return Peer{}, err
	}
	peer, err = verifyIdentity(in.id, s.h, RoleTarget)
	if err != nil {
		return Peer{}, fmt.Errorf("pairing: target identity: %w", err)
	}
	if bytes.Equal(peer.PublicKey.Bytes(), mine.key) {
		return Peer{}, fmt.Errorf("pairing: %w: the target has this device's own key", ErrProtocol)
	}
	// 5. Show the code; the target's operator types it there.
	if o.ShowCode != nil {
		o.ShowCode(code, peer)
	}
	if _, err := s.recvInner("wait for the target's confirmation", inConfirm); err != nil {
		return Peer{}, err
	}
	// 6. Record the target, then acknowledge: the target grants access
	// only after this.
	if err := o.Commit(s.ctx, peer); err != nil {
		s.abort(rejectFailed)
		return Peer{}, fmt.Errorf("pairing: record the target: %w", err)
	}
	committed = true
	if err := s.seal("send acknowledgement", []byte{inAck}); err != nil {
		return peer, fmt.Errorf("%w: %w", ErrUnconfirmed, err)
	}
	if _, err := s.recvInner("wait for the target to finish", inDone); err != nil {
		return peer, fmt.Errorf("%w: %w", ErrUnconfirmed, err)
	}
	return peer, nil
}
