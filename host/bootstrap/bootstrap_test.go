package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/relay/provision"
	"github.com/amesh-go/amesh/relay/relaytest"
	"github.com/amesh-go/amesh/wasm/protocol"
)

type controller struct {
	s       *device.State
	pending *Pending
}

func newController(t *testing.T) *controller {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "controller")
	s, err := device.Create(device.CreateOptions{Dir: dir, Name: "laptop", Backend: keystore.BackendMemory})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &controller{s: s, pending: NewPending(dir)}
}

func (c *controller) issue(t *testing.T, relay, name string, ttl time.Duration) *provision.Token {
	t.Helper()
	tok, err := provision.Issue(c.s.Key(), provision.IssueOptions{RelayURL: relay, TTL: ttl, ControllerName: "laptop", TargetName: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.pending.Add(tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// collect records what was delivered, as `amesh provision collect` does.
func (c *controller) collect(t *testing.T) provision.Result {
	t.Helper()
	toks, err := c.pending.Load()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := protocol.ParsePublicKey(c.s.Key().PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := provision.Collect(ctx, provision.CollectOptions{Controller: pub, Tokens: toks,
		OnTarget: func(_ context.Context, tg provision.Target) error {
			_, err := c.s.Add(device.Entry{DeviceID: tg.DeviceID, PublicKey: tg.PublicKey.String(), FriendlyName: tg.Name,
				AddedBy: "provision", Role: protocol.RoleTarget}, device.AddOptions{})
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range res.Targets {
		if err := c.pending.Remove(tg.Token); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

func provisionCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProvisionRoundTrip(t *testing.T) {
	relay := relaytest.Start(t, relaytest.Config(), nil)
	c := newController(t)
	tok := c.issue(t, relay, "api-1", time.Hour)

	dir := filepath.Join(t.TempDir(), "target")
	s, ctl, err := Provision(provisionCtx(t), Options{Dir: dir, Token: tok.Encode(), Backend: keystore.BackendMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ctl.DeviceID != c.s.Identity().DeviceID || s.Identity().FriendlyName != "api-1" {
		t.Fatalf("controller %+v, name %q", ctl, s.Identity().FriendlyName)
	}
	entries, err := s.Devices()
	if err != nil || len(entries) != 1 || entries[0].Role != protocol.RoleController || entries[0].DeviceID != ctl.DeviceID {
		t.Fatalf("target trusts %+v (%v)", entries, err)
	}

	res := c.collect(t)
	if len(res.Targets) != 1 || res.Targets[0].DeviceID != s.Identity().DeviceID {
		t.Fatalf("collected %+v", res)
	}
	got, _ := c.s.Devices()
	if len(got) != 1 || got[0].Role != protocol.RoleTarget || got[0].FriendlyName != "api-1" {
		t.Fatalf("controller records %+v", got)
	}
	if left, _ := c.pending.Load(); len(left) != 0 {
		t.Fatalf("%d tokens still pending", len(left))
	}
	if info, err := os.Stat(filepath.Join(c.s.Dir(), PendingFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("pending file: %v %v", info, err)
	}
}

// A refused token creates nothing: no directory, no key, no file.
func TestRefusedTokensLeaveNothing(t *testing.T) {
	relay := relaytest.Start(t, relaytest.Config(), nil)
	c := newController(t)
	used := c.issue(t, relay, "used", time.Hour)
	first := filepath.Join(t.TempDir(), "first")
	s, _, err := Provision(provisionCtx(t), Options{Dir: first, Token: used.Encode(), Backend: keystore.BackendMemory})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fresh := c.issue(t, relay, "fresh", time.Hour)
	tampered := []byte(fresh.Encode())
	tampered[len(tampered)-5] ^= 1
	cases := []struct {
		name string
		opts Options
		want error
	}{
		{"used", Options{Token: used.Encode()}, provision.ErrUsed},
		{"expired", Options{Token: fresh.Encode(), Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}, provision.ErrExpired},
		{"tampered", Options{Token: string(tampered)}, nil},
		{"garbage", Options{Token: "amesh-bt1.nope"}, provision.ErrMalformed},
		{"foreign pin", Options{Token: fresh.Encode(), ExpectController: "am_someoneelse0000"}, provision.ErrForeign},
		{"relay down", Options{Token: fresh.Encode(), RelayURL: "http://127.0.0.1:1"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "target")
			tc.opts.Dir, tc.opts.Backend = dir, keystore.BackendMemory
			s, _, err := Provision(provisionCtx(t), tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				entries, _ := os.ReadDir(dir)
				t.Fatalf("left %v behind (error was %v)", entries, err)
			}
		})
	}
	// The fresh token was never spent by those refusals: it still works.
	s, _, err = Provision(provisionCtx(t), Options{Dir: filepath.Join(t.TempDir(), "ok"), Token: fresh.Encode(), Backend: keystore.BackendMemory})
	if err != nil {
		t.Fatalf("fresh token after refusals: %v", err)
	}
	s.Close()
}

func TestOpenOrProvision(t *testing.T) {
	relay := relaytest.Start(t, relaytest.Config(), nil)
	c := newController(t)
	tok := c.issue(t, relay, "svc", time.Hour)
	dir := filepath.Join(t.TempDir(), "svc")
	t.Setenv(provision.EnvToken, "")
	if _, _, err := OpenOrProvision(provisionCtx(t), Options{Dir: dir}); !errors.Is(err, device.ErrNoIdentity) {
		t.Fatalf("no identity, no token: %v", err)
	}
	t.Setenv(provision.EnvToken, tok.Encode())
	s, provisioned, err := OpenOrProvision(provisionCtx(t), Options{Dir: dir, Backend: keystore.BackendMemory})
	if err != nil || !provisioned {
		t.Fatalf("provisioned=%v err=%v", provisioned, err)
	}
	s.Close()
	// An existing identity is never replaced by a token.
	if _, _, err := Provision(provisionCtx(t), Options{Dir: dir, Backend: keystore.BackendMemory}); err == nil || !strings.Contains(err.Error(), "enrols a new device only") {
		t.Fatalf("second provision: %v", err)
	}
}
