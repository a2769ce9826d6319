// Package statetest is the conformance suite of state.Store. Every
// implementation (memory now, Redis later) runs it, so that the relay server
// behaves the same whichever store it is given.
//
// The suite uses the real clock with short lifetimes, because a shared store
// (Redis) keeps time itself.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

// NewStore returns a fresh, empty store with opts for one subtest.
type NewStore func(t *testing.T, opts state.Options) state.Store

var roomSeq atomic.Int64

// newRoomID returns an ID unique within the test process.
func newRoomID(t *testing.T) state.RoomID {
	return state.RoomID(fmt.Sprintf("room-%s-%d", t.Name(), roomSeq.Add(1)))
}

// otherInBucket returns a code of the same bucket as code but different.
func otherInBucket(code string, i int) string {
	for {
		c := fmt.Sprintf("%s%03d", wire.Bucket(code), i%1000)
		if c != code {
			return c
		}
		i++
	}
}

// Run runs the whole suite.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	opts := state.Options{MaxWrongJoins: 5, TombstoneTTL: time.Second}

	t.Run("CreateJoin", func(t *testing.T) {
		s := newStore(t, opts)
		id := newRoomID(t)
		code, err := s.CreateRoom(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !wire.ValidCode(code) {
			t.Fatalf("code %q is not six digits", code)
		}
		res, err := s.JoinRoom(ctx, code)
		if err != nil || res.Room != id {
			t.Fatalf("JoinRoom = %+v, %v; want room %s", res, err, id)
		}
		if _, err := s.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeUsed) {
			t.Fatalf("second join: %v, want ErrCodeUsed", err)
		}
		if _, err := s.CreateRoom(ctx, id, time.Minute); !errors.Is(err, state.ErrRoomExists) {
			t.Fatalf("CreateRoom with a used ID: %v, want ErrRoomExists", err)
		}
		if err := s.CloseRoom(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeUsed) {
			t.Fatalf("join after close: %v, want ErrCodeUsed (tombstone)", err)
		}
		if err := s.CloseRoom(ctx, id); err != nil {
			t.Fatalf("closing twice: %v", err)
		}
	})

	t.Run("CodesAreDistinct", func(t *testing.T) {
		s := newStore(t, opts)
		seen := map[string]bool{}
		for range 200 {
			code, err := s.CreateRoom(ctx, newRoomID(t), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if seen[code] {
				t.Fatalf("code %s handed out twice", code)
			}
			seen[code] = true
		}
	})

	t.Run("UnknownAndMalformedCodes", func(t *testing.T) {
		s := newStore(t, opts)
		for _, c := range []string{"", "12345", "1234567", "12a456", "000000"} {
			if _, err := s.JoinRoom(ctx, c); !errors.Is(err, state.ErrUnknownCode) {
				t.Errorf("JoinRoom(%q) = %v, want ErrUnknownCode", c, err)
			}
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s := newStore(t, opts)
		// A room nobody expires explicitly still cannot be joined late.
		lazy, err := s.CreateRoom(ctx, newRoomID(t), 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		id := newRoomID(t)
		code, err := s.CreateRoom(ctx, id, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond)
		if _, err := s.JoinRoom(ctx, lazy); !errors.Is(err, state.ErrCodeExpired) {
			t.Fatalf("late join: %v, want ErrCodeExpired", err)
		}
		ok, err := s.ExpireRoom(ctx, id)
		if err != nil || !ok {
			t.Fatalf("ExpireRoom = %v, %v; want true", ok, err)
		}
		if _, err := s.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeExpired) {
			t.Fatalf("join after expiry: %v, want ErrCodeExpired", err)
		}
		// A joined room is not expired by the rendezvous timer.
		id2 := newRoomID(t)
		code2, err := s.CreateRoom(ctx, id2, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinRoom(ctx, code2); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.ExpireRoom(ctx, id2); err != nil || ok {
			t.Fatalf("ExpireRoom of a joined room = %v, %v; want false", ok, err)
		}
	})

	t.Run("ClosedWhileWaiting", func(t *testing.T) {
		s := newStore(t, opts)
		id := newRoomID(t)
		code, err := s.CreateRoom(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CloseRoom(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeClosed) {
			t.Fatalf("join after the target left: %v, want ErrCodeClosed", err)
		}
	})

	t.Run("WrongJoinsBurn", func(t *testing.T) {
		s := newStore(t, opts)
		id := newRoomID(t)
		code, err := s.CreateRoom(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i := range opts.MaxWrongJoins {
			res, err := s.JoinRoom(ctx, otherInBucket(code, i))
			if err == nil {
				t.Fatalf("wrong join %d succeeded", i+1)
			}
			last := i == opts.MaxWrongJoins-1
			if burned := len(res.Burned) == 1 && res.Burned[0] == id; burned != last {
				t.Fatalf("after wrong join %d: burned %v", i+1, res.Burned)
			}
		}
		if _, err := s.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeBurned) {
			t.Fatalf("right code after %d wrong joins: %v, want ErrCodeBurned", opts.MaxWrongJoins, err)
		}
	})

	t.Run("WrongJoinsElsewhereDoNotBurn", func(t *testing.T) {
		s := newStore(t, opts)
		id := newRoomID(t)
		code, err := s.CreateRoom(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Codes of other buckets are not guesses at this room.
		other := fmt.Sprintf("%03d000", (int(code[0]-'0')*100+int(code[1]-'0')*10+int(code[2]-'0')+1)%1000)
		for range opts.MaxWrongJoins * 2 {
			if res, _ := s.JoinRoom(ctx, other); len(res.Burned) != 0 {
				t.Fatalf("a join in another bucket burned %v", res.Burned)
			}
		}
		if _, err := s.JoinRoom(ctx, code); err != nil {
			t.Fatalf("join: %v", err)
		}
	})

	t.Run("ConcurrentJoinOneWinner", func(t *testing.T) {
		s := newStore(t, opts)
		code, err := s.CreateRoom(ctx, newRoomID(t), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := s.JoinRoom(ctx, code); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d joins won, want exactly 1", wins.Load())
		}
	})

	t.Run("RateLimit", func(t *testing.T) {
		s := newStore(t, opts)
		lim := state.Limit{Burst: 3, Per: 300 * time.Millisecond}
		for i := range 3 {
			if ok, _, err := s.Take(ctx, "k", lim); err != nil || !ok {
				t.Fatalf("take %d: %v %v", i, ok, err)
			}
		}
		ok, retry, err := s.Take(ctx, "k", lim)
		if err != nil || ok {
			t.Fatalf("take over the burst: %v %v", ok, err)
		}
		if retry <= 0 || retry > lim.Per {
			t.Fatalf("retry-after %v, want in (0, %v]", retry, lim.Per)
		}
		if ok, _, _ := s.Take(ctx, "other", lim); !ok {
			t.Fatal("keys share a bucket")
		}
		if err := s.Refund(ctx, "k", lim); err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := s.Take(ctx, "k", lim); !ok {
			t.Fatal("refund did not give a token back")
		}
		time.Sleep(lim.Per/3 + 20*time.Millisecond)
		if ok, _, _ := s.Take(ctx, "k", lim); !ok {
			t.Fatal("no token after a refill period")
		}
		if ok, _, _ := s.Take(ctx, "u", state.Limit{}); !ok {
			t.Fatal("zero limit refused")
		}
	})

	t.Run("UseOnce", func(t *testing.T) {
		s := newStore(t, opts)
		first, err := s.UseOnce(ctx, "id1", time.Minute)
		if err != nil || !first {
			t.Fatalf("first use: %v %v", first, err)
		}
		if again, _ := s.UseOnce(ctx, "id1", time.Minute); again {
			t.Fatal("second use accepted")
		}
		var wg sync.WaitGroup
		var firsts atomic.Int32
		for range 16 {
			wg.Go(func() {
				if ok, _ := s.UseOnce(ctx, "id2", time.Minute); ok {
					firsts.Add(1)
				}
			})
		}
		wg.Wait()
		if firsts.Load() != 1 {
			t.Fatalf("%d concurrent first uses", firsts.Load())
		}
	})

	t.Run("Deliveries", func(t *testing.T) {
		s := newStore(t, state.Options{MaxDeliveries: 2, MaxDeliveryBytes: 4})
		if err := s.PutDelivery(ctx, "box", []byte("a"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.PutDelivery(ctx, "box", []byte("short"), time.Minute); !errors.Is(err, state.ErrTooMany) {
			t.Fatalf("oversized delivery: %v", err)
		}
		if err := s.PutDelivery(ctx, "box", []byte("bb"), 30*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := s.PutDelivery(ctx, "box", []byte("c"), time.Minute); !errors.Is(err, state.ErrTooMany) {
			t.Fatalf("third delivery: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		got, err := s.TakeDeliveries(ctx, "box")
		if err != nil || len(got) != 1 || string(got[0]) != "a" {
			t.Fatalf("TakeDeliveries = %q, %v; want [a] (bb expired)", got, err)
		}
		if got, _ := s.TakeDeliveries(ctx, "box"); len(got) != 0 {
			t.Fatalf("deliveries taken twice: %q", got)
		}
	})

	t.Run("Bus", func(t *testing.T) {
		s := newStore(t, opts)
		room := newRoomID(t)
		got := make(chan state.Event, 4)
		unsub, err := s.Subscribe(ctx, room, state.Target, func(e state.Event) { got <- e })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Subscribe(ctx, room, state.Target, func(state.Event) {}); err == nil {
			t.Fatal("two subscribers for one side")
		}
		ok, err := s.Publish(ctx, room, state.Target, state.Event{Kind: state.EventData, Data: []byte{0, 1, 2}})
		if err != nil || !ok {
			t.Fatalf("Publish = %v, %v", ok, err)
		}
		select {
		case e := <-got:
			if e.Kind != state.EventData || string(e.Data) != "\x00\x01\x02" {
				t.Fatalf("got %+v", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("event not delivered")
		}
		if ok, _ := s.Publish(ctx, room, state.Controller, state.Event{Kind: state.EventPeer}); ok {
			t.Fatal("delivered to a side nobody subscribed")
		}
		unsub()
		unsub()
		if ok, _ := s.Publish(ctx, room, state.Target, state.Event{Kind: state.EventPeer}); ok {
			t.Fatal("delivered after unsubscribe")
		}
	})

	t.Run("BusOrderAndFields", func(t *testing.T) {
		s := newStore(t, opts)
		room := newRoomID(t)
		const n = 200
		got := make(chan state.Event, n)
		unsub, err := s.Subscribe(ctx, room, state.Controller, func(e state.Event) { got <- e })
		if err != nil {
			t.Fatal(err)
		}
		defer unsub()
		for i := range n {
			ev := state.Event{Kind: state.EventData, Data: []byte(fmt.Sprint(i))}
			if i == n-1 {
				ev = state.Event{Kind: state.EventPeerGone, Reason: wire.ReasonIdle}
			}
			if ok, err := s.Publish(ctx, room, state.Controller, ev); err != nil || !ok {
				t.Fatalf("Publish %d = %v, %v", i, ok, err)
			}
		}
		for i := range n {
			select {
			case e := <-got:
				if i == n-1 {
					if e.Kind != state.EventPeerGone || e.Reason != wire.ReasonIdle || len(e.Data) != 0 {
						t.Fatalf("last event %+v", e)
					}
				} else if e.Kind != state.EventData || string(e.Data) != fmt.Sprint(i) {
					t.Fatalf("event %d arrived as %+v: out of order", i, e)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("event %d not delivered", i)
			}
		}
	})

	t.Run("DeliveriesOldestFirst", func(t *testing.T) {
		s := newStore(t, state.Options{})
		for _, d := range []string{"one", "two", "three"} {
			if err := s.PutDelivery(ctx, "box", []byte(d), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutDelivery(ctx, "other", []byte("\x00bin:ary\xff"), time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := s.TakeDeliveries(ctx, "box")
		if err != nil || len(got) != 3 || string(got[0]) != "one" || string(got[1]) != "two" || string(got[2]) != "three" {
			t.Fatalf("TakeDeliveries = %q, %v", got, err)
		}
		got, err = s.TakeDeliveries(ctx, "other")
		if err != nil || len(got) != 1 || string(got[0]) != "\x00bin:ary\xff" {
			t.Fatalf("binary delivery came back as %q, %v", got, err)
		}
		if got, err := s.TakeDeliveries(ctx, "never"); err != nil || len(got) != 0 {
			t.Fatalf("empty box: %q, %v", got, err)
		}
	})

	t.Run("UseOnceExpires", func(t *testing.T) {
		s := newStore(t, opts)
		if ok, err := s.UseOnce(ctx, "short", 40*time.Millisecond); err != nil || !ok {
			t.Fatalf("first use: %v %v", ok, err)
		}
		time.Sleep(80 * time.Millisecond)
		if ok, err := s.UseOnce(ctx, "short", time.Minute); err != nil || !ok {
			t.Fatalf("use after the TTL: %v %v, want a first use", ok, err)
		}
	})

	t.Run("RefundCappedAtBurst", func(t *testing.T) {
		s := newStore(t, opts)
		lim := state.Limit{Burst: 2, Per: time.Hour}
		if ok, _, _ := s.Take(ctx, "r", lim); !ok {
			t.Fatal("first take refused")
		}
		for range 5 {
			if err := s.Refund(ctx, "r", lim); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 2 {
			if ok, _, _ := s.Take(ctx, "r", lim); !ok {
				t.Fatalf("take %d after refunds refused", i)
			}
		}
		if ok, _, _ := s.Take(ctx, "r", lim); ok {
			t.Fatal("refunds raised the bucket above its burst")
		}
		if err := s.Refund(ctx, "never-taken", lim); err != nil {
			t.Fatalf("refund of an unknown key: %v", err)
		}
	})

	t.Run("UnknownRooms", func(t *testing.T) {
		s := newStore(t, opts)
		if ok, err := s.ExpireRoom(ctx, newRoomID(t)); err != nil || ok {
			t.Fatalf("ExpireRoom of an unknown room = %v, %v", ok, err)
		}
		if err := s.CloseRoom(ctx, newRoomID(t)); err != nil {
			t.Fatalf("CloseRoom of an unknown room: %v", err)
		}
	})

	t.Run("TombstoneEnds", func(t *testing.T) {
		s := newStore(t, state.Options{TombstoneTTL: 50 * time.Millisecond})
		id := newRoomID(t)
		code, err := s.CreateRoom(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CloseRoom(ctx, id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := s.JoinRoom(ctx, code); !errors.Is(err, state.ErrUnknownCode) {
			t.Fatalf("join after the tombstone TTL: %v, want ErrUnknownCode", err)
		}
	})
}

// NewPair returns two handles on one fresh, empty state, as two relay
// instances sharing a backend have. A store that cannot be shared returns
// the same store twice.
type NewPair func(t *testing.T, opts state.Options) (a, b state.Store)

// RunShared checks that two handles on one state behave as one store: what
// one relay instance does, the others see.
func RunShared(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	opts := state.Options{MaxWrongJoins: 5, TombstoneTTL: time.Second}

	t.Run("RoomAcrossInstances", func(t *testing.T) {
		a, b := newPair(t, opts)
		id := newRoomID(t)
		code, err := a.CreateRoom(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := b.JoinRoom(ctx, code); err != nil || res.Room != id {
			t.Fatalf("join through the other instance = %+v, %v", res, err)
		}
		if _, err := a.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeUsed) {
			t.Fatalf("second join: %v, want ErrCodeUsed", err)
		}
		if err := b.CloseRoom(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := a.JoinRoom(ctx, code); !errors.Is(err, state.ErrCodeUsed) {
			t.Fatalf("join after close: %v, want ErrCodeUsed", err)
		}
	})

	t.Run("WrongJoinsAcrossInstances", func(t *testing.T) {
		a, b := newPair(t, opts)
		id := newRoomID(t)
		code, err := a.CreateRoom(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var burned []state.RoomID
		for i := range opts.MaxWrongJoins {
			s := a
			if i%2 == 1 {
				s = b
			}
			res, _ := s.JoinRoom(ctx, otherInBucket(code, i))
			burned = append(burned, res.Burned...)
		}
		if len(burned) != 1 || burned[0] != id {
			t.Fatalf("wrong joins spread over two instances burned %v, want [%s]", burned, id)
		}
	})

	t.Run("ConcurrentJoinsAcrossInstances", func(t *testing.T) {
		a, b := newPair(t, opts)
		code, err := a.CreateRoom(ctx, newRoomID(t), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				if _, err := s.JoinRoom(ctx, code); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d joins won, want exactly 1", wins.Load())
		}
	})

	t.Run("LimitsOnceAndDeliveriesAcrossInstances", func(t *testing.T) {
		a, b := newPair(t, opts)
		lim := state.Limit{Burst: 2, Per: time.Hour}
		a.Take(ctx, "ip", lim)
		b.Take(ctx, "ip", lim)
		if ok, _, _ := a.Take(ctx, "ip", lim); ok {
			t.Fatal("a rate limit is per instance")
		}
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				if ok, _ := s.UseOnce(ctx, "token", time.Minute); ok {
					firsts.Add(1)
				}
			})
		}
		wg.Wait()
		if firsts.Load() != 1 {
			t.Fatalf("%d first uses across instances", firsts.Load())
		}
		if err := a.PutDelivery(ctx, "box", []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := b.TakeDeliveries(ctx, "box"); err != nil || len(got) != 1 || string(got[0]) != "x" {
			t.Fatalf("delivery taken through the other instance: %q, %v", got, err)
		}
	})

	t.Run("BusAcrossInstances", func(t *testing.T) {
		a, b := newPair(t, opts)
		room := newRoomID(t)
		got := make(chan state.Event, 1)
		unsub, err := a.Subscribe(ctx, room, state.Target, func(e state.Event) { got <- e })
		if err != nil {
			t.Fatal(err)
		}
		ok, err := b.Publish(ctx, room, state.Target, state.Event{Kind: state.EventData, Data: []byte("hi")})
		if err != nil || !ok {
			t.Fatalf("Publish through the other instance = %v, %v", ok, err)
		}
		select {
		case e := <-got:
			if string(e.Data) != "hi" {
				t.Fatalf("got %+v", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("event not delivered across instances")
		}
		unsub()
		if ok, _ := b.Publish(ctx, room, state.Target, state.Event{Kind: state.EventPeer}); ok {
			t.Fatal("delivered after the subscriber left")
		}
	})
}
