//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/redistest"
	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/relay/provision"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// instance is an amesh-relay process.
type instance struct {
	cmd  *exec.Cmd
	url  string
	addr string
	logs *testenv.Logs
}

// startInstances runs n amesh-relay processes sharing one Redis, as behind
// a load balancer.
func startInstances(t *testing.T, redis *redistest.Server, n int) []*instance {
	t.Helper()
	var out []*instance
	for range n {
		cmd, addr, logs := startBinary(t, "--redis", redis.URL(), "--log-level", "debug", "--ping-interval", "500ms", "--pong-wait", "2s")
		out = append(out, &instance{cmd: cmd, url: "ws://" + addr, addr: addr, logs: logs})
	}
	return out
}

// kill ends the process at once, as a crash or an OOM kill would: no
// drain, no goodbye to its clients or to Redis.
func (i *instance) kill() {
	i.cmd.Process.Kill()
	i.cmd.Wait()
}

// recorder stands for a device's allow list.
type recorder struct {
	mu    sync.Mutex
	peers []pairing.Peer
}

func (r *recorder) commit(_ context.Context, p pairing.Peer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers = append(r.peers, p)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.peers)
}

// hooks let a test act at chosen moments of a pairing.
type hooks struct {
	prompt        func()
	targetCommit  func()
	controlCommit func()
}

type pairOutcome struct {
	target, controller       *recorder
	targetErr, controllerErr error
}

// pairAcross runs Listen through targetURL and Invite through
// controllerURL.
func pairAcross(t *testing.T, targetURL, controllerURL string, h hooks, timeout time.Duration) pairOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tkey, _ := protocol.GeneratePrivateKey(nil)
	ckey, _ := protocol.GeneratePrivateKey(nil)
	o := pairOutcome{target: &recorder{}, controller: &recorder{}}
	codes, shown := make(chan string, 1), make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := pairing.Listen(ctx, pairing.ListenOptions{
			Relay: pairing.RelayOptions{URL: targetURL}, Signer: tkey, Name: "web-01", HandshakeTimeout: timeout,
			OnCode: func(c string, _ time.Time) { codes <- c },
			Prompt: func(ctx context.Context, _ pairing.Peer) (string, error) {
				select {
				case c := <-shown:
					if h.prompt != nil {
						h.prompt()
					}
					return c, nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			},
			Commit: func(ctx context.Context, p pairing.Peer) error {
				if h.targetCommit != nil {
					h.targetCommit()
				}
				return o.target.commit(ctx, p)
			},
		})
		done <- err
		close(codes)
	}()
	code, ok := <-codes
	if !ok {
		o.targetErr = <-done
		return o
	}
	_, o.controllerErr = pairing.Invite(ctx, pairing.InviteOptions{
		Relay: pairing.RelayOptions{URL: controllerURL}, Code: code, Signer: ckey, Name: "laptop", HandshakeTimeout: timeout,
		ShowCode: func(c string, _ pairing.Peer) { shown <- c },
		Commit: func(ctx context.Context, p pairing.Peer) error {
			if h.controlCommit != nil {
				h.controlCommit()
			}
			return o.controller.commit(ctx, p)
		},
	})
	o.targetErr = <-done
	return o
}

