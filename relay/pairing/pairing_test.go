package pairing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/relay/state"
)

func relayConfig() server.Config {
	c := server.DefaultConfig()
	c.Version = "test"
	c.MaxConnsPerIP = -1
	c.CreateLimit = state.Limit{Burst: -1}
	c.JoinFailLimit = state.Limit{Burst: -1}
	c.JoinOKLimit = state.Limit{Burst: -1}
	return c
}

func TestPairingThroughRelay(t *testing.T) {
	url := startRelay(t, relayConfig())
	target := newDevice(t, "web-01")
	controller := newDevice(t, "alice's laptop")
	var targetShown, controllerShown Peer
	op := newOperator()
	r := &pairRun{target: target, controller: controller, op: op,
		listenOpts: func(o *ListenOptions) {
			o.Prompt = func(ctx context.Context, p Peer) (string, error) {
				controllerShown = p
				code, err := op.prompt(ctx, p)
				// People type codes with spaces.
				return code[:3] + " " + code[3:], err
			}
		},
		inviteOpts: func(o *InviteOptions) {
			o.ShowCode = func(code string, p Peer) { targetShown = p; op.show(code, p) }
		},
	}
	tgt, ctl := r.run(t, url)
	if tgt.err != nil || ctl.err != nil {
		t.Fatalf("target: %v; controller: %v", tgt.err, ctl.err)
	}
	tb, cb := target.book.list(), controller.book.list()
	if len(tb) != 1 || len(cb) != 1 {
		t.Fatalf("target recorded %d peers, controller %d; want 1 each", len(tb), len(cb))
	}
	if got := tb[0]; !got.PublicKey.Equal(controller.key.Public()) || got.Role != RoleController ||
		got.Name != "alice's laptop" || got.DeviceID != controller.key.Public().DeviceID() {
		t.Fatalf("target recorded %+v", got)
	}
	if got := cb[0]; !got.PublicKey.Equal(target.key.Public()) || got.Role != RoleTarget || got.Name != "web-01" {
		t.Fatalf("controller recorded %+v", got)
	}
	if controllerShown.Name != "alice's laptop" || targetShown.Name != "web-01" {
		t.Fatalf("operators were shown %q and %q", controllerShown.Name, targetShown.Name)
	}
	// The grant is written last.
	if target.book.seq[0] < controller.book.seq[0] {
		t.Fatal("the target recorded the controller before the controller recorded the target")
	}
	if !tgt.peer.PublicKey.Equal(controller.key.Public()) || !ctl.peer.PublicKey.Equal(target.key.Public()) {
		t.Fatal("Listen/Invite returned the wrong peers")
	}
}

