package pairing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/gorilla/websocket"

	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/wire"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// advRelay is a malicious relay. It speaks amesh-relay's wire protocol, so
// the devices cannot tell it from the real one, but the test decides what
// each device receives: it may forward, drop, duplicate, reorder, alter or
// forge frames, or run its own handshake with each side (man in the middle).
type advRelay struct {
	url      string
	sessions chan *advSession

	mu      sync.Mutex
	pending *advPeer // a target waiting for its controller
}

// advSession is a target and a controller that the relay put in one room.
type advSession struct{ t, c *advPeer }

type advPeer struct {
	ws  *websocket.Conn
	in  chan []byte // data payloads from the device; closed when it leaves
	wmu sync.Mutex
}

func startAdvRelay(t *testing.T) *advRelay {
	t.Helper()
	a := &advRelay{sessions: make(chan *advSession, 1)}
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	l, err := net.Listen("tcp", testenv.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		a.serve(ws)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	a.url = "ws://" + l.Addr().String()
	return a
}

// advCode is the pairing code the adversary hands out.
const advCode = "123456"

func (a *advRelay) serve(ws *websocket.Conn) {
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return
	}
	f, err := wire.Parse(b)
	if err != nil {
		ws.Close()
		return
	}
	p := &advPeer{ws: ws, in: make(chan []byte, 16)}
	switch f.Type {
	case wire.Create:
		a.mu.Lock()
		a.pending = p
		a.mu.Unlock()
		p.frame(wire.Frame{Type: wire.Created, Code: advCode, Lifetime: time.Minute})
	case wire.Join:
		a.mu.Lock()
		tp := a.pending
		a.pending = nil
		a.mu.Unlock()
		if tp == nil || f.Code != advCode {
			p.frame(wire.Frame{Type: wire.Error, Reason: wire.ReasonUnknownCode})
			ws.Close()
			return
		}
		tp.frame(wire.Frame{Type: wire.Peer})
		p.frame(wire.Frame{Type: wire.Peer})
		a.sessions <- &advSession{t: tp, c: p}
	default:
		ws.Close()
		return
	}
	defer close(p.in)
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if f, err := wire.Parse(b); err == nil && f.Type == wire.Data {
			p.in <- append([]byte(nil), f.Payload...)
		}
	}
}

func (p *advPeer) frame(f wire.Frame) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.ws.WriteMessage(websocket.BinaryMessage, f.Encode())
}

// send delivers a payload to the device as if it came from its peer.
func (p *advPeer) send(b []byte) { p.frame(wire.Frame{Type: wire.Data, Payload: b}) }

// gone tells the device its peer left, as the real relay does, and closes.
func (p *advPeer) gone() {
	p.frame(wire.Frame{Type: wire.PeerGone, Reason: wire.ReasonPeerLeft})
	p.ws.Close()
}

// recv waits for the device's next payload; false when it left.
func (p *advPeer) recv() ([]byte, bool) {
	select {
	case b, ok := <-p.in:
		return b, ok
	case <-time.After(10 * time.Second):
		return nil, false
	}
}

// direction of a forwarded frame.
type direction int

const (
	toController direction = iota // sent by the target
	toTarget                      // sent by the controller
)

// forward relays frames in arrival order. Before frame n (counting from
// 0, both directions) is delivered, act decides what is delivered instead;
// cut ends the session there.
type forwardAction func(n int, dir direction, b []byte) (deliver [][]byte, cut bool)

// cutMode says how a session is cut: both connections dropped, or one
// device disconnected and the other told so by the relay.
type cutMode int

const (
	cutBoth cutMode = iota
	cutTarget
	cutController
)

