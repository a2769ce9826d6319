package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

func TestForwardsOpaqueFrames(t *testing.T) {
	r := startRelay(t, testConfig())
	target, controller, _ := pair(t, r)
	ctx := tctx(t)
	payloads := [][]byte{{}, {0}, []byte("\x00\xffnot json{"), bytes.Repeat([]byte{0xa5}, 1024)}
	for _, p := range payloads {
		if err := controller.Send(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err := target.Recv(ctx)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("target got %x, %v; want %x", got, err, p)
		}
		if err := target.Send(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err = controller.Recv(ctx)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("controller got %x, %v; want %x", got, err, p)
		}
	}
	if got := r.metric(t, "amesh_relay_messages_total"); got != float64(2*len(payloads)) {
		t.Errorf("messages_total = %v, want %d", got, 2*len(payloads))
	}
	if got := r.metric(t, "amesh_relay_sessions"); got != 1 {
		t.Errorf("sessions = %v, want 1", got)
	}
	controller.Close()
	if err := expectRelayErr(t, target); !errors.Is(err, client.ErrPeerGone) {
		t.Fatalf("target after the controller left: %v, want ErrPeerGone", err)
	}
	eventually(t, "sessions back to 0", func() bool { return r.metric(t, "amesh_relay_sessions") == 0 })
}

func TestHealth(t *testing.T) {
	r := startRelay(t, testConfig())
	pair(t, r)
	resp, err := http.Get("http://" + r.addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h server.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || h.Status != "ok" || h.Version != "test" || h.Sessions != 1 || h.Connections != 2 {
		t.Fatalf("health = %d %+v", resp.StatusCode, h)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
}

func TestMetricsFormat(t *testing.T) {
	r := startRelay(t, testConfig())
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	// Every sample line belongs to a family declared by # TYPE, and every
	// family has HELP and TYPE: what Prometheus' text parser requires.
	typed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(body.String()), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			if typ != "counter" && typ != "gauge" {
				t.Errorf("family %s has type %q", name, typ)
			}
			typed[name] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if !typed[name] {
			t.Errorf("sample %q of an undeclared family", line)
		}
	}
	for _, want := range []string{"amesh_relay_connections", "amesh_relay_sessions", "amesh_relay_messages_total", "amesh_relay_rejections_total"} {
		if !typed[want] {
			t.Errorf("family %s missing", want)
		}
	}
}

func TestMaxConnections(t *testing.T) {
	tests := []struct {
		name   string
		global int
		perIP  int
	}{
		{"global", 3, -1},
		{"per address", 100, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxConns, cfg.MaxConnsPerIP = tc.global, tc.perIP
			r := startRelay(t, cfg)
			var first *client.Conn
			for i := range 3 {
				c := dial(t, r, nil)
				if i == 0 {
					first = c
				}
			}
			_, err := client.Dial(tctx(t), r.url, nil)
			if err == nil || !strings.Contains(err.Error(), "503") {
				t.Fatalf("fourth connection: %v, want 503", err)
			}
			if got := rejections(t, r, wire.ReasonMaxConns); got != 1 {
				t.Fatalf("max_connections rejections = %v, want 1", got)
			}
			// A freed slot is usable again. (The relay registers a
			// connection just after its upgrade response, so wait for all
			// three before closing one.)
			eventually(t, "three connections", func() bool { return r.metric(t, "amesh_relay_connections") == 3 })
			first.Close()
			eventually(t, "slot freed", func() bool { return r.metric(t, "amesh_relay_connections") == 2 })
			dial(t, r, nil)
		})
	}
}

