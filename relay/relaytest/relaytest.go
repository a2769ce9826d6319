// Package relaytest runs a real amesh-relay on a loopback port for tests of
// the packages and commands that pair through it.
package relaytest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/relay/state"
)

// Start serves a relay with cfg on 127.0.0.1 (a nil Logger discards logs;
// a nil store is a fresh in-memory one) until the test ends, then shuts it
// down and checks that it stopped cleanly. It returns the relay's ws:// URL.
func Start(t testing.TB, cfg server.Config, store state.Store) string {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if store == nil {
		store = state.NewMemory(state.Options{}, nil)
	}
	srv, err := server.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", testenv.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("relay: %v", err)
		}
	})
	return "ws://" + l.Addr().String()
}
