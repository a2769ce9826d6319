package command

import (
	"time"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newList) }

func newList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "Show this device and the devices it trusts",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
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
			out := g.out()
			if out.json {
				if entries == nil {
					entries = []device.Entry{}
				}
				return out.emitJSON(struct {
					Device  device.Identity `json:"device"`
					Trusted []device.Entry  `json:"trusted"`
				}{id, entries})
			}
			out.printf("%s\n", out.style(ansiBold, "This device"))
			out.printf("  %s  %s  %s\n\n", id.DeviceID, SanitizeName(id.FriendlyName), out.style(ansiDim, "("+id.StorageBackend+")"))
			if len(entries) == 0 {
				out.printf("No trusted devices yet. Pair one with 'amesh listen' (here) and 'amesh invite CODE' (there).\n")
				return nil
			}
			out.printf("%s (%d)\n", out.style(ansiBold, "Trusted devices"), len(entries))
			out.printf("  %-11s %-20s %-24s %s\n", "ROLE", "DEVICE ID", "NAME", "ADDED")
			for _, e := range entries {
				out.printf("  %-11s %-20s %-24s %s\n", e.Role, e.DeviceID, SanitizeName(e.FriendlyName),
					e.AddedAt.Local().Format(time.DateTime))
			}
			out.printf("\n%s\n", out.style(ansiDim, "controller: may sign requests to this device.  target: a device this one sends requests to."))
			return nil
		},
	}
}

// roleOf describes a role for confirmations.
func roleOf(role string) string {
	if role == protocol.RoleController {
		return "controller: its requests to this device will be refused"
	}
	return "target: this device will no longer send it requests"
}