func TestMaxFrameSize(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFrame = 100
	r := startRelay(t, cfg)
	target, controller, _ := pair(t, r)
	ctx := tctx(t)
	// Exactly the limit passes.
	if err := controller.Send(ctx, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := target.Recv(ctx); err != nil {
		t.Fatal(err)
	}
	controller.Send(ctx, make([]byte, 101))
	if err := expectRelayErr(t, controller); !errors.Is(err, client.ErrDisconnected) {
		t.Fatalf("sender of a big frame: %v, want disconnected (close 1009)", err)
	}
	var re *client.RelayError
	if err := expectRelayErr(t, target); !errors.As(err, &re) || !re.PeerGone || re.Reason != wire.ReasonFrameTooBig {
		t.Fatalf("peer of the sender: %v, want peer gone (frame_too_large)", err)
	}
	if got := rejections(t, r, wire.ReasonFrameTooBig); got != 1 {
		t.Fatalf("frame_too_large rejections = %v", got)
	}
}

func TestMaxFrameSizeCloseCode(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFrame = 100
	r := startRelay(t, cfg)
	ws := rawDial(t, r)
	ws.WriteMessage(websocket.BinaryMessage, make([]byte, 200))
	_, err := readFrame(t, ws)
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("got %v, want close 1009", err)
	}
}

