package server

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

// Provisioning (docs/PROVISIONING.md): a target spends a bootstrap token's
// one-time ID and leaves a sealed delivery in a mailbox; its controller,
// online then or later, collects it. The relay checks only what it can see:
// the token's expiry and single use. The delivery is sealed with a secret
// the relay never learns, and a mailbox is addressed by a hash of the key
// that collecting it needs, so neither delivering nor collecting reveals
// enough to collect.

// MaxTokenLifetime is the longest bootstrap token lifetime the relay
// accepts: a delivery is kept at most this long.
const MaxTokenLifetime = 24 * time.Hour

// clockSlack absorbs clock differences between the relay instances, the
// shared store and the devices: a token ID stays spent this much longer
// than the token lives, so that no instance whose clock lags can accept it
// again after the store forgot it.
const clockSlack = 10 * time.Minute

// Store keys and bus rooms of provisioning, apart from the pairing rooms.
func tokenKey(id []byte) string     { return "token|" + hex.EncodeToString(id) }
func mailboxKey(addr []byte) string { return "mailbox|" + hex.EncodeToString(addr) }
func mailboxRoom(addr []byte) state.RoomID {
	return state.RoomID("mailbox|" + hex.EncodeToString(addr))
}

// A stored delivery is the token's expiry (big-endian Unix milliseconds),
// then the sealed delivery: the expiry is what lets an unacknowledged
// delivery go back into its mailbox for the rest of its lifetime.
func deliveryRecord(expires time.Time, sealed []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(expires.UnixMilli())), sealed...)
}

func parseRecord(rec []byte) (time.Time, []byte, bool) {
	if len(rec) <= 8 || len(rec) > 8+wire.MaxDelivery {
		return time.Time{}, nil, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(rec))), rec[8:], true
}

// deliver stores a target's sealed delivery, once per token ID.
func (c *conn) deliver(f wire.Frame) {
	s := c.s
	c.mu.Lock()
	c.phase = phaseDelivering
	c.timer.Stop()
	c.mu.Unlock()
	if s.draining.Load() {
		c.end(errorFrame(wire.ReasonShutdown, 0), wire.ReasonShutdown)
		return
	}
	ctx, cancel := c.op()
	defer cancel()
	ok, retry, err := s.store.Take(ctx, "deliver|"+c.key, s.cfg.DeliverLimit)
	if err != nil {
		c.internal("rate limit", err)
		return
	}
	if !ok {
		s.log.Warn("delivery rate-limited", "conn", c.id, "ip", c.addr)
		c.end(errorFrame(wire.ReasonRateLimited, retry), wire.ReasonRateLimited)
		return
	}
	ttl := time.Until(f.Expires)
	switch {
	case ttl <= 0:
		s.m.deliveries(wire.ReasonTokenExpired)
		s.log.Info("delivery refused", "conn", c.id, "ip", c.addr, "reason", wire.ReasonTokenExpired.String())
		c.end(errorFrame(wire.ReasonTokenExpired, 0), wire.ReasonTokenExpired)
		return
	case ttl > MaxTokenLifetime+clockSlack:
		s.log.Info("delivery refused: token lifetime over 24 h", "conn", c.id, "ip", c.addr)
		c.end(errorFrame(wire.ReasonProtocol, 0), wire.ReasonProtocol)
		return
	}
	// The ID is spent before the delivery is stored: the other order would
	// let a second holder of the token add its own delivery to the mailbox
	// before learning that the token was used.
	first, err := s.store.UseOnce(ctx, tokenKey(f.TokenID), ttl+clockSlack)
	if err != nil {
		c.internal("use token", err)
		return
	}
	if !first {
		s.m.deliveries(wire.ReasonTokenUsed)
		s.log.Warn("delivery refused: bootstrap token already used", "conn", c.id, "ip", c.addr)
		c.end(errorFrame(wire.ReasonTokenUsed, 0), wire.ReasonTokenUsed)
		return
	}
	if err := s.store.PutDelivery(ctx, mailboxKey(f.Mailbox), deliveryRecord(f.Expires, f.Payload), ttl); err != nil {
		if errors.Is(err, state.ErrTooMany) {
			s.m.deliveries(wire.ReasonMailboxFull)
			c.end(errorFrame(wire.ReasonMailboxFull, 0), wire.ReasonMailboxFull)
			return
		}
		c.internal("store delivery", err)
		return
	}
	// Wake a controller that is waiting, on whatever instance; nobody
	// listening is the normal case of an offline controller.
	s.store.Publish(ctx, mailboxRoom(f.Mailbox), state.Controller, state.Event{Kind: state.EventData})
	s.m.deliveries(wire.ReasonNone)
	s.log.Info("delivery stored", "conn", c.id, "ip", c.addr, "expires", f.Expires.UTC().Format(time.RFC3339))
	c.enqueue(wire.Frame{Type: wire.Accepted}.Encode())
	c.end(nil, wire.ReasonNone)
}

