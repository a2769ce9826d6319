package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

// mailbox returns a mailbox key and its address.
func mailbox(b byte) (key, addr []byte) {
	key = bytes.Repeat([]byte{b}, wire.MailboxLen)
	a := wire.MailboxAddress(key)
	return key, a[:]
}

func tokenID(b byte) []byte { return bytes.Repeat([]byte{b}, wire.TokenIDLen) }

func deliver(t *testing.T, r *relay, id []byte, expires time.Time, addr, sealed []byte) error {
	t.Helper()
	c := dial(t, r, nil)
	defer c.Close()
	return c.Deliver(tctx(t), id, expires, addr, sealed)
}

// collectAll runs a one-shot collect and returns what it got.
func collectAll(t *testing.T, r *relay, keys ...[]byte) []client.Mail {
	t.Helper()
	ctx := tctx(t)
	c := dial(t, r, nil)
	defer c.Close()
	if err := c.Collect(ctx, keys, false); err != nil {
		t.Fatal(err)
	}
	var got []client.Mail
	for {
		m, end, err := c.NextMail(ctx)
		if err != nil {
			t.Fatalf("collect: %v", err)
		}
		if end {
			break
		}
		got = append(got, m)
	}
	if err := c.Ack(ctx, uint32(len(got))); err != nil {
		t.Fatal(err)
	}
	// A one-shot collect ends once everything is acknowledged.
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the relay kept a finished one-shot collect open")
	}
	return got
}

func TestDeliverAndCollect(t *testing.T) {
	r := startRelay(t, testConfig())
	key, addr := mailbox(1)
	otherKey, otherAddr := mailbox(2)
	exp := time.Now().Add(time.Hour)
	for i, s := range []string{"first", "second"} {
		if err := deliver(t, r, tokenID(byte(i)), exp, addr, []byte(s)); err != nil {
			t.Fatalf("deliver %s: %v", s, err)
		}
	}
	if err := deliver(t, r, tokenID(9), exp, otherAddr, []byte("other")); err != nil {
		t.Fatal(err)
	}
	got := collectAll(t, r, key)
	if len(got) != 2 || string(got[0].Sealed) != "first" || string(got[1].Sealed) != "second" || !bytes.Equal(got[0].Mailbox[:], addr) {
		t.Fatalf("collected %+v", got)
	}
	if got := collectAll(t, r, key, otherKey); len(got) != 1 || string(got[0].Sealed) != "other" {
		t.Fatalf("second collect %+v", got)
	}
	// Knowing a mailbox's address is not enough to collect it: the relay
	// looks up the address of the key it is given.
	if err := deliver(t, r, tokenID(10), exp, addr, []byte("third")); err != nil {
		t.Fatal(err)
	}
	if got := collectAll(t, r, addr); len(got) != 0 {
		t.Fatalf("collect with the address as key got %+v", got)
	}
	if got := r.metric(t, `amesh_relay_deliveries_total{result="stored"}`); got != 4 {
		t.Errorf("stored deliveries metric %v", got)
	}
	if got := r.metric(t, "amesh_relay_deliveries_collected_total"); got != 3 {
		t.Errorf("collected metric %v", got)
	}
}

func TestDeliveryRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	store := state.NewMemory(state.Options{MaxDeliveries: 1}, nil)
	srv, err := server.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	l, addr := listen(t)
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	r := &relay{srv: srv, addr: addr, url: "ws://" + addr + "/ws"}
	_, box := mailbox(3)
	now := time.Now()
	if err := deliver(t, r, tokenID(1), now.Add(time.Hour), box, []byte("x")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      []byte
		expires time.Time
		box     []byte
		want    error
	}{
		{"token used", tokenID(1), now.Add(time.Hour), box, client.ErrTokenUsed},
		{"token used, other mailbox", tokenID(1), now.Add(time.Hour), bytes.Repeat([]byte{7}, wire.MailboxLen), client.ErrTokenUsed},
		{"token expired", tokenID(2), now.Add(-time.Second), box, client.ErrTokenExpired},
		{"mailbox full", tokenID(3), now.Add(time.Hour), box, client.ErrMailboxFull},
		{"lifetime over a day", tokenID(4), now.Add(25 * time.Hour), box, &client.RelayError{Reason: wire.ReasonProtocol}},
	}
	for _, tc := range tests {
		if err := deliver(t, r, tc.id, tc.expires, tc.box, []byte("y")); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The expired token was not spent.
	if err := deliver(t, r, tokenID(2), now.Add(time.Hour), bytes.Repeat([]byte{8}, wire.MailboxLen), []byte("z")); err != nil {
		t.Errorf("a token refused as expired was spent: %v", err)
	}
}

func TestDeliverRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.DeliverLimit = state.Limit{Burst: 2, Per: time.Minute}
	r := startRelay(t, cfg)
	_, box := mailbox(1)
	for i := range 2 {
		if err := deliver(t, r, tokenID(byte(i)), time.Now().Add(time.Hour), box, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	err := deliver(t, r, tokenID(5), time.Now().Add(time.Hour), box, []byte("x"))
	var re *client.RelayError
	if !errors.As(err, &re) || re.Reason != wire.ReasonRateLimited || re.RetryAfter <= 0 {
		t.Fatalf("third delivery: %v, want rate_limited with a retry-after", err)
	}
}

// TestUnacknowledgedMailReturns: deliveries sent to a collector that leaves
// without acknowledging them go back into their mailbox.
func TestUnacknowledgedMailReturns(t *testing.T) {
	r := startRelay(t, testConfig())
	key, box := mailbox(1)
	if err := deliver(t, r, tokenID(1), time.Now().Add(time.Hour), box, []byte("keep me")); err != nil {
		t.Fatal(err)
	}
	ctx := tctx(t)
	c := dial(t, r, nil)
	if err := c.Collect(ctx, [][]byte{key}, false); err != nil {
		t.Fatal(err)
	}
	if m, _, err := c.NextMail(ctx); err != nil || string(m.Sealed) != "keep me" {
		t.Fatalf("first mail %q, %v", m.Sealed, err)
	}
	c.Close()
	eventually(t, "the delivery is back", func() bool {
		got := collectAll(t, r, key)
		return len(got) == 1 && string(got[0].Sealed) == "keep me"
	})
}

// TestWaitingCollector: a waiting collector gets deliveries as they
// arrive, in batches, and acknowledges them one batch at a time.
func TestWaitingCollector(t *testing.T) {
	cfg := testConfig()
	cfg.CollectPoll = time.Hour // only notifications wake it
	r := startRelay(t, cfg)
	ctx := tctx(t)
	key, box := mailbox(1)
	c := dial(t, r, nil)
	if err := c.Collect(ctx, [][]byte{key}, true); err != nil {
		t.Fatal(err)
	}
	if _, end, err := c.NextMail(ctx); err != nil || !end {
		t.Fatalf("first batch of an empty mailbox: end %v, %v", end, err)
	}
	if err := c.Ack(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"one", "two"} {
		if err := deliver(t, r, tokenID(byte(i)), time.Now().Add(time.Hour), box, []byte(s)); err != nil {
			t.Fatal(err)
		}
		m, end, err := c.NextMail(ctx)
		if err != nil || end || string(m.Sealed) != s {
			t.Fatalf("waiting for %s: %q end %v, %v", s, m.Sealed, end, err)
		}
		if _, end, err := c.NextMail(ctx); err != nil || !end {
			t.Fatalf("batch end: %v %v", end, err)
		}
		if err := c.Ack(ctx, uint32(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.metric(t, "amesh_relay_collectors"); got != 1 {
		t.Errorf("collectors gauge %v", got)
	}
	c.Close()
	eventually(t, "the collectors gauge drops", func() bool { return r.metric(t, "amesh_relay_collectors") == 0 })
	if got := collectAll(t, r, key); len(got) != 0 {
		t.Fatalf("acknowledged deliveries came back: %+v", got)
	}
}

func TestProvisionProtocolViolations(t *testing.T) {
	key, box := mailbox(1)
	deliverFrame := wire.Frame{Type: wire.Deliver, TokenID: tokenID(1), Expires: time.Now().Add(time.Hour), Mailbox: box, Payload: []byte("x")}
	collectFrame := wire.Frame{Type: wire.Collect, Keys: [][]byte{key}}
	tests := []struct {
		name   string
		frames []wire.Frame
	}{
		{"deliver after create", []wire.Frame{{Type: wire.Create}, deliverFrame}},
		{"collect after create", []wire.Frame{{Type: wire.Create}, collectFrame}},
		{"ack before collect", []wire.Frame{{Type: wire.Ack}}},
		{"collect twice", []wire.Frame{collectFrame, collectFrame}},
		{"ack of unsent mail", []wire.Frame{collectFrame, {Type: wire.Ack, Count: 5}}},
		{"create while collecting", []wire.Frame{collectFrame, {Type: wire.Create}}},
	}
	r := startRelay(t, testConfig())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := rawDial(t, r)
			for _, f := range tc.frames {
				send(t, ws, f)
			}
			for {
				f, err := readFrame(t, ws)
				if err != nil {
					t.Fatalf("connection ended without an error frame: %v", err)
				}
				if f.Type == wire.Error {
					if f.Reason != wire.ReasonProtocol {
						t.Fatalf("reason %v, want protocol", f.Reason)
					}
					return
				}
			}
		})
	}
	// A malformed Deliver frame is a bad frame.
	ws := rawDial(t, r)
	ws.WriteMessage(websocket.BinaryMessage, append([]byte{'P'}, make([]byte, 20)...))
	if f, err := readFrame(t, ws); err != nil || f.Type != wire.Error || f.Reason != wire.ReasonBadFrame {
		t.Fatalf("malformed deliver: %+v %v", f, err)
	}
}

// TestShutdownReturnsCollectedMail: a shutdown ends waiting collectors (so
// that they reconnect to another instance) and puts back what they had not
// acknowledged.
func TestShutdownReturnsCollectedMail(t *testing.T) {
	cfg := testConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	store := state.NewMemory(state.Options{}, nil)
	srv, err := server.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	l, addr := listen(t)
	go srv.Serve(l)
	r := &relay{srv: srv, addr: addr, url: "ws://" + addr + "/ws"}
	key, box := mailbox(1)
	if err := deliver(t, r, tokenID(1), time.Now().Add(time.Hour), box, []byte("pending")); err != nil {
		t.Fatal(err)
	}
	ctx := tctx(t)
	c := dial(t, r, nil)
	if err := c.Collect(ctx, [][]byte{key}, true); err != nil {
		t.Fatal(err)
	}
	if m, _, err := c.NextMail(ctx); err != nil || string(m.Sealed) != "pending" {
		t.Fatalf("mail: %q %v", m.Sealed, err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := c.NextMail(ctx); err != nil {
			if !errors.Is(err, client.ErrShutdown) {
				t.Fatalf("collector during shutdown: %v, want ErrShutdown", err)
			}
			break
		}
	}
	recs, err := store.TakeDeliveries(ctx, "mailbox|"+hex.EncodeToString(box))
	if err != nil || len(recs) != 1 || string(recs[0][8:]) != "pending" {
		t.Fatalf("mailbox after shutdown: %q, %v", recs, err)
	}
	if exp := time.UnixMilli(int64(binary.BigEndian.Uint64(recs[0]))); time.Until(exp) < 59*time.Minute {
		t.Fatalf("returned delivery expires at %v", exp)
	}
}

// TestShutdownBeforeServe: a Shutdown that overtakes Serve's start still
// stops it (amesh-relay stopped right after it started used to hang).
func TestShutdownBeforeServe(t *testing.T) {
	cfg := testConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg, state.NewMemory(state.Options{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(tctx(t)); err != nil {
		t.Fatal(err)
	}
	l, _ := listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve after Shutdown kept serving")
	}
}