func TestSessionByteQuota(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFrame = 1000
	cfg.MaxSessionBytes = 2500
	r := startRelay(t, cfg)
	target, controller, _ := pair(t, r)
	ctx := tctx(t)
	for range 2 {
		if err := controller.Send(ctx, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := target.Recv(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The target's own budget is separate.
	if err := target.Send(ctx, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Recv(ctx); err != nil {
		t.Fatal(err)
	}
	controller.Send(ctx, make([]byte, 1000)) // 3000 > 2500
	if err := expectRelayErr(t, controller); !errors.Is(err, &client.RelayError{Reason: wire.ReasonQuota}) {
		t.Fatalf("sender over quota: %v", err)
	}
	if err := expectRelayErr(t, target); !errors.Is(err, client.ErrPeerGone) {
		t.Fatalf("its peer: %v", err)
	}
	if got := rejections(t, r, wire.ReasonQuota); got != 1 {
		t.Fatalf("session_quota rejections = %v", got)
	}
}

func TestCreateRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.CreateLimit = state.Limit{Burst: 3, Per: time.Hour}
	cfg.TrustProxy = true
	r := startRelay(t, cfg)
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	ctx := tctx(t)
	for i := range 3 {
		if _, _, err := dial(t, r, from("192.0.2.1")).Create(ctx); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	_, _, err := dial(t, r, from("192.0.2.1")).Create(ctx)
	var re *client.RelayError
	if !errors.As(err, &re) || re.Reason != wire.ReasonRateLimited || re.RetryAfter <= 0 {
		t.Fatalf("fourth create: %v, want rate limited with a retry-after", err)
	}
	// Another address has its own budget.
	if _, _, err := dial(t, r, from("192.0.2.2")).Create(ctx); err != nil {
		t.Fatalf("create from another address: %v", err)
	}
	if got := rejections(t, r, wire.ReasonRateLimited); got != 1 {
		t.Fatalf("rate_limited rejections = %v", got)
	}
}

func TestTrustProxy(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprint("trust=", trust), func(t *testing.T) {
			cfg := testConfig()
			cfg.CreateLimit = state.Limit{Burst: 1, Per: time.Hour}
			cfg.TrustProxy = trust
			r := startRelay(t, cfg)
			ctx := tctx(t)
			if _, _, err := dial(t, r, http.Header{"X-Forwarded-For": {"198.51.100.7, 192.0.2.1"}}).Create(ctx); err != nil {
				t.Fatal(err)
			}
			// A claimed leftmost address is never believed; only the
			// entry the proxy appended is.
			_, _, err := dial(t, r, http.Header{"X-Forwarded-For": {"198.51.100.8, 192.0.2.2"}}).Create(ctx)
			if limited := errors.Is(err, client.ErrRateLimited); limited == trust {
				t.Fatalf("trust=%v: second create from another proxied address: %v", trust, err)
			}
		})
	}
}

func TestJoinRateLimitsCountFailuresAndSuccessesSeparately(t *testing.T) {
	cfg := testConfig()
	cfg.TrustProxy = true
	cfg.JoinFailLimit = state.Limit{Burst: 3, Per: time.Hour}
	cfg.JoinOKLimit = state.Limit{Burst: 4, Per: time.Hour}
	r := startRelay(t, cfg)
	ctx := tctx(t)
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	newCode := func() string {
		code, _, err := dial(t, r, nil).Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	wrong := func(code string) string { return fmt.Sprintf("%06d", (atoi(code)+500_000)%1_000_000) }
	join := func(ip, code string) error { return dial(t, r, from(ip)).Join(ctx, code) }

	succeed := func(ip string, n int) {
		t.Helper()
		for i := range n {
			if err := join(ip, newCode()); err != nil {
				t.Fatalf("%s: join %d: %v", ip, i, err)
			}
		}
	}
	fail := func(ip string, n int) {
		t.Helper()
		code := newCode()
		for i := range n {
			if err := join(ip, wrong(code)); !errors.Is(err, client.ErrUnknownCode) {
				t.Fatalf("%s: wrong join %d: %v, want unknown code", ip, i, err)
			}
		}
	}

	// Successes have their own limit.
	succeed("192.0.2.10", 4)
	if err := join("192.0.2.10", newCode()); !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("fifth success: %v, want rate limited", err)
	}
	// Failures do not use up the success budget…
	fail("192.0.2.20", 2)
	succeed("192.0.2.20", 4)
	// … nor successes the failure budget. Once failures are used up, even
	// the right code is refused, so that guessing stops.
	succeed("192.0.2.30", 3)
	fail("192.0.2.30", 3)
	code := newCode()
	if err := join("192.0.2.30", code); !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("join after the failure budget: %v, want rate limited", err)
	}
	// One address's failures do not block another.
	if err := join("192.0.2.40", code); err != nil {
		t.Fatalf("join from a fresh address: %v", err)
	}
	if ok, failed := r.metric(t, `amesh_relay_joins_total{result="ok"}`), r.metric(t, `amesh_relay_joins_total{result="failed"}`); ok != 12 || failed != 5 {
		t.Fatalf("joins ok=%v failed=%v, want 12 and 5", ok, failed)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestWrongJoinsBurnLiveCode(t *testing.T) {
	r := startRelay(t, testConfig())
	ctx := tctx(t)
	target := dial(t, r, nil)
	code, _, err := target.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Wrong codes of the same bucket (first three digits) are guesses at
	// this room.
	for i := range 5 {
		guess := fmt.Sprintf("%s%03d", wire.Bucket(code), (atoi(code[wire.BucketLen:])+1+i)%1000)
		if err := dial(t, r, nil).Join(ctx, guess); !errors.Is(err, client.ErrUnknownCode) {
			t.Fatalf("wrong join %d: %v", i, err)
		}
	}
	if err := target.WaitPeer(ctx); !errors.Is(err, client.ErrCodeBurned) {
		t.Fatalf("target after 5 wrong joins: %v, want ErrCodeBurned", err)
	}
	if err := dial(t, r, nil).Join(ctx, code); !errors.Is(err, client.ErrCodeBurned) {
		t.Fatalf("the right code after 5 wrong joins: %v, want ErrCodeBurned", err)
	}
	if got := rejections(t, r, wire.ReasonCodeBurned); got < 1 {
		t.Fatalf("code_burned rejections = %v", got)
	}
}

func TestFourWrongJoinsDoNotBurn(t *testing.T) {
	r := startRelay(t, testConfig())
	ctx := tctx(t)
	target := dial(t, r, nil)
	code, _, err := target.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		guess := fmt.Sprintf("%s%03d", wire.Bucket(code), (atoi(code[wire.BucketLen:])+1+i)%1000)
		dial(t, r, nil).Join(ctx, guess)
	}
	if err := dial(t, r, nil).Join(ctx, code); err != nil {
		t.Fatalf("join after 4 wrong attempts: %v", err)
	}
}

func TestExpiredCode(t *testing.T) {
	cfg := testConfig()
	cfg.RendezvousTTL = 100 * time.Millisecond
	r := startRelay(t, cfg)
	ctx := tctx(t)
	target := dial(t, r, nil)
	code, lifetime, err := target.Create(ctx)
	if err != nil || lifetime != cfg.RendezvousTTL {
		t.Fatalf("create: %v, lifetime %v", err, lifetime)
	}
	if err := target.WaitPeer(ctx); !errors.Is(err, client.ErrCodeExpired) {
		t.Fatalf("target: %v, want ErrCodeExpired", err)
	}
	if err := dial(t, r, nil).Join(ctx, code); !errors.Is(err, client.ErrCodeExpired) {
		t.Fatalf("late join: %v, want ErrCodeExpired", err)
	}
}

// The rendezvous lifetime only limits the wait for a controller: a session
// that started in time outlives it.
func TestRendezvousLifetimeSeparateFromSession(t *testing.T) {
	cfg := testConfig()
	cfg.RendezvousTTL = 150 * time.Millisecond
	r := startRelay(t, cfg)
	target, controller, _ := pair(t, r)
	ctx := tctx(t)
	time.Sleep(2 * cfg.RendezvousTTL)
	if err := controller.Send(ctx, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if got, err := target.Recv(ctx); err != nil || string(got) != "still here" {
		t.Fatalf("after the rendezvous lifetime: %q, %v", got, err)
	}
}

func TestSessionTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.SessionTimeout = 150 * time.Millisecond
	r := startRelay(t, cfg)
	target, controller, _ := pair(t, r)
	for _, c := range []*client.Conn{target, controller} {
		if err := expectRelayErr(t, c); !errors.Is(err, &client.RelayError{Reason: wire.ReasonSessionLimit}) && !errors.Is(err, client.ErrPeerGone) {
			t.Fatalf("got %v, want session_timeout", err)
		}
	}
}

func TestIdleTimeouts(t *testing.T) {
	t.Run("no create or join", func(t *testing.T) {
		cfg := testConfig()
		cfg.HelloTimeout = 100 * time.Millisecond
		r := startRelay(t, cfg)
		c := dial(t, r, nil)
		if err := expectRelayErr(t, c); !errors.Is(err, &client.RelayError{Reason: wire.ReasonIdle}) {
			t.Fatalf("got %v, want idle_timeout", err)
		}
	})
	t.Run("silent session", func(t *testing.T) {
		cfg := testConfig()
		cfg.IdleTimeout = 200 * time.Millisecond
		r := startRelay(t, cfg)
		target, controller, _ := pair(t, r)
		ctx := tctx(t)
		// Traffic keeps a session alive past the idle timeout…
		for range 4 {
			time.Sleep(cfg.IdleTimeout / 2)
			if err := controller.Send(ctx, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := target.Recv(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// … silence ends it, for both peers.
		if err := expectRelayErr(t, target); !errors.Is(err, &client.RelayError{Reason: wire.ReasonIdle}) && !errors.Is(err, client.ErrPeerGone) {
			t.Fatalf("target: %v", err)
		}
		if err := expectRelayErr(t, controller); err == nil {
			t.Fatal("controller still connected")
		}
		if got := rejections(t, r, wire.ReasonIdle); got < 1 {
			t.Fatalf("idle_timeout rejections = %v", got)
		}
	})
}

func TestPingPong(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.PongWait = 200 * time.Millisecond
	r := startRelay(t, cfg)

	t.Run("client that answers stays", func(t *testing.T) {
		// The client package answers pings while it reads.
		target := dial(t, r, nil)
		ctx := tctx(t)
		if _, _, err := target.Create(ctx); err != nil {
			t.Fatal(err)
		}
		wait, cancel := context.WithTimeout(ctx, 4*cfg.PongWait)
		defer cancel()
		if err := target.WaitPeer(wait); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting target: %v, want to be still waiting", err)
		}
	})
	t.Run("dead client is dropped", func(t *testing.T) {
		ws := rawDial(t, r)
		pings := 0
		ws.SetPingHandler(func(string) error { pings++; return nil }) // never pong
		send(t, ws, wire.Frame{Type: wire.Create})
		if f, err := readFrame(t, ws); err != nil || f.Type != wire.Created {
			t.Fatalf("create: %v %v", f, err)
		}
		f, err := readFrame(t, ws)
		if err != nil || f.Type != wire.Error || f.Reason != wire.ReasonPingTimeout {
			t.Fatalf("got %+v, %v; want a ping_timeout error", f, err)
		}
		if pings < 2 {
			t.Fatalf("relay sent %d pings", pings)
		}
		if got := rejections(t, r, wire.ReasonPingTimeout); got != 1 {
			t.Fatalf("ping_timeout rejections = %v", got)
		}
	})
}

func TestProtocolViolations(t *testing.T) {
	tests := []struct {
		name   string
		frames func(ws *websocket.Conn)
		want   wire.Reason
	}{
		{"data before join", func(ws *websocket.Conn) { send(t, ws, wire.Frame{Type: wire.Data, Payload: []byte("x")}) }, wire.ReasonProtocol},
		{"create twice", func(ws *websocket.Conn) {
			send(t, ws, wire.Frame{Type: wire.Create})
			send(t, ws, wire.Frame{Type: wire.Create})
		}, wire.ReasonProtocol},
		{"data while waiting", func(ws *websocket.Conn) {
			send(t, ws, wire.Frame{Type: wire.Create})
			send(t, ws, wire.Frame{Type: wire.Data})
		}, wire.ReasonProtocol},
		{"relay-only frame", func(ws *websocket.Conn) { ws.WriteMessage(websocket.BinaryMessage, []byte{byte(wire.Peer)}) }, wire.ReasonBadFrame},
		{"unknown type", func(ws *websocket.Conn) { ws.WriteMessage(websocket.BinaryMessage, []byte{'Z', 1}) }, wire.ReasonBadFrame},
		{"short code", func(ws *websocket.Conn) { ws.WriteMessage(websocket.BinaryMessage, []byte("J12345")) }, wire.ReasonBadFrame},
		{"text message", func(ws *websocket.Conn) { ws.WriteMessage(websocket.TextMessage, []byte("C")) }, wire.ReasonBadFrame},
		{"empty message", func(ws *websocket.Conn) { ws.WriteMessage(websocket.BinaryMessage, nil) }, wire.ReasonBadFrame},
	}
	r := startRelay(t, testConfig())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := rawDial(t, r)
			tc.frames(ws)
			for {
				f, err := readFrame(t, ws)
				if err != nil {
					t.Fatalf("connection ended without an error frame: %v", err)
				}
				if f.Type == wire.Error {
					if f.Reason != tc.want {
						t.Fatalf("reason %v, want %v", f.Reason, tc.want)
					}
					break
				}
			}
			// The relay closes after the error.
			if _, err := readFrame(t, ws); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("after the error: %v, want a normal close", err)
			}
		})
	}
}

