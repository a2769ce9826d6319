package state

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/amesh-go/amesh/relay/wire"
)

// Memory is the in-process Store of a relay that runs alone.
type Memory struct {
	opts Options
	now  func() time.Time

	mu         sync.Mutex
	rooms      map[RoomID]*memRoom
	codes      map[string]*memRoom     // live (waiting or joined) rooms by code
	buckets    map[string][]*memRoom   // waiting rooms by bucket
	tombstones map[string]tombstone    // codes of ended rooms
	limits     map[string]*tokenBucket // rate limits
	once       map[string]time.Time
	boxes      map[string][]delivery
	subs       map[subKey]*subscription
	lastSweep  time.Time
}

type roomState uint8

const (
	waiting roomState = iota
	joined
)

type memRoom struct {
	id       RoomID
	code     string
	state    roomState
	deadline time.Time // end of the rendezvous
	wrong    int
}

type tombstone struct {
	err     error
	expires time.Time
}

type tokenBucket struct {
	tokens float64
	last   time.Time
	lim    Limit
}

type delivery struct {
	data    []byte
	expires time.Time
}

// subscription is a pointer so that an unsubscribe removes only its own
// subscription, never a later one for the same key.
type subscription struct{ fn func(Event) }

type subKey struct {
	room RoomID
	side Side
}

// NewMemory returns an empty in-memory store. now supplies the time (nil
// means time.Now); tests pass a fake clock.
func NewMemory(opts Options, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		opts:       opts.WithDefaults(),
		now:        now,
		rooms:      map[RoomID]*memRoom{},
		codes:      map[string]*memRoom{},
		buckets:    map[string][]*memRoom{},
		tombstones: map[string]tombstone{},
		limits:     map[string]*tokenBucket{},
		once:       map[string]time.Time{},
		boxes:      map[string][]delivery{},
		subs:       map[subKey]*subscription{},
	}
}

var _ Store = (*Memory)(nil)

// sweepEvery bounds how often expired entries are dropped. Sweeping inside
// the operations (rather than from a goroutine) keeps Memory free of
// background work and its memory bounded by the recent request rate.
const sweepEvery = 5 * time.Second

func (m *Memory) sweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < sweepEvery {
		return
	}
	m.lastSweep = now
	for code, t := range m.tombstones {
		if !now.Before(t.expires) {
			delete(m.tombstones, code)
		}
	}
	for _, r := range m.rooms {
		if r.state == waiting && !now.Before(r.deadline) {
			// The target's own timer normally expires the room; this
			// covers a target whose expiry never ran.
			m.endLocked(r, ErrCodeExpired, now)
		}
	}
	for k, b := range m.limits {
		b.refill(now)
		if b.tokens >= float64(b.lim.Burst) {
			delete(m.limits, k)
		}
	}
	for id, exp := range m.once {
		if !now.Before(exp) {
			delete(m.once, id)
		}
	}
	for box, ds := range m.boxes {
		if ds = liveDeliveries(ds, now); len(ds) == 0 {
			delete(m.boxes, box)
		} else {
			m.boxes[box] = ds
		}
	}
}

// randomCode draws a uniform six-digit code.
func randomCode() (string, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("state: random code: %w", err)
		}
		v := binary.BigEndian.Uint64(b[:])
		// Rejection sampling: drop the top partial range so that every
		// code is equally likely.
		const n = 1_000_000
		if v >= math.MaxUint64-math.MaxUint64%n {
			continue
		}
		return fmt.Sprintf("%06d", v%n), nil
	}
}

// CreateRoom implements Store.
func (m *Memory) CreateRoom(_ context.Context, id RoomID, ttl time.Duration) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	if _, ok := m.rooms[id]; ok {
		return "", fmt.Errorf("state: create room: %w", ErrRoomExists)
	}
	for range 64 {
		code, err := randomCode()
		if err != nil {
			return "", err
		}
		if _, live := m.codes[code]; live {
			continue
		}
		if t, dead := m.tombstones[code]; dead && now.Before(t.expires) {
			continue
		}
		r := &memRoom{id: id, code: code, deadline: now.Add(ttl)}
		m.rooms[id] = r
		m.codes[code] = r
		b := wire.Bucket(code)
		m.buckets[b] = append(m.buckets[b], r)
		return code, nil
	}
	return "", fmt.Errorf("state: create room: %w", ErrNoFreeCode)
}

// endLocked removes r and leaves a tombstone that answers later joins with
// err.
func (m *Memory) endLocked(r *memRoom, err error, now time.Time) {
	delete(m.rooms, r.id)
	delete(m.codes, r.code)
	m.unbucketLocked(r)
	m.tombstones[r.code] = tombstone{err: err, expires: now.Add(m.opts.TombstoneTTL)}
}

