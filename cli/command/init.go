package command

import (
	"os"
	"slices"
	"strings"

	"github.com/amesh-go/amesh/host/bootstrap"
	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/relay/provision"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newInit) }

func newInit(g *globals) *cobra.Command {
	var (
		name           string
		backend        string
		force          bool
		maxControllers int
		token, pin     string
		relay          string
	)
	cmd := &cobra.Command{
		Use:   "init --name NAME | --token TOKEN",
		Short: "Create this device's identity and key",
		Long: `Create this device's identity: a P-256 key in the best storage available
(TPM 2.0, then the macOS Keychain, then an Argon2id-encrypted file), and an
empty, sealed list of trusted devices.

The encrypted-file backend takes its passphrase from the systemd credential
amesh-passphrase, AMESH_PASSPHRASE_FILE, AUTH_MESH_PASSPHRASE or a prompt;
with none of them, it generates one and stores it beside the key.

With a bootstrap token (--token, or AMESH_BOOTSTRAP_TOKEN), the device is
enrolled unattended: it trusts the controller that issued the token and
delivers its identity to it through the relay. A token that is damaged,
expired, already used or unreachable creates nothing.`,
		Example: `  amesh init --name build-server
  AMESH_BOOTSTRAP_TOKEN=amesh-bt1.… amesh init
  amesh init --name laptop --backend encrypted-file
  amesh init --name api --max-controllers 3 --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = os.Getenv(provision.EnvToken)
			}
			if token != "" {
				if force {
					return usageErrorf("--force does not go with a bootstrap token: a token enrols a new device only")
				}
				if maxControllers < 1 || maxControllers > device.MaxControllersLimit {
					return usageErrorf("--max-controllers must be between 1 and %d", device.MaxControllersLimit)
				}
				dir, err := g.stateDir()
				if err != nil {
					return err
				}
				return provisionInit(cmd.Context(), g, dir, strings.TrimSpace(name), token, backend, maxControllers, pin, relay)
			}
			if strings.TrimSpace(name) == "" {
				return usageErrorf("--name is required: a friendly name for this device, such as --name build-server")
			}
			if backend != "" && backend != "auto" && !slices.Contains(allBackends, backend) {
				return usageErrorf("unknown backend %q: use one of %s", backend, strings.Join(allBackends, ", "))
			}
			if maxControllers < 1 || maxControllers > device.MaxControllersLimit {
				return usageErrorf("--max-controllers must be between 1 and %d", device.MaxControllersLimit)
			}
			dir, err := g.stateDir()
			if err != nil {
				return err
			}
			out, errOut := g.out(), g.errOut()
			var probes []keystore.Probe
			progress := func(p keystore.Probe) {
				probes = append(probes, p)
				if out.json {
					return
				}
				state := errOut.style(ansiDim, "not available")
				if p.OK {
					state = errOut.style(ansiGreen, "available")
				}
				errOut.printf("  %-16s %s%s\n", p.Backend, state, detail(p.Detail))
			}
			if !out.json && (backend == "" || backend == "auto") {
				errOut.printf("Detecting key storage:\n")
			}
			s, err := device.Create(device.CreateOptions{
				Dir: dir, Name: name, Backend: backend, MaxControllers: maxControllers, Force: force,
				Keystore: g.keystoreOptions(), Progress: progress,
			})
			if err != nil {
				return explain(err, dir)
			}
			defer s.Close()
			id := s.Identity()
			if id.StorageBackend == keystore.BackendMemory {
				errOut.printf("%s the memory backend keeps the key only while this command runs: later commands cannot use it. Use it for tests and demos.\n",
					errOut.style(ansiRed+ansiBold, "warning:"))
			}
			if out.json {
				return out.emitJSON(struct {
					device.Identity
					Dir    string           `json:"dir"`
					Probes []keystore.Probe `json:"probes,omitempty"`
				}{id, dir, probes})
			}
			out.printf("\n%s\n\n", out.style(ansiGreen+ansiBold, "Device identity created"))
			out.printf("  Device ID:      %s\n", out.style(ansiBold, id.DeviceID))
			out.printf("  Public Key:     %s\n", id.PublicKey)
			out.printf("  Backend:        %s\n", id.StorageBackend)
			out.printf("  Friendly Name:  %s\n", SanitizeName(id.FriendlyName))
			if id.MaxControllers > 1 {
				out.printf("  Controllers:    up to %d\n", id.MaxControllers)
			}
			out.printf("  Directory:      %s\n", dir)
			out.printf("\nNext steps:\n")
			out.printf("  On a server this device controls:  amesh listen        (then, here: amesh invite CODE)\n")
			out.printf("  To see trusted devices:            amesh list\n")
			out.printf("  To try a protected service:        amesh curl https://service.example/\n")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "friendly name of this device (required)")
	f.StringVar(&backend, "backend", "", "key storage: "+strings.Join(allBackends, ", ")+" (default: detect the best)")
	f.BoolVar(&force, "force", false, "replace an existing identity, deleting its key and trusted devices")
	f.IntVar(&maxControllers, "max-controllers", 1, "how many controllers may be trusted at once")
	f.StringVar(&token, "token", "", "enrol with a bootstrap token from 'amesh provision' (default $"+provision.EnvToken+")")
	f.StringVar(&pin, "controller", "", "with --token: accept only a token from this controller ID (default $"+bootstrap.EnvControllerID+")")
	f.StringVar(&relay, "relay", "", "with --token: use this relay instead of the token's")
	cmd.RegisterFlagCompletionFunc("backend", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return allBackends, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// allBackends are the --backend values; memory keys live only as long as
// the process and serve tests and demos.
var allBackends = []string{keystore.BackendTPM, keystore.BackendKeychain, keystore.BackendSecureEnclave, keystore.BackendFile, keystore.BackendMemory}

func detail(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