func TestRefusesClientsWithoutSubprotocol(t *testing.T) {
	r := startRelay(t, testConfig())
	d := websocket.Dialer{}
	_, resp, err := d.Dial(r.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial without subprotocol: %v %v", resp, err)
	}
}

func TestRefusesBrowserOrigins(t *testing.T) {
	r := startRelay(t, testConfig())
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}}
	_, resp, err := d.Dial(r.url, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial with a foreign origin: %v %v", resp, err)
	}
}

func TestTargetLeavesBeforeJoin(t *testing.T) {
	r := startRelay(t, testConfig())
	ctx := tctx(t)
	target := dial(t, r, nil)
	code, _, err := target.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target.Close()
	eventually(t, "room closed", func() bool { return r.metric(t, "amesh_relay_rooms_waiting") == 0 })
	if err := dial(t, r, nil).Join(ctx, code); !errors.Is(err, client.ErrCodeClosed) {
		t.Fatalf("join after the target left: %v, want ErrCodeClosed", err)
	}
}

func TestCodeUsedOnce(t *testing.T) {
	r := startRelay(t, testConfig())
	_, _, code := pair(t, r)
	if err := dial(t, r, nil).Join(tctx(t), code); !errors.Is(err, client.ErrCodeUsed) {
		t.Fatalf("second join: %v, want ErrCodeUsed", err)
	}
}

