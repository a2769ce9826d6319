package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amesh-go/amesh/internal/testenv"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

// relay is a real amesh-relay serving on a loopback port.
type relay struct {
	srv  *server.Server
	addr string // host:port
	url  string // ws://host:port/ws
	logs *testenv.Logs
}

// testConfig shortens every timer so that tests run in milliseconds, and
// lifts the limits a test does not exercise.
func testConfig() server.Config {
	return server.Config{
		Version:         "test",
		MaxConns:        1000,
		MaxConnsPerIP:   -1,
		MaxFrame:        1024,
		MaxSessionBytes: 8 << 10,
		RendezvousTTL:   5 * time.Second,
		SessionTimeout:  10 * time.Second,
		IdleTimeout:     10 * time.Second,
		HelloTimeout:    5 * time.Second,
		PingInterval:    time.Second,
		PongWait:        3 * time.Second,
		CreateLimit:     state.Limit{Burst: -1},
		JoinFailLimit:   state.Limit{Burst: -1},
		JoinOKLimit:     state.Limit{Burst: -1},
	}
}

func startRelay(t *testing.T, cfg server.Config) *relay {
	t.Helper()
	logs := &testenv.Logs{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := state.NewMemory(state.Options{MaxWrongJoins: 5}, nil)
	srv, err := server.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	l, addr := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		store.Close()
	})
	return &relay{srv: srv, addr: addr, url: "ws://" + addr + "/ws", logs: logs}
}

func dial(t *testing.T, r *relay, header http.Header) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, r.url, &client.Options{Header: header})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair creates a room on one connection and joins it from another.
func pair(t *testing.T, r *relay) (target, controller *client.Conn, code string) {
	t.Helper()
	ctx := tctx(t)
	target = dial(t, r, nil)
	code, _, err := target.Create(ctx)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	controller = dial(t, r, nil)
	if err := controller.Join(ctx, code); err != nil {
		t.Fatalf("join: %v", err)
	}
	if err := target.WaitPeer(ctx); err != nil {
		t.Fatalf("wait peer: %v", err)
	}
	return target, controller, code
}

// rawDial opens a WebSocket without the client package, for frames and
// behaviour the client never produces.
func rawDial(t *testing.T, r *relay, subprotocols ...string) *websocket.Conn {
	t.Helper()
	if subprotocols == nil {
		subprotocols = []string{wire.Subprotocol}
	}
	d := websocket.Dialer{Subprotocols: subprotocols}
	ws, _, err := d.Dial(r.url, nil)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// readFrame reads one frame from a raw connection.
func readFrame(t *testing.T, ws *websocket.Conn) (wire.Frame, error) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		return wire.Frame{}, err
	}
	return wire.Parse(b)
}

func send(t *testing.T, ws *websocket.Conn, f wire.Frame) {
	t.Helper()
	if err := ws.WriteMessage(websocket.BinaryMessage, f.Encode()); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// metric returns the value of one sample of the relay's /metrics.
func (r *relay) metric(t *testing.T, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if ok && name == sample {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not exported", sample)
	return 0
}

func rejections(t *testing.T, r *relay, reason wire.Reason) float64 {
	return r.metric(t, fmt.Sprintf("amesh_relay_rejections_total{reason=%q}", reason.String()))
}

// eventually polls cond, for state that settles asynchronously (gauges
// after a disconnect).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, what, cond)
}

// expectClosed reads until the connection ends and returns the last relay
// error frame seen, if any.
func expectRelayErr(t *testing.T, c *client.Conn) error {
	t.Helper()
	ctx := tctx(t)
	for {
		_, err := c.Recv(ctx)
		if err != nil {
			return err
		}
	}
}

// listen opens a loopback listener on a free port.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", testenv.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Addr().String()
}