func TestWrongVerificationCode(t *testing.T) {
	url := startRelay(t, relayConfig())
	target, controller := newDevice(t, "t"), newDevice(t, "c")
	op := newOperator()
	op.typed = func(shown string) string { return fmt.Sprintf("%06d", (atoi(shown)+1)%1_000_000) }
	tgt, ctl := (&pairRun{target: target, controller: controller, op: op}).run(t, url)
	if !errors.Is(tgt.err, ErrMismatch) || !errors.Is(ctl.err, ErrMismatch) {
		t.Fatalf("target: %v; controller: %v; want ErrMismatch on both", tgt.err, ctl.err)
	}
	if len(target.book.list())+len(controller.book.list()) != 0 {
		t.Fatal("something was recorded after a mismatch")
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestMalformedTypedCodeIsAMismatch(t *testing.T) {
	url := startRelay(t, relayConfig())
	target, controller := newDevice(t, "t"), newDevice(t, "c")
	op := newOperator()
	op.typed = func(shown string) string { return shown + "0" }
	tgt, ctl := (&pairRun{target: target, controller: controller, op: op}).run(t, url)
	if !errors.Is(tgt.err, ErrMismatch) || !errors.Is(ctl.err, ErrMismatch) {
		t.Fatalf("target: %v; controller: %v", tgt.err, ctl.err)
	}
}

func TestTargetDeclines(t *testing.T) {
	url := startRelay(t, relayConfig())
	target, controller := newDevice(t, "t"), newDevice(t, "c")
	tgt, ctl := (&pairRun{target: target, controller: controller,
		listenOpts: func(o *ListenOptions) {
			o.Prompt = func(context.Context, Peer) (string, error) {
				return "", fmt.Errorf("operator refused to replace the controller: %w", ErrDeclined)
			}
		}}).run(t, url)
	if !errors.Is(tgt.err, ErrDeclined) || !errors.Is(ctl.err, ErrDeclined) {
		t.Fatalf("target: %v; controller: %v; want ErrDeclined", tgt.err, ctl.err)
	}
	if len(target.book.list())+len(controller.book.list()) != 0 {
		t.Fatal("something was recorded after declining")
	}
}

func TestHandshakeTimeout(t *testing.T) {
	url := startRelay(t, relayConfig())
	target, controller := newDevice(t, "t"), newDevice(t, "c")
	op := newOperator()
	op.typed = nil
	r := &pairRun{target: target, controller: controller, op: op,
		listenOpts: func(o *ListenOptions) {
			o.HandshakeTimeout = 200 * time.Millisecond
			// The operator walks away.
			o.Prompt = func(ctx context.Context, _ Peer) (string, error) { <-ctx.Done(); return "", ctx.Err() }
		}}
	tgt, ctl := r.run(t, url)
	if !errors.Is(tgt.err, ErrTimeout) {
		t.Fatalf("target: %v, want ErrTimeout", tgt.err)
	}
	if !errors.Is(ctl.err, ErrTimeout) {
		t.Fatalf("controller: %v, want ErrTimeout (the target's)", ctl.err)
	}
	if len(target.book.list())+len(controller.book.list()) != 0 {
		t.Fatal("something was recorded after a timeout")
	}
}

func TestControllerLeavesDuringPrompt(t *testing.T) {
	url := startRelay(t, relayConfig())
	target, controller := newDevice(t, "t"), newDevice(t, "c")
	ictx, cancel := context.WithCancel(context.Background())
	defer cancel()
	promptEnded := make(chan error, 1)
	r := &pairRun{target: target, controller: controller, inviteCtx: ictx,
		inviteOpts: func(o *InviteOptions) {
			// The controller's user presses Ctrl-C while the code is shown.
			o.ShowCode = func(string, Peer) { cancel() }
		},
		listenOpts: func(o *ListenOptions) {
			o.Prompt = func(ctx context.Context, _ Peer) (string, error) {
				<-ctx.Done()
				promptEnded <- ctx.Err()
				return "", ctx.Err()
			}
		}}
	tgt, ctl := r.run(t, url)
	if !errors.Is(ctl.err, context.Canceled) {
		t.Fatalf("controller: %v, want context.Canceled", ctl.err)
	}
	if !errors.Is(tgt.err, ErrPeerGone) {
		t.Fatalf("target: %v, want ErrPeerGone", tgt.err)
	}
	select {
	case <-promptEnded:
	default:
		t.Fatal("the target's prompt was not interrupted")
	}
	if len(target.book.list())+len(controller.book.list()) != 0 {
		t.Fatal("something was recorded")
	}
}

func TestCommitFailures(t *testing.T) {
	t.Run("controller cannot record", func(t *testing.T) {
		url := startRelay(t, relayConfig())
		target, controller := newDevice(t, "t"), newDevice(t, "c")
		controller.book.fail = errors.New("disk full")
		tgt, ctl := (&pairRun{target: target, controller: controller}).run(t, url)
		if ctl.err == nil || !strings.Contains(ctl.err.Error(), "disk full") {
			t.Fatalf("controller: %v", ctl.err)
		}
		if !errors.Is(tgt.err, ErrPeerFailed) {
			t.Fatalf("target: %v, want ErrPeerFailed", tgt.err)
		}
		if len(target.book.list()) != 0 {
			t.Fatal("the target granted access to a controller that did not record it")
		}
	})
	t.Run("target cannot record", func(t *testing.T) {
		url := startRelay(t, relayConfig())
		target, controller := newDevice(t, "t"), newDevice(t, "c")
		target.book.fail = errors.New("disk full")
		tgt, ctl := (&pairRun{target: target, controller: controller}).run(t, url)
		if tgt.err == nil || !strings.Contains(tgt.err.Error(), "disk full") {
			t.Fatalf("target: %v", tgt.err)
		}
		if !errors.Is(ctl.err, ErrUnconfirmed) || !errors.Is(ctl.err, ErrPeerFailed) {
			t.Fatalf("controller: %v, want ErrUnconfirmed and ErrPeerFailed", ctl.err)
		}
		if ctl.peer.PublicKey == nil || !ctl.peer.PublicKey.Equal(target.key.Public()) {
			t.Fatal("ErrUnconfirmed without the target it recorded")
		}
	})
}

func TestNamesAreSanitised(t *testing.T) {
	url := startRelay(t, relayConfig())
	target := newDevice(t, "web\x1b[31m-01\u202e")
	controller := newDevice(t, strings.Repeat("é", 300))
	tgt, ctl := (&pairRun{target: target, controller: controller}).run(t, url)
	if tgt.err != nil || ctl.err != nil {
		t.Fatalf("target: %v; controller: %v", tgt.err, ctl.err)
	}
	if got := controller.book.list()[0].Name; got != "web[31m-01" {
		t.Fatalf("controller recorded the name %q", got)
	}
	if got := target.book.list()[0].Name; got != strings.Repeat("é", MaxNameRunes) {
		t.Fatalf("target recorded the name %q", got)
	}
}

func TestPairingCodeErrors(t *testing.T) {
	cfg := relayConfig()
	cfg.RendezvousTTL = 100 * time.Millisecond
	url := startRelay(t, cfg)
	ctx := context.Background()
	ctl := newDevice(t, "c")
	invite := func(code string) error {
		_, err := Invite(ctx, InviteOptions{Relay: RelayOptions{URL: url}, Code: code, Signer: ctl.key, Commit: ctl.book.commit})
		return err
	}
	t.Run("expired", func(t *testing.T) {
		tgt := newDevice(t, "t")
		codes := make(chan string, 1)
		_, err := Listen(ctx, ListenOptions{Relay: RelayOptions{URL: url}, Signer: tgt.key,
			OnCode: func(c string, _ time.Time) { codes <- c },
			Prompt: newOperator().prompt, Commit: tgt.book.commit})
		if !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("target: %v, want ErrCodeExpired", err)
		}
		if err := invite(<-codes); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("controller: %v, want ErrCodeExpired", err)
		}
	})
	t.Run("burned by 5 wrong joins", func(t *testing.T) {
		cfg := relayConfig()
		url := startRelay(t, cfg)
		tgt := newDevice(t, "t")
		codes := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			_, err := Listen(ctx, ListenOptions{Relay: RelayOptions{URL: url}, Signer: tgt.key,
				OnCode: func(c string, _ time.Time) { codes <- c },
				Prompt: newOperator().prompt, Commit: tgt.book.commit})
			done <- err
		}()
		code := <-codes
		invite := func(code string) error {
			_, err := Invite(ctx, InviteOptions{Relay: RelayOptions{URL: url}, Code: code, Signer: ctl.key, Commit: ctl.book.commit})
			return err
		}
		for i := range 5 {
			wrong := fmt.Sprintf("%s%03d", code[:3], (atoi(code[3:])+1+i)%1000)
			if err := invite(wrong); !errors.Is(err, ErrCodeUnknown) {
				t.Fatalf("wrong join %d: %v", i, err)
			}
		}
		if err := <-done; !errors.Is(err, ErrCodeBurned) {
			t.Fatalf("target: %v, want ErrCodeBurned", err)
		}
		if err := invite(code); !errors.Is(err, ErrCodeBurned) {
			t.Fatalf("right code: %v, want ErrCodeBurned", err)
		}
	})
	t.Run("malformed code never reaches the relay", func(t *testing.T) {
		for _, c := range []string{"", "12345", "1234567", "12a456"} {
			if err := invite(c); !errors.Is(err, ErrBadCode) {
				t.Errorf("Invite(%q) = %v, want ErrBadCode", c, err)
			}
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if err := invite("000000"); !errors.Is(err, ErrCodeUnknown) {
			t.Fatalf("got %v", err)
		}
	})
	if n := len(ctl.book.list()); n != 0 {
		t.Fatalf("the controller recorded %d peers", n)
	}
}

func TestRelayUnreachable(t *testing.T) {
	dev := newDevice(t, "t")
	url := "ws://" + testenv.Addr(testenv.FreePort(t))
	_, err := Listen(context.Background(), ListenOptions{Relay: RelayOptions{URL: url}, Signer: dev.key,
		Prompt: newOperator().prompt, Commit: dev.book.commit})
	if !errors.Is(err, ErrRelay) {
		t.Fatalf("got %v, want ErrRelay", err)
	}
	_, err = Invite(context.Background(), InviteOptions{Relay: RelayOptions{URL: "ftp://x"}, Code: "123456", Signer: dev.key, Commit: dev.book.commit})
	if !errors.Is(err, ErrRelay) {
		t.Fatalf("bad scheme: %v, want ErrRelay", err)
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"123456", "123456", true},
		{" 123 456\n", "123456", true},
		{"123-456", "123456", true},
		{"12345", "12345", false},
		{"１２３４５６", "１２３４５６", false}, // full-width digits are not digits here
		{"12345a", "12345a", false},
	}
	for _, tc := range tests {
		got, ok := NormalizeCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