func (s *advSession) forward(act forwardAction, mode cutMode) {
	n := 0
	tin, cin := s.t.in, s.c.in
	for tin != nil || cin != nil {
		var b []byte
		var ok bool
		var dir direction
		select {
		case b, ok = <-tin:
			dir = toController
			if !ok {
				tin = nil
				s.c.gone()
				continue
			}
		case b, ok = <-cin:
			dir = toTarget
			if !ok {
				cin = nil
				s.t.gone()
				continue
			}
		case <-time.After(10 * time.Second):
			return
		}
		deliver, cut := [][]byte{b}, false
		if act != nil {
			deliver, cut = act(n, dir, b)
		}
		n++
		if cut {
			switch mode {
			case cutBoth:
				s.t.ws.Close()
				s.c.ws.Close()
			case cutTarget:
				s.t.ws.Close()
				s.c.gone()
			case cutController:
				s.c.ws.Close()
				s.t.gone()
			}
			return
		}
		to := s.c
		if dir == toTarget {
			to = s.t
		}
		for _, d := range deliver {
			to.send(d)
		}
	}
}

// Frame numbers of an undisturbed run, in the order the relay sees them.
// Frames 3 and 4 travel in opposite directions at about the same time.
const (
	frameCommit = iota
	frameHello
	frameReply
	frameTargetIdentity
	frameControllerIdentity
	frameConfirm
	frameAck
	frameDone
	framesTotal
)

func TestAdversaryForwardingHonestlyPairs(t *testing.T) {
	adv := startAdvRelay(t)
	go func() { (<-adv.sessions).forward(nil, cutBoth) }()
	target, controller := newDevice(t, "t"), newDevice(t, "c")
	tgt, ctl := (&pairRun{target: target, controller: controller}).run(t, adv.url)
	if tgt.err != nil || ctl.err != nil {
		t.Fatalf("target: %v; controller: %v", tgt.err, ctl.err)
	}
}

// A peer disconnecting at any step, or the relay cutting the session there,
// never leaves the target trusting a controller that does not know it.
func TestDisconnectAtEachStep(t *testing.T) {
	modes := map[cutMode]string{cutBoth: "relay drops both", cutTarget: "target leaves", cutController: "controller leaves"}
	for mode, name := range modes {
		for k := 0; k <= framesTotal; k++ {
			t.Run(name+"/after "+itoa(k)+" frames", func(t *testing.T) {
				adv := startAdvRelay(t)
				go func() {
					(<-adv.sessions).forward(func(n int, _ direction, b []byte) ([][]byte, bool) {
						return [][]byte{b}, n == k
					}, mode)
				}()
				target, controller := newDevice(t, "t"), newDevice(t, "c")
				tgt, ctl := (&pairRun{target: target, controller: controller, timeout: 2 * time.Second}).run(t, adv.url)
				noOneSidedTrust(t, target, controller)
				tc, cc := len(target.book.list()) > 0, len(controller.book.list()) > 0
				switch {
				case k < framesTotal && tgt.err == nil && ctl.err == nil:
					t.Fatal("both sides succeeded although the session was cut")
				case (tgt.err == nil) != tc:
					t.Fatalf("target returned %v but recorded=%v", tgt.err, tc)
				case ctl.err == nil && !cc:
					t.Fatalf("controller succeeded without recording")
				case cc && ctl.err != nil && !errors.Is(ctl.err, ErrUnconfirmed):
					t.Fatalf("controller recorded the target but returned %v (want nil or ErrUnconfirmed)", ctl.err)
				}
				// docs/PAIRING.md, section 2.4.
				wantC, wantT := k > frameConfirm, k > frameAck
				if cc != wantC || tc != wantT {
					t.Fatalf("cut before frame %d: controller recorded=%v target recorded=%v; want %v and %v", k, cc, tc, wantC, wantT)
				}
				if k == frameAck || k == frameDone {
					if !errors.Is(ctl.err, ErrUnconfirmed) {
						t.Fatalf("controller: %v, want ErrUnconfirmed", ctl.err)
					}
				}
				for _, err := range []error{tgt.err, ctl.err} {
					if err != nil && !errors.Is(err, ErrPeerGone) && !errors.Is(err, ErrUnconfirmed) {
						t.Errorf("unexpected error kind: %v", err)
					}
				}
			})
		}
	}
}

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }

func TestReplayedFrames(t *testing.T) {
	for i := 0; i < framesTotal; i++ {
		t.Run("duplicate frame "+itoa(i), func(t *testing.T) {
			adv := startAdvRelay(t)
			go func() {
				(<-adv.sessions).forward(func(n int, _ direction, b []byte) ([][]byte, bool) {
					if n == i {
						return [][]byte{b, b}, false
					}
					return [][]byte{b}, false
				}, cutBoth)
			}()
			target, controller := newDevice(t, "t"), newDevice(t, "c")
			tgt, ctl := (&pairRun{target: target, controller: controller, timeout: 2 * time.Second}).run(t, adv.url)
			noOneSidedTrust(t, target, controller)
			if i <= frameControllerIdentity {
				// Every duplicate before the code is confirmed is noticed
				// and the target trusts nothing. (The relay can hold a
				// duplicate until after the confirmation, so the
				// controller may have recorded the target: harmless, and
				// no different from a cut connection.)
				if !errors.Is(tgt.err, ErrProtocol) && !errors.Is(ctl.err, ErrProtocol) {
					t.Fatalf("no side noticed the replay: target %v; controller %v", tgt.err, ctl.err)
				}
				if len(target.book.list()) != 0 {
					t.Fatal("the target recorded the controller despite the replay")
				}
			}
		})
	}
}

func TestReorderedFrames(t *testing.T) {
	// The relay delivers the target's identity (encrypted) before its
	// Noise reply.
	adv := startAdvRelay(t)
	go func() {
		var held []byte
		(<-adv.sessions).forward(func(n int, dir direction, b []byte) ([][]byte, bool) {
			switch {
			case n == frameReply:
				held = b
				return nil, false
			case held != nil && dir == toController:
				out := [][]byte{b, held}
				held = nil
				return out, false
			}
			return [][]byte{b}, false
		}, cutBoth)
	}()
	target, controller := newDevice(t, "t"), newDevice(t, "c")
	tgt, ctl := (&pairRun{target: target, controller: controller, timeout: 2 * time.Second}).run(t, adv.url)
	if !errors.Is(ctl.err, ErrProtocol) {
		t.Fatalf("controller: %v, want ErrProtocol", ctl.err)
	}
	if tgt.err == nil {
		t.Fatal("target succeeded")
	}
	if len(target.book.list())+len(controller.book.list()) != 0 {
		t.Fatal("something was recorded")
	}
}

// Altering any byte of any frame before the confirmation breaks the pairing
// and records nothing.
func TestTamperedFrames(t *testing.T) {
	for i := 0; i <= frameConfirm; i++ {
		t.Run("frame "+itoa(i), func(t *testing.T) {
			adv := startAdvRelay(t)
			go func() {
				(<-adv.sessions).forward(func(n int, _ direction, b []byte) ([][]byte, bool) {
					if n == i {
						b = append([]byte(nil), b...)
						b[len(b)-1] ^= 0x01
					}
					return [][]byte{b}, false
				}, cutBoth)
			}()
			target, controller := newDevice(t, "t"), newDevice(t, "c")
			tgt, ctl := (&pairRun{target: target, controller: controller, timeout: 2 * time.Second}).run(t, adv.url)
			if tgt.err == nil || ctl.err == nil {
				t.Fatalf("target: %v; controller: %v; want both to fail", tgt.err, ctl.err)
			}
			if len(target.book.list())+len(controller.book.list()) != 0 {
				t.Fatal("something was recorded")
			}
			if i == frameCommit && !errors.Is(ctl.err, ErrCommitment) {
				t.Fatalf("altered commitment: controller %v, want ErrCommitment", ctl.err)
			}
		})
	}
}

// mitm is the relay playing man in the middle: it runs its own handshake
// with each device, as controller towards the target and as target towards
// the controller, with its own device key.
type mitm struct {
	key *protocol.PrivateKey
	// grind: instead of keeping its commitment to the controller, choose
	// the key it reveals after seeing the controller's, so that the
	// controller's code matches the target's.
	grind bool
	// fakeConfirm: after the target's rejection, tell the controller the
	// code was confirmed anyway.
	fakeConfirm bool

	// Filled in by run.
	targetCode  string // the code of the relay–target session
	groundTries int
	groundCode  string // what the controller would have shown with the ground key
	targetSaw   byte   // the target's last inner message type
}