func TestGracefulShutdownDrainsSessions(t *testing.T) {
	cfg := testConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	store := state.NewMemory(state.Options{}, nil)
	srv, err := server.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{srv: srv}
	l, addr := listen(t)
	r.addr, r.url = addr, "ws://"+addr+"/ws"
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	ctx := tctx(t)
	target, controller, _ := pair(t, r)
	waiting := dial(t, r, nil)
	if _, _, err := waiting.Create(ctx); err != nil {
		t.Fatal(err)
	}

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- srv.Shutdown(ctx) }()

	// A waiting target is told at once, so that it can go elsewhere.
	if err := waiting.WaitPeer(ctx); !errors.Is(err, client.ErrShutdown) {
		t.Fatalf("waiting target: %v, want ErrShutdown", err)
	}
	// New connections are refused.
	eventually(t, "listener closed", func() bool {
		_, err := client.Dial(ctx, r.url, nil)
		return err != nil
	})
	// The running session keeps working…
	if err := controller.Send(ctx, []byte("finish")); err != nil {
		t.Fatal(err)
	}
	if got, err := target.Recv(ctx); err != nil || string(got) != "finish" {
		t.Fatalf("session during drain: %q %v", got, err)
	}
	select {
	case err := <-shutdownDone:
		t.Fatalf("shutdown returned %v while a session runs", err)
	case <-time.After(100 * time.Millisecond):
	}
	// … until it ends.
	controller.Close()
	target.Close()
	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not return after the last session ended")
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}