// collector is the state of a collecting connection.
type collector struct {
	boxes [][wire.MailboxLen]byte // mailbox addresses
	wait  bool
	kick  chan struct{} // a notified mailbox or the poll timer
	done  chan struct{} // closed when loop returns

	mu       sync.Mutex
	notified map[int]bool // boxes to look into
	unacked  []sentMail   // sent and not yet acknowledged, in order
	sent     uint32       // Mail frames sent on this connection
	batches  int          // Batch frames sent
	unsubs   []func()
}

type sentMail struct {
	box int
	rec []byte
}

// collect starts serving a controller's Collect frame.
func (c *conn) collect(f wire.Frame) {
	s := c.s
	ctx, cancel := c.op()
	defer cancel()
	if s.draining.Load() {
		c.end(errorFrame(wire.ReasonShutdown, 0), wire.ReasonShutdown)
		return
	}
	ok, retry, err := s.store.Take(ctx, "collect|"+c.key, s.cfg.CollectLimit)
	if err != nil {
		c.internal("rate limit", err)
		return
	}
	if !ok {
		s.log.Warn("collect rate-limited", "conn", c.id, "ip", c.addr)
		c.end(errorFrame(wire.ReasonRateLimited, retry), wire.ReasonRateLimited)
		return
	}
	co := &collector{wait: f.Wait, kick: make(chan struct{}, 1), done: make(chan struct{}), notified: map[int]bool{}}
	seen := map[[wire.MailboxLen]byte]bool{}
	for _, k := range f.Keys {
		addr := wire.MailboxAddress(k)
		if !seen[addr] {
			seen[addr] = true
			co.notified[len(co.boxes)] = true
			co.boxes = append(co.boxes, addr)
		}
	}
	if co.wait {
		// Subscribed before the first look, so that a delivery stored in
		// between is announced rather than missed.
		for i, addr := range co.boxes {
			unsub, err := s.store.Subscribe(ctx, mailboxRoom(addr[:]), state.Controller, func(state.Event) { co.notify(i) })
			if errors.Is(err, state.ErrUnavailable) {
				co.unsubscribe()
				c.internal("subscribe to mailbox", err)
				return
			}
			if err != nil {
				// Another collector of this mailbox holds the
				// subscription here; the periodic look covers it.
				continue
			}
			co.unsubs = append(co.unsubs, unsub)
		}
	}
	c.mu.Lock()
	c.phase = phaseCollecting
	c.coll = co
	c.timer.Stop()
	c.timer = time.AfterFunc(s.cfg.SessionTimeout, func() { c.endIn(phaseCollecting, wire.ReasonSessionLimit) })
	c.mu.Unlock()
	if co.wait {
		s.m.collectors.Add(1)
	}
	s.log.Info("collecting deliveries", "conn", c.id, "ip", c.addr, "mailboxes", len(co.boxes), "wait", co.wait)
	// Non-blocking: a notification may have filled the channel already,
	// and every mailbox is marked for the first look anyway.
	select {
	case co.kick <- struct{}{}:
	default:
	}
	go c.collectLoop(co)
}

func (co *collector) notify(i int) {
	co.mu.Lock()
	co.notified[i] = true
	co.mu.Unlock()
	select {
	case co.kick <- struct{}{}:
	default:
	}
}

func (co *collector) unsubscribe() {
	co.mu.Lock()
	unsubs := co.unsubs
	co.unsubs = nil
	co.mu.Unlock()
	for _, u := range unsubs {
		u()
	}
}

