package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/state/statetest"
)

func TestMemoryConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T, opts state.Options) state.Store {
		s := state.NewMemory(opts, nil)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestMemoryShared(t *testing.T) {
	// One process, one store: the shared suite holds trivially, and keeps
	// the memory store honest about what a shared one must do.
	statetest.RunShared(t, func(t *testing.T, opts state.Options) (state.Store, state.Store) {
		s := state.NewMemory(opts, nil)
		t.Cleanup(func() { s.Close() })
		return s, s
	})
}

// fakeClock lets the sweep be tested without waiting for it.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestMemorySweepBoundsState(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := state.NewMemory(state.Options{TombstoneTTL: time.Minute}, clk.now)
	lim := state.Limit{Burst: 2, Per: time.Second}
	for i := range 100 {
		id := state.RoomID(rune('a'+i%26)) + state.RoomID(rune('0'+i/26))
		if _, err := s.CreateRoom(ctx, id, time.Second); err != nil {
			t.Fatal(err)
		}
		s.Take(ctx, string(id), lim)
		s.UseOnce(ctx, string(id), time.Second)
	}
	// Any operation past the sweep interval drops what has expired: first
	// the rooms (which leave tombstones), then, a tombstone TTL later, the
	// tombstones.
	for range 2 {
		clk.t = clk.t.Add(2 * time.Minute)
		s.Take(ctx, "trigger", lim)
	}
	if n := state.MemorySize(s); n > 2 {
		t.Fatalf("%d entries left after everything expired", n)
	}
}

func TestMemoryExpiredRoomNotJoinable(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := state.NewMemory(state.Options{}, clk.now)
	code, err := s.CreateRoom(ctx, "r", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(60 * time.Second)
	if _, err := s.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeExpired) {
		t.Fatalf("join at the deadline: %v, want ErrCodeExpired", err)
	}
}