func TestShutdownDeadlineCutsSessions(t *testing.T) {
	cfg := testConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg, state.NewMemory(state.Options{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	l, addr := listen(t)
	go srv.Serve(l)
	r := &relay{srv: srv, addr: addr, url: "ws://" + addr + "/ws"}
	target, _, _ := pair(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v, want deadline exceeded", err)
	}
	if err := expectRelayErr(t, target); !errors.Is(err, client.ErrShutdown) && !errors.Is(err, client.ErrPeerGone) {
		t.Fatalf("cut session: %v", err)
	}
}

// No pairing code and no payload ever reaches the logs.
func TestLogsHoldNoSecrets(t *testing.T) {
	r := startRelay(t, testConfig())
	ctx := tctx(t)
	target, controller, code := pair(t, r)
	secret := []byte("payload-0123456789")
	controller.Send(ctx, secret)
	target.Recv(ctx)
	// Failed joins, burned and expired codes are logged too.
	dial(t, r, nil).Join(ctx, code)
	dial(t, r, nil).Join(ctx, "999999")
	controller.Close()
	expectRelayErr(t, target)
	eventually(t, "connections closed", func() bool { return r.metric(t, "amesh_relay_connections") == 0 })
	logs := r.logs.String()
	if !strings.Contains(logs, "join failed") {
		t.Fatalf("logs lack the failed join:\n%s", logs)
	}
	for _, s := range []string{code, "999999", string(secret)} {
		if strings.Contains(logs, s) {
			t.Fatalf("logs contain %q:\n%s", s, logs)
		}
	}
}

func TestConcurrentPairings(t *testing.T) {
	r := startRelay(t, testConfig())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			target, controller, _ := pair(t, r)
			ctx := tctx(t)
			msg := []byte(fmt.Sprint("hello ", i))
			if err := controller.Send(ctx, msg); err != nil {
				t.Error(err)
				return
			}
			if got, err := target.Recv(ctx); err != nil || !bytes.Equal(got, msg) {
				t.Errorf("pair %d got %q %v", i, got, err)
			}
		})
	}
	wg.Wait()
}
