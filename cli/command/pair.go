package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newListen, newInvite) }

// EnvRelayURL names the relay used when --relay is not given.
const EnvRelayURL = "AMESH_RELAY_URL"

func relayURL(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v := os.Getenv(EnvRelayURL); v != "" {
		return v, nil
	}
	return "", usageErrorf(`no relay configured: pass --relay URL or set %s.
Pairing goes through an amesh-relay that both devices can reach; start one with
  amesh-relay --listen 127.0.0.1:8787     (go install github.com/amesh-go/amesh/relay/cmd/amesh-relay@latest)
and pass --relay http://127.0.0.1:8787`, EnvRelayURL)
}

type pairFlags struct {
	relay   string
	replace bool
	timeout time.Duration
}

func (f *pairFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.relay, "relay", "", "relay URL (default $"+EnvRelayURL+")")
	cmd.Flags().DurationVar(&f.timeout, "timeout", pairing.DefaultHandshakeTimeout, "give up when the pairing takes longer than this")
}

func newListen(g *globals) *cobra.Command {
	var f pairFlags
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Show a pairing code and wait for a controller (run on the target)",
		Long: `Run this on the target, the machine that will accept requests. It shows a
6-digit pairing code, valid for 60 seconds. On the controller, run
'amesh invite CODE'; it shows a verification code, which you type here.
Then this device trusts the controller; the controller gains no trust from it.

A target trusts one controller unless created with --max-controllers; pairing
another asks whether to replace the existing one (--replace for scripts).`,
		Example: "  amesh listen --relay https://relay.internal\n  AMESH_RELAY_URL=http://127.0.0.1:8787 amesh listen",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runListen(cmd.Context(), g, &f) },
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.replace, "replace", false, "replace existing controllers without asking when the limit is reached")
	return cmd
}

func newInvite(g *globals) *cobra.Command {
	var f pairFlags
	cmd := &cobra.Command{
		Use:   "invite CODE",
		Short: "Pair with a target showing CODE (run on the controller)",
		Long: `Run this on the controller, the machine that will send requests, with the
pairing code the target shows. It prints a verification code for the target's
operator to type. Afterwards the target accepts this device's signed requests.`,
		Example: "  amesh invite 123456 --relay https://relay.internal",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("invite needs the 6-digit pairing code the target shows")
			}
			if _, ok := pairing.NormalizeCode(args[0]); !ok {
				return usageErrorf("%q is not a 6-digit pairing code", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runInvite(cmd.Context(), g, &f, args[0]) },
	}
	f.register(cmd)
	return cmd
}