// collectLoop sends what the notified mailboxes hold, then a Batch frame,
// each time it is kicked; waiting collectors also look into every mailbox
// now and then, which covers notifications lost while the store was
// unreachable.
func (c *conn) collectLoop(co *collector) {
	defer close(co.done)
	poll := time.NewTicker(c.s.cfg.CollectPoll)
	defer poll.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-poll.C:
			if !co.wait {
				continue
			}
			co.mu.Lock()
			for i := range co.boxes {
				co.notified[i] = true
			}
			co.mu.Unlock()
		case <-co.kick:
		}
		if !c.sendMail(co) {
			return
		}
	}
}

// sendMail takes the notified mailboxes' deliveries and sends them. It
// reports false when the connection ended.
func (c *conn) sendMail(co *collector) bool {
	s := c.s
	co.mu.Lock()
	var boxes []int
	for i := range co.notified {
		boxes = append(boxes, i)
	}
	clear(co.notified)
	co.mu.Unlock()
	ctx, cancel := c.op()
	defer cancel()
	for _, i := range boxes {
		recs, err := s.store.TakeDeliveries(ctx, mailboxKey(co.boxes[i][:]))
		if err != nil {
			c.internal("take deliveries", err)
			return false
		}
		for _, rec := range recs {
			_, sealed, ok := parseRecord(rec)
			if !ok {
				s.log.Error("relay: dropped a malformed stored delivery", "conn", c.id)
				continue
			}
			// Recorded as unacknowledged before it is sent, so that it
			// goes back into the mailbox if the connection ends first.
			co.mu.Lock()
			co.unacked = append(co.unacked, sentMail{box: i, rec: rec})
			co.sent++
			co.mu.Unlock()
			b := wire.Frame{Type: wire.Mail, Mailbox: co.boxes[i][:], Payload: sealed}.Encode()
			if !c.enqueueWait(b) {
				return false
			}
			s.m.mailSent.Add(1)
		}
	}
	if !c.enqueueWait(wire.Frame{Type: wire.Batch}.Encode()) {
		return false
	}
	co.mu.Lock()
	co.batches++
	co.mu.Unlock()
	return true
}

// enqueueWait queues a frame, waiting for room rather than treating a full
// queue as a slow peer: a batch of deliveries may exceed the queue.
func (c *conn) enqueueWait(b []byte) bool {
	select {
	case c.out <- b:
		return true
	case <-c.quit:
		return false
	}
}

// ack forgets the first n Mail frames of the connection. A one-shot collect
// ends once everything sent is acknowledged.
func (c *conn) ack(n uint32) {
	c.mu.Lock()
	co := c.coll
	c.mu.Unlock()
	co.mu.Lock()
	acked := co.sent - uint32(len(co.unacked))
	if n < acked || n > co.sent {
		co.mu.Unlock()
		c.end(errorFrame(wire.ReasonProtocol, 0), wire.ReasonProtocol)
		return
	}
	co.unacked = co.unacked[n-acked:]
	finished := !co.wait && co.batches > 0 && len(co.unacked) == 0
	co.mu.Unlock()
	if finished {
		c.end(nil, wire.ReasonNone)
	}
}

// endCollect runs in cleanup: it stops the loop and puts every delivery
// that was sent but not acknowledged back into its mailbox, for the rest of
// its lifetime.
func (c *conn) endCollect(ctx context.Context) {
	s := c.s
	c.mu.Lock()
	co := c.coll
	c.mu.Unlock()
	co.unsubscribe()
	<-co.done
	if co.wait {
		s.m.collectors.Add(-1)
	}
	co.mu.Lock()
	back := co.unacked
	co.unacked = nil
	co.mu.Unlock()
	for _, m := range back {
		exp, _, _ := parseRecord(m.rec)
		ttl := time.Until(exp)
		if ttl <= 0 {
			continue
		}
		addr := co.boxes[m.box][:]
		if err := s.store.PutDelivery(ctx, mailboxKey(addr), m.rec, ttl); err != nil {
			s.log.Error("relay: could not return an unacknowledged delivery to its mailbox", "conn", c.id, "err", err)
			continue
		}
		s.store.Publish(ctx, mailboxRoom(addr), state.Controller, state.Event{Kind: state.EventData})
	}
	if len(back) > 0 {
		s.log.Info("unacknowledged deliveries returned to their mailboxes", "conn", c.id, "count", len(back))
	}
}