func (m *mitm) run(t *testing.T, s *advSession) {
	defer s.t.ws.Close()
	defer s.c.ws.Close()
	// Session 2: the relay as controller, towards the target.
	b, ok := s.t.recv()
	if !ok {
		return
	}
	c2, err := parseOuter(b)
	if err != nil {
		t.Errorf("mitm: %v", err)
		return
	}
	hs2, _ := noise.NewHandshakeState(noise.Config{CipherSuite: cipherSuite, Pattern: noise.HandshakeNN,
		Initiator: true, Prologue: prologue(c2.body)})
	msg1, _, _, _ := hs2.WriteMessage(nil, nil)
	s.t.send(encodeOuter(msgHello, msg1))
	if b, ok = s.t.recv(); !ok {
		return
	}
	reply, _ := parseOuter(b)
	_, tx2, rx2, err := hs2.ReadMessage(nil, reply.body)
	if err != nil {
		t.Errorf("mitm: target reply: %v", err)
		return
	}
	h2 := hs2.ChannelBinding()
	m.targetCode = verificationCode(h2)
	b, _ = s.t.recv() // the target's identity, which the relay can read
	o, _ := parseOuter(b)
	if _, err := rx2.Decrypt(nil, nil, o.body); err != nil {
		t.Errorf("mitm: target identity: %v", err)
		return
	}
	id, _ := signIdentity(m.key, h2, RoleController, "alice's laptop")
	ct, _ := tx2.Encrypt(nil, nil, id.encode())
	s.t.send(encodeOuter(msgSealed, ct))

	// Session 1: the relay as target, towards the controller. It must
	// commit before it sees the controller's key.
	var priv [32]byte
	rand.Read(priv[:])
	e1, _ := cipherSuite.GenerateKeypair(bytes.NewReader(priv[:]))
	c1 := commitment(e1.Public)
	s.c.send(encodeOuter(msgCommit, c1[:]))
	if b, ok = s.c.recv(); !ok {
		return
	}
	hello, _ := parseOuter(b)
	respond := func(priv []byte) (msg2 []byte, tx, rx *noise.CipherState, h []byte) {
		hs, _ := noise.NewHandshakeState(noise.Config{CipherSuite: cipherSuite, Pattern: noise.HandshakeNN,
			Prologue: prologue(c1[:]), Random: bytes.NewReader(priv)})
		if _, _, _, err := hs.ReadMessage(nil, hello.body); err != nil {
			t.Errorf("mitm: hello: %v", err)
		}
		msg2, rx, tx, _ = hs.WriteMessage(nil, nil)
		return msg2, tx, rx, hs.ChannelBinding()
	}
	if m.grind {
		// Try keys until one gives the controller a code that starts like
		// the target's. A full match takes about 10^6 tries, which is
		// exactly what the seed's relay did; two digits (about 100
		// tries) are enough to show that the relay really chose its key
		// after seeing the controller's.
		for {
			m.groundTries++
			var cand [32]byte
			rand.Read(cand[:])
			msg2, _, _, h := respond(cand[:])
			if code := verificationCode(h); code[:2] == m.targetCode[:2] {
				m.groundCode = code
				s.c.send(encodeOuter(msgReply, msg2))
				break
			}
		}
		// The controller's commitment check refuses the ground key; the
		// relay has nothing left to offer the target.
		s.c.recv()
		return
	}
	msg2, tx1, rx1, h1 := respond(priv[:])
	s.c.send(encodeOuter(msgReply, msg2))
	id, _ = signIdentity(m.key, h1, RoleTarget, "web-01")
	ct, _ = tx1.Encrypt(nil, nil, id.encode())
	s.c.send(encodeOuter(msgSealed, ct))
	if b, ok = s.c.recv(); !ok { // the controller's identity
		return
	}
	o, _ = parseOuter(b)
	rx1.Decrypt(nil, nil, o.body)
	// The operator now types, on the target, the code the controller
	// shows. The target answers confirm or reject.
	if b, ok = s.t.recv(); !ok {
		return
	}
	o, _ = parseOuter(b)
	pt, err := rx2.Decrypt(nil, nil, o.body)
	if err == nil && len(pt) > 0 {
		m.targetSaw = pt[0]
	}
	if m.fakeConfirm {
		ct, _ = tx1.Encrypt(nil, nil, []byte{inConfirm})
		s.c.send(encodeOuter(msgSealed, ct))
		s.c.recv() // the controller's acknowledgement
	}
}