// TestBinaryPairingAcrossInstances: two amesh-relay processes on one
// Redis; the target listens through one, the controller invites through
// the other.
func TestBinaryPairingAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	redis := redistest.Start(t)
	in := startInstances(t, redis, 2)
	o := pairAcross(t, in[0].url, in[1].url, hooks{}, 5*time.Second)
	if o.targetErr != nil || o.controllerErr != nil || o.target.count() != 1 || o.controller.count() != 1 {
		t.Fatalf("pairing across instances: target %v, controller %v", o.targetErr, o.controllerErr)
	}
	for _, i := range in {
		if !strings.Contains(i.logs.String(), `"state":"redis redis://127.0.0.1:`) {
			t.Fatalf("the instance does not say it uses Redis:\n%s", i.logs)
		}
	}
	// A provisioning round trip across the processes too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ckey, _ := protocol.GeneratePrivateKey(nil)
	tkey, _ := protocol.GeneratePrivateKey(nil)
	tok, err := provision.Issue(ckey, provision.IssueOptions{RelayURL: in[0].url, ControllerName: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provision.Deliver(ctx, tok, provision.DeliverOptions{Signer: tkey, Commit: func(context.Context, provision.Controller) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	var got []provision.Target
	if _, err := provision.Collect(ctx, provision.CollectOptions{Controller: ckey.Public(), Tokens: []*provision.Token{tok}, RelayURL: in[1].url,
		OnTarget: func(_ context.Context, tg provision.Target) error { got = append(got, tg); return nil }}); err != nil || len(got) != 1 {
		t.Fatalf("collect through the other process: %v, %v", got, err)
	}
}

// TestKillInstanceMidPairing kills one relay process at each step of a
// pairing that spans two: the devices fail or finish, but the target never
// trusts a controller that did not record it.
func TestKillInstanceMidPairing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	redis := redistest.Start(t)
	tests := []struct {
		name string
		// kill returns the hooks that kill an instance: 0 is the
		// target's, 1 the controller's.
		kill          func(in []*instance) hooks
		targetRecords bool
	}{
		{"target's instance, while its operator types", func(in []*instance) hooks { return hooks{prompt: in[0].kill} }, false},
		{"controller's instance, while its operator types", func(in []*instance) hooks { return hooks{prompt: in[1].kill} }, false},
		{"controller's instance, as the controller records", func(in []*instance) hooks { return hooks{controlCommit: in[1].kill} }, false},
		{"target's instance, as the controller records", func(in []*instance) hooks { return hooks{controlCommit: in[0].kill} }, false},
		{"target's instance, as the target records", func(in []*instance) hooks { return hooks{targetCommit: in[0].kill} }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := startInstances(t, redis, 2)
			o := pairAcross(t, in[0].url, in[1].url, tc.kill(in), 2*time.Second)
			if o.target.count() > 0 && o.controller.count() == 0 {
				t.Fatalf("one-sided trust: the target recorded the controller, the controller recorded nothing (target %v, controller %v)",
					o.targetErr, o.controllerErr)
			}
			if got := o.target.count() > 0; got != tc.targetRecords {
				t.Fatalf("target recorded: %v, want %v (target %v, controller %v)", got, tc.targetRecords, o.targetErr, o.controllerErr)
			}
			if o.controllerErr == nil && o.target.count() == 0 {
				t.Fatalf("the controller reports success but the target recorded nothing")
			}
			if !tc.targetRecords && o.targetErr == nil {
				t.Fatal("the target reports success without recording")
			}
			// The surviving instance still pairs.
			alive := in[1]
			if alive.cmd.ProcessState != nil {
				alive = in[0]
			}
			if o := pairAcross(t, alive.url, alive.url, hooks{}, 5*time.Second); o.targetErr != nil || o.controllerErr != nil {
				t.Fatalf("pairing on the surviving instance: %v / %v", o.targetErr, o.controllerErr)
			}
		})
	}
}

// TestBinaryRedisDown: with Redis stopped, the relay refuses with
// "unavailable" (clients say to retry later), /health reports it, and the
// same processes serve again once Redis is back.
func TestBinaryRedisDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	redis := redistest.Start(t)
	in := startInstances(t, redis, 2)
	redis.Stop()
	o := pairAcross(t, in[0].url, in[1].url, hooks{}, 2*time.Second)
	if !errors.Is(o.targetErr, pairing.ErrRelay) || !errors.Is(o.targetErr, client.ErrUnavailable) ||
		!strings.Contains(o.targetErr.Error(), "unavailable; retry later") {
		t.Fatalf("listen with Redis down: %v", o.targetErr)
	}
	resp, err := http.Get("http://" + in[1].addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h server.Health
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || h.Store != "unavailable" {
		t.Fatalf("/health with Redis down: %d %+v", resp.StatusCode, h)
	}
	if !strings.Contains(in[0].logs.String(), "Redis unavailable") {
		t.Fatalf("the outage is not logged:\n%s", in[0].logs)
	}
	redis.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o = pairAcross(t, in[0].url, in[1].url, hooks{}, 5*time.Second)
		if o.targetErr == nil && o.controllerErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pairing after Redis came back: %v / %v", o.targetErr, o.controllerErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(in[0].logs.String(), "Redis available again") {
		t.Fatalf("the recovery is not logged:\n%s", in[0].logs)
	}
}
