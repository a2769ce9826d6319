package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

type phase uint8

const (
	phaseHello   phase = iota // connected, neither created nor joined
	phaseWaiting              // target with a room, no controller yet
	phaseJoined               // both peers present
	phaseEnded
	phaseDelivering // storing a provisioning delivery (provision.go)
	phaseCollecting // a controller collecting deliveries (provision.go)
)

// outQueue is how many frames may wait for a slow client. Pairing exchanges
// a handful of frames; a client that lets this many pile up is not reading.
const outQueue = 16

// closeGrace is how long the relay waits for the client's half of the
// WebSocket closing handshake, so that its last frames are read before the
// TCP connection goes away.
const closeGrace = time.Second

// conn is one client connection. Its reader runs on the HTTP handler's
// goroutine; a writer goroutine owns all writes except control frames.
type conn struct {
	s         *Server
	id        uint64
	addr, key string
	ws        *websocket.Conn

	out        chan []byte
	quit       chan struct{} // closed by end
	readerDone chan struct{}
	writerDone chan struct{}
	endOnce    sync.Once
	endReason  wire.Reason // valid after quit is closed

	lastActive atomic.Int64 // unix nanoseconds of the last data frame

	mu    sync.Mutex
	phase phase
	room  state.RoomID
	side  state.Side
	unsub func()
	timer *time.Timer // deadline of the current phase
	idle  *time.Timer
	sent  int64 // data bytes this peer sent in its session
	coll  *collector
}

func (s *Server) newConn(ws *websocket.Conn, addr, key string) *conn {
	c := &conn{
		s: s, id: s.connSeq.Add(1), addr: addr, key: key, ws: ws,
		out:        make(chan []byte, outQueue),
		quit:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		s.release(key)
		s.m.reject(wire.ReasonShutdown)
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting_down"), time.Now().Add(time.Second))
		ws.Close()
		return nil
	}
	s.conns[c] = struct{}{}
	s.connsWG.Add(1)
	s.mu.Unlock()
	s.m.connections.Add(1)
	s.m.connectionsTotal.Add(1)
	return c
}

// storeTimeout bounds one operation on the state store, which may be a
// network service shared by several relay instances.
const storeTimeout = 5 * time.Second

func (c *conn) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// run serves the connection until it ends, then releases everything it held.
func (c *conn) run() {
	cfg := &c.s.cfg
	c.ws.SetReadLimit(int64(cfg.MaxFrame) + 1) // + the type byte
	c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})
	c.mu.Lock()
	c.timer = time.AfterFunc(cfg.HelloTimeout, func() { c.endIn(phaseHello, wire.ReasonIdle) })
	c.mu.Unlock()
	go c.writer()

	reason := wire.ReasonPeerLeft
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			reason = readErrReason(err)
			break
		}
		c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		if c.ended() {
			// Keep reading until the client answers our close frame.
			continue
		}
		if mt != websocket.BinaryMessage {
			c.end(errorFrame(wire.ReasonBadFrame, 0), wire.ReasonBadFrame)
			continue
		}
		f, err := wire.Parse(data)
		if err != nil || !f.Type.FromClient() {
			c.end(errorFrame(wire.ReasonBadFrame, 0), wire.ReasonBadFrame)
			continue
		}
		c.handle(f)
	}
	close(c.readerDone)
	var final []byte
	if reason == wire.ReasonPingTimeout {
		final = errorFrame(reason, 0)
	}
	c.end(final, reason)
	<-c.writerDone
	c.cleanup()
}

func readErrReason(err error) wire.Reason {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return wire.ReasonFrameTooBig
	case errors.As(err, &ne) && ne.Timeout():
		return wire.ReasonPingTimeout
	}
	return wire.ReasonPeerLeft
}

func (c *conn) writer() {
	defer close(c.writerDone)
	cfg := &c.s.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	write := func(b []byte) error {
		c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
		return c.ws.WriteMessage(websocket.BinaryMessage, b)
	}
	for {
		select {
		case b := <-c.out:
			if err := write(b); err != nil {
				c.end(nil, wire.ReasonPeerLeft)
				c.ws.Close()
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				c.end(nil, wire.ReasonPeerLeft)
				c.ws.Close()
				return
			}
		case <-c.quit:
			for {
				select {
				case b := <-c.out:
					if write(b) == nil {
						continue
					}
				default:
				}
				break
			}
			code := websocket.CloseNormalClosure
			switch c.endReason {
			case wire.ReasonShutdown:
				code = websocket.CloseGoingAway
			case wire.ReasonFrameTooBig:
				code = websocket.CloseMessageTooBig
			}
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, c.endReason.String()), time.Now().Add(cfg.WriteTimeout))
			select {
			case <-c.readerDone:
			case <-time.After(closeGrace):
			}
			c.ws.Close()
			return
		}
	}
}

