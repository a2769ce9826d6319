package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/amesh-go/amesh/internal/redistest"
	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/state/redisstate"
	"github.com/amesh-go/amesh/relay/state/statetest"
)

var prefixSeq atomic.Int64

// newStore returns a store on srv that shares nothing with the others: a
// fresh key prefix stands for a fresh, empty Redis.
func newStore(t *testing.T, srv *redistest.Server, opts state.Options) *redisstate.Store {
	t.Helper()
	return newStoreWithPrefix(t, srv, opts, fmt.Sprintf("test%d:", prefixSeq.Add(1)))
}

func newStoreWithPrefix(t *testing.T, srv *redistest.Server, opts state.Options, prefix string) *redisstate.Store {
	t.Helper()
	c, err := redisstate.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	s, err := redisstate.New(c, redisstate.Options{State: opts, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		c.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	statetest.Run(t, func(t *testing.T, opts state.Options) state.Store {
		return newStore(t, srv, opts)
	})
}

// TestShared runs the shared suite on two stores with their own clients
// and one prefix: two relay instances on one Redis.
func TestShared(t *testing.T) {
	srv := redistest.Start(t)
	statetest.RunShared(t, func(t *testing.T, opts state.Options) (state.Store, state.Store) {
		prefix := fmt.Sprintf("shared%d:", prefixSeq.Add(1))
		return newStoreWithPrefix(t, srv, opts, prefix), newStoreWithPrefix(t, srv, opts, prefix)
	})
}

func TestPing(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, state.Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestUnavailableAndRecovery stops Redis under a store: every operation
// fails with an error that wraps state.ErrUnavailable, one line is
// logged (without secrets), and the same store works again, subscriptions
// included, once Redis is back on its port.
func TestUnavailableAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	var logs testenv.Logs
	c, err := redisstate.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := redisstate.New(c, redisstate.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	got := make(chan state.Event, 4)
	unsub, err := s.Subscribe(ctx, "kept", state.Target, func(e state.Event) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()

	srv.Stop()
	ops := []struct {
		name string
		run  func() error
	}{
		{"CreateRoom", func() error { _, err := s.CreateRoom(ctx, "r", time.Minute); return err }},
		{"JoinRoom", func() error { _, err := s.JoinRoom(ctx, "123456"); return err }},
		{"ExpireRoom", func() error { _, err := s.ExpireRoom(ctx, "r"); return err }},
		{"CloseRoom", func() error { return s.CloseRoom(ctx, "r") }},
		{"Take", func() error { _, _, err := s.Take(ctx, "k", state.Limit{Burst: 1, Per: time.Second}); return err }},
		{"UseOnce", func() error { _, err := s.UseOnce(ctx, "id", time.Minute); return err }},
		{"PutDelivery", func() error { return s.PutDelivery(ctx, "b", []byte("x"), time.Minute) }},
		{"TakeDeliveries", func() error { _, err := s.TakeDeliveries(ctx, "b"); return err }},
		{"Publish", func() error {
			_, err := s.Publish(ctx, "kept", state.Target, state.Event{Kind: state.EventPeer})
			return err
		}},
		{"Subscribe", func() error { _, err := s.Subscribe(ctx, "new", state.Target, func(state.Event) {}); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, op := range ops {
		if err := op.run(); !errors.Is(err, state.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", op.name, err)
		}
	}
	if n := strings.Count(logs.String(), "Redis unavailable"); n != 1 {
		t.Errorf("logged %d unavailability lines, want 1:\n%s", n, logs.String())
	}

	srv.Restart()
	eventually(t, "Redis answers again", func() bool { return s.Ping(ctx) == nil })
	if !strings.Contains(logs.String(), "Redis available again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	// The subscription made before the outage is renewed by itself.
	eventually(t, "the old subscription is back", func() bool {
		ok, err := s.Publish(ctx, "kept", state.Target, state.Event{Kind: state.EventData, Data: []byte("after")})
		return err == nil && ok
	})
	select {
	case e := <-got:
		if string(e.Data) != "after" {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after recovery")
	}
	if _, err := s.CreateRoom(ctx, "after", time.Minute); err != nil {
		t.Fatalf("CreateRoom after recovery: %v", err)
	}
}

func TestRefusesCluster(t *testing.T) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer c.Close()
	if _, err := redisstate.New(c, redisstate.Options{}); err == nil || !strings.Contains(err.Error(), "Cluster") {
		t.Fatalf("New with a cluster client: %v", err)
	}
}

func TestNewClientURLErrorsHidePasswords(t *testing.T) {
	for _, u := range []string{
		"http://user:s3cret-pw@127.0.0.1:6379",
		"redis://user:s3cret-pw@127.0.0.1:6379/notadb",
		"redis://user:s3cret-pw@[::1:6379",
		"redis://user:s3cret-pw@127.0.0.1:6379/0?bogus=1",
	} {
		_, err := redisstate.NewClient(u)
		if err == nil {
			t.Errorf("NewClient accepted %q", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error quotes the password: %v", err)
		}
	}
	c, err := redisstate.NewClient("redis://:pw@127.0.0.1:6379/2")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, cond)
}

// TestMain keeps go-redis's own dial-failure lines, expected while tests
// stop Redis, out of the test output.
func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

type quietLogger struct{}

// Printf drops the line.
func (quietLogger) Printf(context.Context, string, ...any) {}
