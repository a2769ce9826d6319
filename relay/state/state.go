// Package state holds everything amesh-relay remembers between frames: rooms
// and their pairing codes, wrong join attempts, per-IP rate limits, one-time
// IDs, stored deliveries, and the bus that carries frames between the two
// peers of a room.
//
// The server talks to it only through the Store interface. Memory is the
// implementation for a relay that runs alone; a shared implementation (Redis)
// lets several relay instances behind a load balancer serve the same rooms,
// with peers on different instances, without changing the server. Package
// statetest holds the conformance tests every implementation must pass.
package state

import (
	"context"
	"errors"
	"time"

	"github.com/amesh-go/amesh/relay/wire"
)

// RoomID names a room. The server makes it up (random, unguessable) before
// the room exists, so that it can subscribe to the room's events before any
// peer can join.
type RoomID string

// Side is one of the two peers of a room.
type Side uint8

const (
	// Target is the peer that created the room and shows the pairing code.
	Target Side = 1
	// Controller is the peer that joined with the code.
	Controller Side = 2
)

// Other returns the opposite side.
func (s Side) Other() Side {
	if s == Target {
		return Controller
	}
	return Target
}

// String returns "target" or "controller".
func (s Side) String() string {
	switch s {
	case Target:
		return "target"
	case Controller:
		return "controller"
	}
	return "side(?)"
}

// Errors of JoinRoom. A join with a code that matches no room is
// ErrUnknownCode; the others say what happened to the room of an exact code
// that is no longer waiting.
var (
	ErrUnknownCode = errors.New("no room has this pairing code")
	ErrCodeBurned  = errors.New("pairing code burned by too many wrong join attempts")
	ErrCodeExpired = errors.New("pairing code expired")
	ErrCodeUsed    = errors.New("pairing code already used")
	ErrCodeClosed  = errors.New("the target stopped waiting on this pairing code")
	// ErrNoFreeCode means no unused code could be found: far too many rooms.
	ErrNoFreeCode = errors.New("no free pairing code")
	// ErrRoomExists means CreateRoom was called twice with one RoomID.
	ErrRoomExists = errors.New("room already exists")
	// ErrTooMany means a delivery box is full.
	ErrTooMany = errors.New("too many stored deliveries")
	// ErrUnavailable is wrapped by the errors of a shared store that
	// cannot reach its backend (Redis down or unreachable): the relay
	// reports wire.ReasonUnavailable, and the operation may succeed later.
	ErrUnavailable = errors.New("relay state store unavailable")
)

// Reason maps a JoinRoom error (or a store failure) to the wire reason
// sent to the client.
func Reason(err error) wire.Reason {
	switch {
	case errors.Is(err, ErrUnknownCode):
		return wire.ReasonUnknownCode
	case errors.Is(err, ErrCodeBurned):
		return wire.ReasonCodeBurned
	case errors.Is(err, ErrCodeExpired):
		return wire.ReasonCodeExpired
	case errors.Is(err, ErrCodeUsed):
		return wire.ReasonCodeUsed
	case errors.Is(err, ErrCodeClosed):
		return wire.ReasonCodeClosed
	case errors.Is(err, ErrUnavailable):
		return wire.ReasonUnavailable
	}
	return wire.ReasonInternal
}

// Limit is a token bucket: Burst requests at once, refilled evenly over Per.
// A zero Burst means no limit.
type Limit struct {
	Burst int
	Per   time.Duration
}

// Unlimited reports whether l imposes no limit.
func (l Limit) Unlimited() bool { return l.Burst <= 0 || l.Per <= 0 }

// EventKind says what an Event carries.
type EventKind uint8

const (
	// EventPeer: the room now has both peers.
	EventPeer EventKind = iota + 1
	// EventData: Data is a frame payload from the other peer.
	EventData
	// EventPeerGone: the other peer left; Reason says why.
	EventPeerGone
	// EventClosed: the room ended for a reason of its own (burned,
	// expired); Reason says which.
	EventClosed
)