// end ends the connection once: frame (if any) is the last frame sent, and
// reason is recorded (as a rejection unless it is a normal departure).
func (c *conn) end(frame []byte, reason wire.Reason) {
	c.endOnce.Do(func() {
		c.endReason = reason
		if reason != wire.ReasonNone && reason != wire.ReasonPeerLeft {
			c.s.m.reject(reason)
		}
		if frame != nil {
			select {
			case c.out <- frame:
			default:
			}
		}
		close(c.quit)
	})
}

func (c *conn) ended() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// endIn ends the connection with an error frame if it is still in phase p;
// it is what the phase timers call.
func (c *conn) endIn(p phase, reason wire.Reason) {
	c.mu.Lock()
	cur := c.phase
	c.mu.Unlock()
	if cur == p {
		c.end(errorFrame(reason, 0), reason)
	}
}

func (c *conn) endUnlessJoined(reason wire.Reason) {
	c.mu.Lock()
	cur := c.phase
	c.mu.Unlock()
	// A delivery being stored finishes within one store round trip; cutting
	// it could lose the answer after the token was spent.
	if cur != phaseJoined && cur != phaseDelivering {
		c.end(errorFrame(reason, 0), reason)
	}
}

// enqueue queues a frame for the writer. A full queue means the client is
// not reading: the session ends rather than buffering without bound.
func (c *conn) enqueue(b []byte) {
	select {
	case c.out <- b:
	case <-c.quit:
	default:
		c.end(nil, wire.ReasonSlowPeer)
	}
}