func (m *Memory) unbucketLocked(r *memRoom) {
	b := wire.Bucket(r.code)
	rs := m.buckets[b]
	for i, x := range rs {
		if x == r {
			rs = append(rs[:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(m.buckets, b)
	} else {
		m.buckets[b] = rs
	}
}

// JoinRoom implements Store.
func (m *Memory) JoinRoom(_ context.Context, code string) (JoinResult, error) {
	if !wire.ValidCode(code) {
		return JoinResult{}, fmt.Errorf("state: join: %w", ErrUnknownCode)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	r, ok := m.codes[code]
	if ok && r.state == waiting && now.Before(r.deadline) {
		r.state = joined
		m.unbucketLocked(r)
		return JoinResult{Room: r.id}, nil
	}
	var err error
	switch {
	case ok && r.state == joined:
		err = ErrCodeUsed
	case ok: // waiting, past its deadline
		m.endLocked(r, ErrCodeExpired, now)
		err = ErrCodeExpired
	default:
		if t, dead := m.tombstones[code]; dead && now.Before(t.expires) {
			err = t.err
		} else {
			err = ErrUnknownCode
		}
	}
	// Every failed join is a wrong guess against each live code of the
	// bucket: that is what makes the attempt limit bite even though a
	// wrong code does not name the room it was aimed at.
	var res JoinResult
	for _, w := range append([]*memRoom(nil), m.buckets[wire.Bucket(code)]...) {
		if w.state != waiting {
			continue
		}
		w.wrong++
		if w.wrong >= m.opts.MaxWrongJoins {
			m.endLocked(w, ErrCodeBurned, now)
			res.Burned = append(res.Burned, w.id)
		}
	}
	return res, fmt.Errorf("state: join: %w", err)
}

// ExpireRoom implements Store.
func (m *Memory) ExpireRoom(_ context.Context, id RoomID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[id]
	if !ok || r.state != waiting {
		return false, nil
	}
	m.endLocked(r, ErrCodeExpired, m.now())
	return true, nil
}

// CloseRoom implements Store.
func (m *Memory) CloseRoom(_ context.Context, id RoomID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[id]
	if !ok {
		return nil
	}
	err := ErrCodeUsed
	if r.state == waiting {
		err = ErrCodeClosed
	}
	m.endLocked(r, err, m.now())
	return nil
}

func (b *tokenBucket) refill(now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		rate := float64(b.lim.Burst) / float64(b.lim.Per)
		b.tokens = math.Min(float64(b.lim.Burst), b.tokens+rate*float64(el))
		b.last = now
	}
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string, lim Limit) (bool, time.Duration, error) {
	if lim.Unlimited() {
		return true, 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	b, ok := m.limits[key]
	if !ok || b.lim != lim {
		b = &tokenBucket{tokens: float64(lim.Burst), last: now, lim: lim}
		m.limits[key] = b
	}
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, nil
	}
	rate := float64(lim.Burst) / float64(lim.Per)
	wait := time.Duration(math.Ceil((1 - b.tokens) / rate))
	return false, wait, nil
}

// Refund implements Store.
func (m *Memory) Refund(_ context.Context, key string, lim Limit) error {
	if lim.Unlimited() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.limits[key]; ok {
		b.refill(m.now())
		b.tokens = math.Min(float64(lim.Burst), b.tokens+1)
	}
	return nil
}

// UseOnce implements Store.
func (m *Memory) UseOnce(_ context.Context, id string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	if exp, ok := m.once[id]; ok && now.Before(exp) {
		return false, nil
	}
	m.once[id] = now.Add(ttl)
	return true, nil
}

func liveDeliveries(ds []delivery, now time.Time) []delivery {
	out := ds[:0]
	for _, d := range ds {
		if now.Before(d.expires) {
			out = append(out, d)
		}
	}
	return out
}

// PutDelivery implements Store.
func (m *Memory) PutDelivery(_ context.Context, box string, data []byte, ttl time.Duration) error {
	if len(data) > m.opts.MaxDeliveryBytes {
		return fmt.Errorf("state: delivery of %d bytes, limit %d: %w", len(data), m.opts.MaxDeliveryBytes, ErrTooMany)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	ds := liveDeliveries(m.boxes[box], now)
	if len(ds) >= m.opts.MaxDeliveries {
		return fmt.Errorf("state: delivery box holds %d: %w", len(ds), ErrTooMany)
	}
	m.boxes[box] = append(ds, delivery{data: append([]byte(nil), data...), expires: now.Add(ttl)})
	return nil
}

// TakeDeliveries implements Store.
func (m *Memory) TakeDeliveries(_ context.Context, box string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ds := liveDeliveries(m.boxes[box], m.now())
	delete(m.boxes, box)
	out := make([][]byte, len(ds))
	for i, d := range ds {
		out[i] = d.data
	}
	return out, nil
}

// Subscribe implements Store.
func (m *Memory) Subscribe(_ context.Context, room RoomID, side Side, fn func(Event)) (func(), error) {
	k := subKey{room, side}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[k]; ok {
		return nil, fmt.Errorf("state: subscribe %s of room: already subscribed", side)
	}
	sub := &subscription{fn: fn}
	m.subs[k] = sub
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.subs[k] == sub {
			delete(m.subs, k)
		}
	}, nil
}

// Publish implements Store.
func (m *Memory) Publish(_ context.Context, room RoomID, to Side, ev Event) (bool, error) {
	m.mu.Lock()
	sub, ok := m.subs[subKey{room, to}]
	m.mu.Unlock()
	if !ok {
		return false, nil
	}
	sub.fn(ev)
	return true, nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
