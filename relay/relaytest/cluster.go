package relaytest

// Relay instances with their logs, and several instances sharing one Redis,
// for the tests of provisioning and of the multi-instance relay.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/amesh-go/amesh/internal/redistest"
	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/state/redisstate"
)

// Logs collects a relay's logs from many goroutines.
type Logs = testenv.Logs

// Instance is a running relay whose logs a test can read and which it can
// stop early.
type Instance struct {
	// URL is the relay's ws:// URL, Addr its host:port.
	URL, Addr string
	// Logs holds its debug-level JSON logs.
	Logs *Logs
	srv  *server.Server
	done chan error
	once sync.Once
}

// Config returns a configuration with short timers and no rate limits, for
// tests that do not exercise them.
func Config() server.Config {
	return server.Config{
		Version:        "test",
		MaxConnsPerIP:  -1,
		RendezvousTTL:  10 * time.Second,
		SessionTimeout: 20 * time.Second,
		IdleTimeout:    20 * time.Second,
		HelloTimeout:   5 * time.Second,
		PingInterval:   time.Second,
		PongWait:       3 * time.Second,
		CreateLimit:    state.Limit{Burst: -1},
		JoinFailLimit:  state.Limit{Burst: -1},
		JoinOKLimit:    state.Limit{Burst: -1},
		DeliverLimit:   state.Limit{Burst: -1},
		CollectLimit:   state.Limit{Burst: -1},
		CollectPoll:    500 * time.Millisecond,
	}
}

// StartInstance runs a relay over store on a free loopback port until the
// test ends (or Stop). Its logs are kept at debug level.
func StartInstance(t testing.TB, store state.Store, cfg server.Config) *Instance {
	t.Helper()
	logs := &Logs{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", testenv.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	r := &Instance{URL: "ws://" + l.Addr().String() + "/ws", Addr: l.Addr().String(), Logs: logs, srv: srv, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(l) }()
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("relay %s: %v", r.Addr, err)
		}
	})
	return r
}

// Stop shuts the relay down (cutting running sessions after a second).
func (r *Instance) Stop() error {
	var err error
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
		if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) {
			err = serr
		}
	})
	return err
}

// Memory returns a fresh memory store, closed when the test ends.
func Memory(t testing.TB) state.Store {
	s := state.NewMemory(state.Options{}, nil)
	t.Cleanup(func() { s.Close() })
	return s
}

var prefixSeq atomic.Int64

// Prefix returns a key prefix that no other store of this test process
// uses: stores that share it share their state.
func Prefix() string { return fmt.Sprintf("relaytest%d:", prefixSeq.Add(1)) }

// Redis returns a Redis store on srv with its own client, as each relay
// process has; stores with the same prefix are instances of one relay.
func Redis(t testing.TB, srv *redistest.Server, prefix string) *redisstate.Store {
	t.Helper()
	c, err := redisstate.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	s, err := redisstate.New(c, redisstate.Options{Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		c.Close()
	})
	return s
}

// QuietRedis silences go-redis's own log lines (dial failures while a test
// has stopped Redis). Call it from TestMain.
func QuietRedis() { redis.SetLogger(quiet{}) }

type quiet struct{}

// Printf drops the line.
func (quiet) Printf(context.Context, string, ...any) {}

// Cluster is several relay instances sharing one Redis.
type Cluster struct {
	Redis  *redistest.Server
	Relays []*Instance
}

// StartCluster starts a redis-server and n relay instances that share it.
func StartCluster(t testing.TB, n int, cfg server.Config) *Cluster {
	t.Helper()
	c := &Cluster{Redis: redistest.Start(t)}
	prefix := Prefix()
	for range n {
		c.Relays = append(c.Relays, StartInstance(t, Redis(t, c.Redis, prefix), cfg))
	}
	return c
}