// Event is what Publish delivers to a subscriber.
type Event struct {
	Kind   EventKind
	Reason wire.Reason
	Data   []byte
}

// JoinResult is the outcome of JoinRoom.
type JoinResult struct {
	// Room is the joined room, on success.
	Room RoomID
	// Burned lists the waiting rooms that this failed join burned; the server
	// tells their targets (EventClosed with wire.ReasonCodeBurned).
	Burned []RoomID
}

// Options configure a Store.
type Options struct {
	// MaxWrongJoins burns a waiting room after this many failed joins in its
	// code's bucket (default 5).
	MaxWrongJoins int
	// TombstoneTTL is how long the code of an ended room stays reserved, so
	// that a late join gets "expired", "burned" or "used" rather than
	// "unknown", and no other room gets the code (default 2 minutes).
	TombstoneTTL time.Duration
	// MaxDeliveries bounds the deliveries stored per box (default 64).
	MaxDeliveries int
	// MaxDeliveryBytes bounds one delivery (default 8 KiB).
	MaxDeliveryBytes int
}

// WithDefaults fills in zero fields.
func (o Options) WithDefaults() Options {
	if o.MaxWrongJoins <= 0 {
		o.MaxWrongJoins = 5
	}
	if o.TombstoneTTL <= 0 {
		o.TombstoneTTL = 2 * time.Minute
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = 64
	}
	if o.MaxDeliveryBytes <= 0 {
		o.MaxDeliveryBytes = 8 << 10
	}
	return o
}

// Store is the relay's shared state. Every method is safe for concurrent use
// and atomic: two instances racing on one room see one winner.
type Store interface {
	// CreateRoom registers a waiting room under a fresh random pairing code
	// and returns the code. The room waits at most ttl for a controller.
	CreateRoom(ctx context.Context, room RoomID, ttl time.Duration) (code string, err error)
	// JoinRoom moves the waiting room of code to joined. A failed join
	// counts as a wrong attempt against every waiting room whose code shares
	// code's bucket (wire.Bucket); a room that reaches MaxWrongJoins is
	// burned and reported in JoinResult.Burned, also on error.
	JoinRoom(ctx context.Context, code string) (JoinResult, error)
	// ExpireRoom ends room if it is still waiting (its rendezvous lifetime
	// is over) and reports whether it did; a room that was joined meanwhile
	// is left alone.
	ExpireRoom(ctx context.Context, room RoomID) (bool, error)
	// CloseRoom forgets room, whatever its state. Its code stays reserved
	// for the tombstone TTL. Closing an unknown room is not an error.
	CloseRoom(ctx context.Context, room RoomID) error

	// Take takes one token from the bucket key. When none is left it
	// returns false and how long until one is.
	Take(ctx context.Context, key string, lim Limit) (ok bool, retryAfter time.Duration, err error)
	// Refund gives back a token taken by Take (never above the burst).
	Refund(ctx context.Context, key string, lim Limit) error

	// UseOnce records id as used for ttl and reports whether this was its
	// first use (bootstrap tokens are single use across all instances).
	UseOnce(ctx context.Context, id string, ttl time.Duration) (bool, error)
	// PutDelivery stores data in box for ttl, for a recipient that is not
	// online yet.
	PutDelivery(ctx context.Context, box string, data []byte, ttl time.Duration) error
	// TakeDeliveries removes and returns the unexpired deliveries of box,
	// oldest first.
	TakeDeliveries(ctx context.Context, box string) ([][]byte, error)

	// Subscribe calls fn for every event published to (room, side) until
	// the returned function is called. Every event published after
	// Subscribe returns is delivered, and the events of one publisher
	// arrive in the order they were published (the server relies on both).
	// A side has at most one subscriber. fn must not block.
	Subscribe(ctx context.Context, room RoomID, side Side, fn func(Event)) (unsubscribe func(), err error)
	// Publish delivers ev to the subscriber of (room, to) and reports whether
	// there was one; no subscriber means that peer has left.
	Publish(ctx context.Context, room RoomID, to Side, ev Event) (delivered bool, err error)

	// Close releases the store's resources.
	Close() error
}
