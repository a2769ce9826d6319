package command

import (
	"context"
	"errors"
	"time"

	"github.com/amesh-go/amesh/host/bootstrap"
	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/relay/provision"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newProvision) }

func newProvision(g *globals) *cobra.Command {
	var (
		name, relay, output string
		ttl, timeout        time.Duration
		wait                bool
	)
	cmd := &cobra.Command{
		Use:   "provision --name NAME",
		Short: "Issue a bootstrap token that enrols a server unattended (run on the controller)",
		Long: `Issue a single-use bootstrap token, signed by this device, for a server that
nobody can type a code into (an autoscaling group, a container). Give it to the
server as AMESH_BOOTSTRAP_TOKEN (or 'amesh init --token'): the server then
trusts this device and delivers its own identity through the relay, where it
waits until 'amesh provision collect' (or --wait) records it here.

The token carries a secret: pass it like a password. docs/PROVISIONING.md says
what a stolen token can and cannot do.`,
		Example: `  amesh provision --name api-1 --relay https://relay.internal --ttl 1h
  amesh provision --name api-1 --output json
  amesh provision collect --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErrorf("--name is required: the name this device will know the server by")
			}
			if output != "text" && output != "json" {
				return usageErrorf("--output must be text or json")
			}
			if ttl < provision.MinTTL || ttl > provision.MaxTTL {
				return usageErrorf("--ttl must be between %v and %v", provision.MinTTL, provision.MaxTTL)
			}
			url, err := relayURL(relay)
			if err != nil {
				return err
			}
			s, err := g.openState()
			if err != nil {
				return err
			}
			defer s.Close()
			id := s.Identity()
			tok, err := provision.Issue(s.Key(), provision.IssueOptions{RelayURL: url, TTL: ttl, ControllerName: id.FriendlyName, TargetName: name})
			if err != nil {
				return errorf(err, "issuing the token")
			}
			if err := bootstrap.NewPending(s.Dir()).Add(tok); err != nil {
				return errorf(err, "keeping the token until its server is collected")
			}
			out, errOut := g.out(), g.errOut()
			if output == "json" || out.json {
				out.json = true
				if err := out.emitJSON(struct {
					Token      string    `json:"token"`
					ID         string    `json:"id"`
					Name       string    `json:"name"`
					Relay      string    `json:"relay"`
					Expires    time.Time `json:"expires"`
					Controller string    `json:"controller"`
				}{tok.Encode(), tok.ID(), name, tok.RelayURL(), tok.Expires().UTC(), id.DeviceID}); err != nil {
					return err
				}
			} else {
				out.printf("%s=%s\n", provision.EnvToken, tok.Encode())
				errOut.printf("Single use, valid until %s. Give it to %s as %s (or: amesh init --token …).\n",
					tok.Expires().Local().Format(time.DateTime), SanitizeName(name), provision.EnvToken)
				errOut.printf("Then record the server here with: amesh provision collect\n")
			}
			if !wait {
				return nil
			}
			return collect(cmd.Context(), g, s, collectFlags{wait: true, timeout: timeout, only: tok})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the server's name, as this device will record it (required)")
	f.DurationVar(&ttl, "ttl", time.Hour, "how long the token stays valid (at most 24h)")
	f.StringVar(&relay, "relay", "", "relay URL (default $"+EnvRelayURL+")")
	f.StringVar(&output, "output", "text", "text (AMESH_BOOTSTRAP_TOKEN=…) or json")
	f.BoolVar(&wait, "wait", false, "after issuing, wait for the server and record it")
	f.DurationVar(&timeout, "timeout", 0, "with --wait: give up after this long (default: until the token expires)")
	cmd.AddCommand(newCollect(g))
	return cmd
}

type collectFlags struct {
	wait    bool
	timeout time.Duration
	relay   string
	only    *provision.Token // wait for this token only
}

func newCollect(g *globals) *cobra.Command {
	var f collectFlags
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Record the servers that enrolled with this device's bootstrap tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.openState()
			if err != nil {
				return err
			}
			defer s.Close()
			return collect(cmd.Context(), g, s, f)
		},
	}
	cmd.Flags().BoolVar(&f.wait, "wait", false, "wait until every pending token is used or expired")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 0, "with --wait: give up after this long")
	cmd.Flags().StringVar(&f.relay, "relay", "", "use this relay instead of the one in each token")
	return cmd
}

func collect(ctx context.Context, g *globals, s *device.State, f collectFlags) error {
	pending := bootstrap.NewPending(s.Dir())
	toks, err := pending.Load()
	if err != nil {
		return errorf(err, "reading the issued tokens")
	}
	if f.only != nil {
		toks = []*provision.Token{f.only}
	}
	out, errOut := g.out(), g.errOut()
	if len(toks) == 0 {
		if out.json {
			return out.emitJSON(struct {
				Collected []peerJSON `json:"collected"`
			}{[]peerJSON{}})
		}
		out.printf("No tokens are waiting: issue one with 'amesh provision --name NAME'.\n")
		return nil
	}
	pub, err := protocol.ParsePublicKey(s.Key().PublicKey())
	if err != nil {
		return err
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	if f.wait && !out.json {
		errOut.printf("Waiting for %d server(s) to enrol…\n", len(toks))
	}
	collected := []peerJSON{}
	res, err := provision.Collect(ctx, provision.CollectOptions{
		Controller: pub, Tokens: toks, Wait: f.wait, RelayURL: f.relay,
		OnTarget: func(_ context.Context, t provision.Target) error {
			if _, err := s.Add(device.Entry{DeviceID: t.DeviceID, PublicKey: t.PublicKey.String(), FriendlyName: t.Name,
				AddedBy: "provision", Role: protocol.RoleTarget}, device.AddOptions{}); err != nil {
				return err
			}
			if err := pending.Remove(t.Token); err != nil {
				return err
			}
			collected = append(collected, peerJSON{DeviceID: t.DeviceID, PublicKey: t.PublicKey.String(), FriendlyName: t.Name, Role: protocol.RoleTarget})
			if !out.json {
				out.printf("Recorded %s (%s) as a target.\n", t.DeviceID, SanitizeName(t.Name))
			}
			return nil
		},
		OnReject: func(t *provision.Token, err error) {
			errOut.printf("Token %s refused: %v\n", t.ID(), err)
		},
		OnRelayError: func(relay string, err error) {
			errOut.printf("Relay %s: %v (retrying)\n", relay, err)
		},
	})
	if rerr := pending.Remove(res.Expired...); rerr != nil {
		err = errors.Join(err, rerr)
	}
	for _, r := range res.Rejected {
		if errors.Is(r.Err, provision.ErrForeign) || errors.Is(r.Err, provision.ErrTampered) || errors.Is(r.Err, provision.ErrUsed) {
			pending.Remove(r.Token)
		}
	}
	if out.json {
		if jerr := out.emitJSON(struct {
			Collected []peerJSON `json:"collected"`
			Pending   int        `json:"pending"`
			Expired   int        `json:"expired"`
		}{collected, len(res.Pending), len(res.Expired)}); jerr != nil {
			return jerr
		}
	} else {
		if len(res.Expired) > 0 {
			out.printf("%d token(s) expired unused and were forgotten.\n", len(res.Expired))
		}
		if len(res.Pending) > 0 {
			out.printf("%d token(s) still waiting for their server.\n", len(res.Pending))
		}
		if len(collected) == 0 && len(res.Pending) == 0 && len(res.Expired) == 0 {
			out.printf("Nothing to collect.\n")
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return failf(err, "no server enrolled within %v; the token stays valid until it expires: collect later with 'amesh provision collect'", f.timeout)
	case errors.Is(err, provision.ErrRelay):
		return failf(err, "cannot collect from the relay (%v); check that amesh-relay runs there, then retry", err)
	}
	return errorf(err, "collecting")
}

// provisionInit enrols this device with a bootstrap token (amesh init --token).
func provisionInit(ctx context.Context, g *globals, dir, name, token, backend string, maxControllers int, pin, relay string) error {
	out := g.out()
	s, ctl, err := bootstrap.Provision(ctx, bootstrap.Options{Dir: dir, Token: token, Name: name, Backend: backend,
		MaxControllers: maxControllers, Keystore: g.keystoreOptions(), ExpectController: pin, RelayURL: relay})
	if err != nil {
		return tokenError(err, dir)
	}
	defer s.Close()
	id := s.Identity()
	if out.json {
		return out.emitJSON(struct {
			device.Identity
			Dir        string   `json:"dir"`
			Controller peerJSON `json:"controller"`
		}{id, dir, peerJSON{DeviceID: ctl.DeviceID, PublicKey: ctl.PublicKey.String(), FriendlyName: ctl.Name, Role: protocol.RoleController}})
	}
	out.printf("\n%s\n\n", out.style(ansiGreen+ansiBold, "Device identity created from a bootstrap token"))
	out.printf("  Device ID:      %s\n", out.style(ansiBold, id.DeviceID))
	out.printf("  Public Key:     %s\n", id.PublicKey)
	out.printf("  Backend:        %s\n", id.StorageBackend)
	out.printf("  Friendly Name:  %s\n", SanitizeName(id.FriendlyName))
	out.printf("  Controller:     %s (%s), trusted\n", ctl.DeviceID, SanitizeName(ctl.Name))
	out.printf("\nThe controller records this device when it runs 'amesh provision collect'.\n")
	return nil
}

func tokenError(err error, dir string) error {
	nothing := "nothing was created"
	switch {
	case errors.Is(err, device.ErrExists):
		return failf(err, "%v; this directory already has an identity: use another AUTH_MESH_DIR, or remove it with 'amesh init --force' first", err)
	case errors.Is(err, provision.ErrMalformed), errors.Is(err, provision.ErrTampered):
		return failf(err, "the bootstrap token is damaged or was altered (%v); %s. Ask the controller for a new one: amesh provision --name NAME", err, nothing)
	case errors.Is(err, provision.ErrExpired):
		return failf(err, "the bootstrap token has expired; %s. Ask the controller for a new one", nothing)
	case errors.Is(err, provision.ErrUsed):
		return failf(err, "the bootstrap token was already used (tokens are single use); %s. Ask the controller for a new one", nothing)
	case errors.Is(err, provision.ErrForeign):
		return failf(err, "the bootstrap token is not from the expected controller (%v); %s", err, nothing)
	case errors.Is(err, provision.ErrRelay), errors.Is(err, context.DeadlineExceeded):
		return failf(err, "cannot reach the token's relay (%v); %s. Check that amesh-relay runs there (or pass --relay), then retry: the token is still valid", err, nothing)
	case errors.Is(err, bootstrap.ErrNoToken):
		return usageErrorf("no bootstrap token: pass --token or set %s", provision.EnvToken)
	}
	return failf(err, "enrolling with the bootstrap token: %v; %s", err, nothing)
}
