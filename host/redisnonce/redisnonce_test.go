package redisnonce

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/redistest"
	"github.com/amesh-go/amesh/internal/testenv"
)

func newStore(t *testing.T, srv *redistest.Server, opts Options) *Store {
	t.Helper()
	c := NewClient(nil, srv.Addr())
	t.Cleanup(func() { c.Close() })
	return New(c, opts)
}

func TestRecord(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv, Options{})
	now := time.Now()
	key := "\x02binary\x00key"
	for i, want := range []bool{true, false, false} {
		fresh, err := s.Record(ctx, key, now, time.Minute)
		if err != nil || fresh != want {
			t.Fatalf("record %d: fresh %v, err %v; want %v", i, fresh, err, want)
		}
	}
	// The TTL is Redis's: after it, the nonce is fresh again.
	if fresh, _ := s.Record(ctx, "short", now, 50*time.Millisecond); !fresh {
		t.Fatal("first short record not fresh")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		fresh, err := s.Record(ctx, "short", now, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nonce did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Prefixes keep stores apart; the key is printable and prefixed.
	other := newStore(t, srv, Options{Prefix: "other:"})
	if fresh, _ := other.Record(ctx, key, now, time.Minute); !fresh {
		t.Fatal("another prefix saw the nonce")
	}
	if k := s.Key(key); !strings.HasPrefix(k, DefaultPrefix) || strings.ContainsAny(k, "\x00\x02") {
		t.Fatalf("key %q", k)
	}
	// A sub-millisecond TTL still records (PX 1).
	if fresh, err := s.Record(ctx, "tiny", now, time.Microsecond); err != nil || !fresh {
		t.Fatalf("tiny ttl: %v %v", fresh, err)
	}
}

func TestConcurrentReplays(t *testing.T) {
	srv := redistest.Start(t)
	s1, s2 := newStore(t, srv, Options{}), newStore(t, srv, Options{})
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			ok, err := s.Record(context.Background(), "one nonce", time.Now(), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if n := fresh.Load(); n != 1 {
		t.Fatalf("%d of 64 concurrent records were fresh, want exactly 1", n)
	}
}

// TestFailClosedAndRecover stops Redis (errors, one log line), and starts it
// again on the same port: the same Store works again without help.
func TestFailClosedAndRecover(t *testing.T) {
	srv := redistest.Start(t)
	var logs testenv.Logs
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s := newStore(t, srv, Options{Logger: logger, Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	if fresh, err := s.Record(ctx, "a", time.Now(), time.Minute); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	srv.Stop()
	for i := range 3 {
		start := time.Now()
		if fresh, err := s.Record(ctx, "b", time.Now(), time.Minute); err == nil || fresh {
			t.Fatalf("Redis down, record %d: fresh %v err %v", i, fresh, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a failing record took %v", d)
		}
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fresh, err := s.Record(ctx, "c", time.Now(), time.Minute)
		if err == nil && fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "unavailable"); n != 1 {
		t.Errorf("%d 'unavailable' log lines, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "answers again") {
		t.Errorf("no recovery log line:\n%s", logs.String())
	}
}