func (c *conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

func (c *conn) handle(f wire.Frame) {
	c.mu.Lock()
	p := c.phase
	c.mu.Unlock()
	switch {
	case f.Type == wire.Create && p == phaseHello:
		c.create()
	case f.Type == wire.Join && p == phaseHello:
		c.join(f.Code)
	case f.Type == wire.Data && p == phaseJoined:
		c.forward(f.Payload)
	case f.Type == wire.Deliver && p == phaseHello:
		c.deliver(f)
	case f.Type == wire.Collect && p == phaseHello:
		c.collect(f)
	case f.Type == wire.Ack && p == phaseCollecting:
		c.ack(f.Count)
	default:
		c.end(errorFrame(wire.ReasonProtocol, 0), wire.ReasonProtocol)
	}
}

// internal ends the connection after a failure of the relay itself. A
// shared store that cannot reach its backend is reported as unavailable,
// so that clients can tell "retry later" from a bug.
func (c *conn) internal(what string, err error) {
	reason := wire.ReasonInternal
	if errors.Is(err, state.ErrUnavailable) {
		reason = wire.ReasonUnavailable
	}
	c.s.log.Error("relay: "+what, "conn", c.id, "err", err)
	c.end(errorFrame(reason, 0), reason)
}

func (c *conn) create() {
	ctx, cancel := c.op()
	defer cancel()
	s := c.s
	if s.draining.Load() {
		c.end(errorFrame(wire.ReasonShutdown, 0), wire.ReasonShutdown)
		return
	}
	ok, retry, err := s.store.Take(ctx, "create|"+c.key, s.cfg.CreateLimit)
	if err != nil {
		c.internal("rate limit", err)
		return
	}
	if !ok {
		s.log.Warn("room creation rate-limited", "conn", c.id, "ip", c.addr)
		c.end(errorFrame(wire.ReasonRateLimited, retry), wire.ReasonRateLimited)
		return
	}
	room, err := newRoomID()
	if err != nil {
		c.internal("create room", err)
		return
	}
	// c.mu is held until Created is queued so that a controller's join
	// (delivered through onEvent) is always seen after it.
	c.mu.Lock()
	defer c.mu.Unlock()
	c.room, c.side = room, state.Target
	unsub, err := s.store.Subscribe(ctx, room, state.Target, c.onEvent)
	if err != nil {
		c.internal("subscribe", err)
		return
	}
	c.unsub = unsub
	code, err := s.store.CreateRoom(ctx, room, s.cfg.RendezvousTTL)
	if err != nil {
		c.internal("create room", err)
		return
	}
	c.phase = phaseWaiting
	s.m.roomsWaiting.Add(1)
	s.m.roomsCreated.Add(1)
	c.timer.Stop()
	c.timer = time.AfterFunc(s.cfg.RendezvousTTL, c.rendezvousOver)
	c.enqueue(wire.Frame{Type: wire.Created, Code: code, Lifetime: s.cfg.RendezvousTTL}.Encode())
	s.log.Info("room created", "conn", c.id, "ip", c.addr, "room", shortRoom(room))
}

// shortRoom abbreviates a room ID for logs.
func shortRoom(r state.RoomID) string {
	if len(r) > 8 {
		return string(r[:8])
	}
	return string(r)
}

// rendezvousOver runs when a waiting room's lifetime is up. A room that a
// controller joined in the meantime is not touched: the rendezvous lifetime
// does not limit the session.
func (c *conn) rendezvousOver() {
	ctx, cancel := c.op()
	defer cancel()
	c.mu.Lock()
	room, p := c.room, c.phase
	c.mu.Unlock()
	if p != phaseWaiting {
		return
	}
	expired, err := c.s.store.ExpireRoom(ctx, room)
	if err != nil {
		c.internal("expire room", err)
		return
	}
	if expired {
		c.s.log.Info("room expired", "conn", c.id, "room", shortRoom(room))
		c.end(errorFrame(wire.ReasonCodeExpired, 0), wire.ReasonCodeExpired)
	}
}

func (c *conn) join(code string) {
	ctx, cancel := c.op()
	defer cancel()
	s := c.s
	if s.draining.Load() {
		c.end(errorFrame(wire.ReasonShutdown, 0), wire.ReasonShutdown)
		return
	}
	// A failure token is taken before the join is tried and given back
	// only if the join succeeds: an address that used up its failures
	// cannot try again, however many joins it sends at once.
	failKey, okKey := "joinfail|"+c.key, "joinok|"+c.key
	ok, retry, err := s.store.Take(ctx, failKey, s.cfg.JoinFailLimit)
	if err != nil {
		c.internal("rate limit", err)
		return
	}
	if !ok {
		s.log.Warn("join rate-limited (failures)", "conn", c.id, "ip", c.addr)
		c.end(errorFrame(wire.ReasonRateLimited, retry), wire.ReasonRateLimited)
		return
	}
	ok, retry, err = s.store.Take(ctx, okKey, s.cfg.JoinOKLimit)
	if err != nil || !ok {
		s.store.Refund(ctx, failKey, s.cfg.JoinFailLimit)
		if err != nil {
			c.internal("rate limit", err)
			return
		}
		s.log.Warn("join rate-limited (successes)", "conn", c.id, "ip", c.addr)
		c.end(errorFrame(wire.ReasonRateLimited, retry), wire.ReasonRateLimited)
		return
	}
	res, err := s.store.JoinRoom(ctx, code)
	for _, b := range res.Burned {
		s.log.Warn("pairing code burned by wrong join attempts", "room", shortRoom(b), "ip", c.addr)
		s.store.Publish(ctx, b, state.Target, state.Event{Kind: state.EventClosed, Reason: wire.ReasonCodeBurned})
	}
	if err != nil {
		s.store.Refund(ctx, okKey, s.cfg.JoinOKLimit)
		s.m.joinsFailed.Add(1)
		reason := state.Reason(err)
		if reason == wire.ReasonInternal || reason == wire.ReasonUnavailable {
			c.internal("join room", err)
			return
		}
		s.log.Info("join failed", "conn", c.id, "ip", c.addr, "reason", reason.String())
		c.end(errorFrame(reason, 0), reason)
		return
	}
	s.store.Refund(ctx, failKey, s.cfg.JoinFailLimit)
	s.m.joinsOK.Add(1)

	c.mu.Lock()
	c.room, c.side = res.Room, state.Controller
	unsub, err := s.store.Subscribe(ctx, res.Room, state.Controller, c.onEvent)
	if err != nil {
		c.mu.Unlock()
		c.internal("subscribe", err)
		return
	}
	c.unsub = unsub
	c.phase = phaseJoined
	s.m.sessions.Add(1)
	// Peer is queued before the target hears of the join, so that nothing
	// the target sends can overtake it.
	c.enqueue(peerFrame)
	c.startSessionLocked()
	c.mu.Unlock()
	s.log.Info("controller joined", "conn", c.id, "ip", c.addr, "room", shortRoom(res.Room))

	delivered, err := s.store.Publish(ctx, res.Room, state.Target, state.Event{Kind: state.EventPeer})
	if err != nil {
		c.internal("publish", err)
		return
	}
	if !delivered {
		c.end(goneFrame(wire.ReasonPeerLeft), wire.ReasonPeerLeft)
	}
}

// startSessionLocked replaces the phase timer by the session's own limits.
func (c *conn) startSessionLocked() {
	cfg := &c.s.cfg
	c.timer.Stop()
	c.timer = time.AfterFunc(cfg.SessionTimeout, func() { c.endIn(phaseJoined, wire.ReasonSessionLimit) })
	c.touch()
	c.idle = time.AfterFunc(cfg.IdleTimeout, c.checkIdle)
}

func (c *conn) checkIdle() {
	idle := c.s.cfg.IdleTimeout
	last := time.Unix(0, c.lastActive.Load())
	if rest := idle - time.Since(last); rest > 0 {
		c.mu.Lock()
		if c.phase == phaseJoined {
			c.idle.Reset(rest)
		}
		c.mu.Unlock()
		return
	}
	c.endIn(phaseJoined, wire.ReasonIdle)
}

func (c *conn) forward(payload []byte) {
	ctx, cancel := c.op()
	defer cancel()
	s := c.s
	c.mu.Lock()
	c.sent += int64(len(payload))
	over := c.sent > s.cfg.MaxSessionBytes && s.cfg.MaxSessionBytes > 0
	room, side := c.room, c.side
	c.mu.Unlock()
	if over {
		s.log.Warn("session byte quota exceeded", "conn", c.id, "ip", c.addr, "room", shortRoom(room))
		c.end(errorFrame(wire.ReasonQuota, 0), wire.ReasonQuota)
		return
	}
	c.touch()
	delivered, err := s.store.Publish(ctx, room, side.Other(), state.Event{Kind: state.EventData, Data: payload})
	if err != nil {
		c.internal("publish", err)
		return
	}
	if !delivered {
		c.end(goneFrame(wire.ReasonPeerLeft), wire.ReasonPeerLeft)
		return
	}
	s.m.messages.Add(1)
	s.m.bytes.Add(uint64(len(payload)))
}

// onEvent receives the room's events. It runs on the publisher's goroutine
// and must not block.
func (c *conn) onEvent(ev state.Event) {
	switch ev.Kind {
	case state.EventPeer:
		c.mu.Lock()
		if c.phase != phaseWaiting {
			c.mu.Unlock()
			return
		}
		c.phase = phaseJoined
		c.s.m.roomsWaiting.Add(-1)
		c.enqueue(peerFrame)
		c.startSessionLocked()
		c.mu.Unlock()
	case state.EventData:
		c.touch()
		b := make([]byte, 1+len(ev.Data))
		b[0] = byte(wire.Data)
		copy(b[1:], ev.Data)
		c.enqueue(b)
	case state.EventPeerGone:
		c.end(goneFrame(ev.Reason), wire.ReasonPeerLeft)
	case state.EventClosed:
		c.end(errorFrame(ev.Reason, 0), ev.Reason)
	}
}

// cleanup runs once both goroutines are done: it tells the peer, frees the
// room and the connection's slots.
func (c *conn) cleanup() {
	ctx, cancel := c.op()
	defer cancel()
	s := c.s
	c.mu.Lock()
	p, room, side, unsub := c.phase, c.room, c.side, c.unsub
	c.phase = phaseEnded
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	c.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	if p == phaseCollecting {
		c.endCollect(ctx)
	}
	switch p {
	case phaseWaiting:
		s.m.roomsWaiting.Add(-1)
		if err := s.store.CloseRoom(ctx, room); err != nil {
			s.log.Error("relay: close room", "room", shortRoom(room), "err", err)
		}
	case phaseJoined:
		if side == state.Controller {
			s.m.sessions.Add(-1)
		}
		if err := s.store.CloseRoom(ctx, room); err != nil {
			s.log.Error("relay: close room", "room", shortRoom(room), "err", err)
		}
		reason := c.endReason
		if reason == wire.ReasonNone {
			reason = wire.ReasonPeerLeft
		}
		s.store.Publish(ctx, room, side.Other(), state.Event{Kind: state.EventPeerGone, Reason: reason})
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.release(c.key)
	s.m.connections.Add(-1)
	s.log.Debug("connection closed", "conn", c.id, "ip", c.addr, "reason", c.endReason.String())
	s.connsWG.Done()
}