// The relay runs a full man-in-the-middle, keeping its commitments: the
// codes on the two screens are independent, so the operator's entry does
// not match (but for one chance in a million) and the target records
// nothing.
func TestManInTheMiddleCannotMatchCodes(t *testing.T) {
	for _, fake := range []bool{false, true} {
		name := "honest commitments"
		if fake {
			name += ", forged confirmation to the controller"
		}
		t.Run(name, func(t *testing.T) {
			adv := startAdvRelay(t)
			m := &mitm{key: newKey(t), fakeConfirm: fake}
			done := make(chan struct{})
			go func() { defer close(done); m.run(t, <-adv.sessions) }()
			target, controller := newDevice(t, "web-01"), newDevice(t, "alice's laptop")
			var shown string
			op := newOperator()
			op.typed = func(s string) string { shown = s; return s }
			tgt, ctl := (&pairRun{target: target, controller: controller, op: op, timeout: 2 * time.Second}).run(t, adv.url)
			<-done
			if shown == m.targetCode {
				t.Skip("the man in the middle won its one-in-a-million guess")
			}
			if !errors.Is(tgt.err, ErrMismatch) || m.targetSaw != inReject {
				t.Fatalf("target: %v (sent 0x%02x), want ErrMismatch and a reject", tgt.err, m.targetSaw)
			}
			if n := len(target.book.list()); n != 0 {
				t.Fatalf("the target recorded %d controllers", n)
			}
			// The controller cannot tell the relay from the target: with a
			// forged confirmation it records the relay's key, as a target.
			// That grants the relay nothing: a target never gains access
			// to its controller. docs/PAIRING.md discusses it.
			for _, p := range controller.book.list() {
				if p.Role != RoleTarget || !p.PublicKey.Equal(m.key.Public()) {
					t.Fatalf("the controller recorded %+v", p)
				}
			}
			if !fake && ctl.err == nil {
				t.Fatal("the controller succeeded without a confirmation")
			}
		})
	}
}

// The relay tries to grind the verification code: it must reveal a key
// other than the one it committed to, and the controller's commitment check
// catches it before any code is shown.
func TestManInTheMiddleGrindingIsCaughtByCommitment(t *testing.T) {
	adv := startAdvRelay(t)
	m := &mitm{key: newKey(t), grind: true}
	done := make(chan struct{})
	go func() { defer close(done); m.run(t, <-adv.sessions) }()
	target, controller := newDevice(t, "web-01"), newDevice(t, "alice's laptop")
	showCalls := 0
	r := &pairRun{target: target, controller: controller, timeout: 2 * time.Second,
		inviteOpts: func(o *InviteOptions) { o.ShowCode = func(string, Peer) { showCalls++ } },
		listenOpts: func(o *ListenOptions) { o.HandshakeTimeout = 300 * time.Millisecond },
	}
	tgt, ctl := r.run(t, adv.url)
	<-done
	if m.groundCode[:2] != m.targetCode[:2] {
		t.Fatalf("the adversary did not grind: %s vs %s", m.groundCode, m.targetCode)
	}
	t.Logf("adversary ground %d keys to make the controller's code start like the target's (%s… vs %s…)",
		m.groundTries, m.groundCode[:2], m.targetCode[:2])
	if !errors.Is(ctl.err, ErrCommitment) {
		t.Fatalf("controller: %v, want ErrCommitment", ctl.err)
	}
	if showCalls != 0 {
		t.Fatal("the controller showed a verification code for a tampered session")
	}
	if tgt.err == nil {
		t.Fatal("the target succeeded")
	}
	if len(target.book.list())+len(controller.book.list()) != 0 {
		t.Fatal("something was recorded")
	}
}
