package command

import (
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newWhoami) }

func newWhoami(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Print this device's ID",
		Long:  "Print this device's ID alone, for scripts. It needs no passphrase.",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			id, dir, err := g.readIdentity()
			if err != nil {
				return err
			}
			out := g.out()
			if out.json {
				return out.emitJSON(struct {
					DeviceID     string `json:"deviceId"`
					PublicKey    string `json:"publicKey"`
					FriendlyName string `json:"friendlyName"`
					Backend      string `json:"storageBackend"`
					Dir          string `json:"dir"`
				}{id.DeviceID, id.PublicKey, id.FriendlyName, id.StorageBackend, dir})
			}
			out.printf("%s\n", id.DeviceID)
			return nil
		},
	}
}