// countdown shows the time left on a terminal until stop is called.
func countdown(g *globals, expires time.Time) (stop func()) {
	if !isTerminal(g.io.Err) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			left := time.Until(expires).Round(time.Second)
			if left < 0 {
				left = 0
			}
			fmt.Fprintf(g.io.Err, "\rWaiting for the controller… %3ds ", int(left.Seconds()))
			select {
			case <-done:
				fmt.Fprint(g.io.Err, "\r\x1b[K")
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// readLine reads one line from standard input, giving up when ctx ends.
func readLine(ctx context.Context, g *globals) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := g.lines().ReadString('\n')
		if err != nil && line != "" {
			err = nil
		}
		ch <- result{strings.TrimSpace(line), err}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func runListen(ctx context.Context, g *globals, f *pairFlags) error {
	url, err := relayURL(f.relay)
	if err != nil {
		return err
	}
	s, err := g.openState()
	if err != nil {
		return err
	}
	defer s.Close()
	entries, err := s.Devices()
	if err != nil {
		return explain(err, s.Dir())
	}
	id := s.Identity()
	out, errOut := g.out(), g.errOut()
	info := out
	if out.json {
		info = errOut
	}
	var stop func()
	replace := false
	peer, err := pairing.Listen(ctx, pairing.ListenOptions{
		Relay:            pairing.RelayOptions{URL: url},
		Signer:           s.Key(),
		Name:             id.FriendlyName,
		HandshakeTimeout: f.timeout,
		OnCode: func(code string, expires time.Time) {
			info.printf("Pairing code: %s\n", info.style(ansiBold, code[:3]+" "+code[3:]))
			info.printf("On the controller, within %ds, run:  amesh invite %s\n", int(time.Until(expires).Round(time.Second).Seconds()), code)
			stop = countdown(g, expires)
		},
		Prompt: func(ctx context.Context, c pairing.Peer) (string, error) {
			if stop != nil {
				stop()
			}
			errOut.printf("\nController %s (%s) wants to pair.\n", c.DeviceID, c.Name)
			errOut.printf("Enter the verification code it shows (anything else declines): ")
			code, err := readLine(ctx, g)
			if err != nil {
				return "", err
			}
			if needsReplace(entries, id.Controllers(), c) {
				if !f.replace {
					errOut.printf("This device already trusts %d controller(s), its limit.\n", id.Controllers())
					ok, err := confirm(g.lines(), errOut, "Replace existing controller(s)? [y/N] ")
					if err != nil {
						return "", err
					}
					if !ok {
						return "", fmt.Errorf("%w: existing controllers kept", pairing.ErrDeclined)
					}
				}
				replace = true
			}
			return code, nil
		},
		Commit: func(_ context.Context, c pairing.Peer) error {
			_, err := s.Add(device.Entry{DeviceID: c.DeviceID, PublicKey: c.PublicKey.String(), FriendlyName: c.Name,
				AddedBy: "pairing", Role: protocol.RoleController}, device.AddOptions{ReplaceControllers: replace})
			return err
		},
	})
	if stop != nil {
		stop()
	}
	if err != nil {
		return pairingError(err, "listen")
	}
	if out.json {
		return out.emitJSON(struct {
			Paired peerJSON `json:"paired"`
		}{toPeerJSON(peer)})
	}
	out.printf("%s this device now accepts requests from %s (%s).\n", out.style(ansiGreen+ansiBold, "Paired:"), peer.DeviceID, peer.Name)
	return nil
}

// needsReplace reports whether adding c as a controller exceeds the limit.
// Re-pairing a known device updates its entry and never does.
func needsReplace(entries []device.Entry, max int, c pairing.Peer) bool {
	n := 0
	for _, e := range entries {
		if e.DeviceID == c.DeviceID {
			return false
		}
		if e.Role == protocol.RoleController {
			n++
		}
	}
	return n >= max
}

func runInvite(ctx context.Context, g *globals, f *pairFlags, code string) error {
	url, err := relayURL(f.relay)
	if err != nil {
		return err
	}
	s, err := g.openState()
	if err != nil {
		return err
	}
	defer s.Close()
	id := s.Identity()
	out, errOut := g.out(), g.errOut()
	info := out
	if out.json {
		info = errOut
	}
	peer, err := pairing.Invite(ctx, pairing.InviteOptions{
		Relay:            pairing.RelayOptions{URL: url},
		Code:             code,
		Signer:           s.Key(),
		Name:             id.FriendlyName,
		HandshakeTimeout: f.timeout,
		ShowCode: func(v string, t pairing.Peer) {
			info.printf("Target %s (%s) answered.\n", t.DeviceID, t.Name)
			info.printf("Verification code: %s\n", info.style(ansiBold, v[:3]+" "+v[3:]))
			info.printf("Type it on the target. Waiting for its confirmation…\n")
		},
		Commit: func(_ context.Context, t pairing.Peer) error {
			_, err := s.Add(device.Entry{DeviceID: t.DeviceID, PublicKey: t.PublicKey.String(), FriendlyName: t.Name,
				AddedBy: "pairing", Role: protocol.RoleTarget}, device.AddOptions{})
			return err
		},
	})
	if errors.Is(err, pairing.ErrUnconfirmed) {
		return failf(err, "%s (%s) was recorded here as a target, but its final confirmation never arrived; run 'amesh list' on the target to check that it trusts %s", peer.DeviceID, peer.Name, id.DeviceID)
	}
	if err != nil {
		return pairingError(err, "invite")
	}
	if out.json {
		return out.emitJSON(struct {
			Paired peerJSON `json:"paired"`
		}{toPeerJSON(peer)})
	}
	out.printf("%s %s (%s) now accepts this device's requests. Try: amesh curl https://…\n", out.style(ansiGreen+ansiBold, "Paired:"), peer.DeviceID, peer.Name)
	return nil
}

// pairingError turns pairing failures into messages with the next step.
// Every failure leaves this device's files unchanged.
func pairingError(err error, side string) error {
	again := "nothing was changed; start again with 'amesh listen' on the target"
	switch {
	case errors.Is(err, pairing.ErrMismatch):
		return abortedErrorf("the verification codes do not match: %s. If the codes were typed right, someone may be interfering with the relay", again)
	case errors.Is(err, pairing.ErrDeclined):
		return abortedErrorf("pairing declined (%v); %s", err, again)
	case errors.Is(err, pairing.ErrCommitment), errors.Is(err, pairing.ErrBadSignature), errors.Is(err, pairing.ErrProtocol):
		return failf(err, "pairing failed, the other side or the relay broke the protocol (%v); %s", err, again)
	case errors.Is(err, pairing.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return failf(err, "pairing timed out; %s", again)
	case errors.Is(err, pairing.ErrCodeUnknown), errors.Is(err, pairing.ErrCodeExpired), errors.Is(err, pairing.ErrCodeBurned),
		errors.Is(err, pairing.ErrCodeUsed), errors.Is(err, pairing.ErrCodeClosed), errors.Is(err, pairing.ErrBadCode):
		return failf(err, "the pairing code is not valid (%v); ask for a new one: the target runs 'amesh listen' again", err)
	case errors.Is(err, pairing.ErrRateLimited):
		return failf(err, "the relay refused: too many attempts from this address; wait a minute and try again")
	case errors.Is(err, pairing.ErrRelay):
		return failf(err, "cannot use the relay (%v); check --relay and that amesh-relay runs there", err)
	case errors.Is(err, pairing.ErrPeerGone), errors.Is(err, pairing.ErrPeerFailed):
		return failf(err, "the other device left or failed (%v); %s", err, again)
	case errors.Is(err, context.Canceled):
		return &exitError{code: ExitInterrupted, msg: "interrupted; " + again, err: err}
	}
	return failf(err, "%s: %v; %s", side, err, again)
}

// peerJSON is a paired device in --json output.
type peerJSON struct {
	DeviceID     string `json:"deviceId"`
	PublicKey    string `json:"publicKey"`
	FriendlyName string `json:"friendlyName"`
	Role         string `json:"role"` // the role recorded here
}

func toPeerJSON(p pairing.Peer) peerJSON {
	return peerJSON{DeviceID: p.DeviceID, PublicKey: p.PublicKey.String(), FriendlyName: p.Name, Role: p.Role.String()}
}
