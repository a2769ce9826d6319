package command

import (
	"bufio"
	"errors"
	"io"
	"strings"

	"github.com/amesh-go/amesh/host/device"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newRevoke) }

func newRevoke(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke DEVICE_ID",
		Short: "Stop trusting a device",
		Long: `Remove a device from this device's list of trusted devices and reseal the
list. A revoked controller's requests are refused from then on (servers reload
the list when it changes).`,
		Example: "  amesh revoke am_l-nR0qZC-ddxs6MB\n  amesh revoke am_l-nR0qZC-ddxs6MB --yes",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("revoke needs one device ID (see 'amesh list')")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			target := args[0]
			s, err := g.openState()
			if err != nil {
				return err
			}
			defer s.Close()
			entries, err := s.Devices()
			if err != nil {
				return explain(err, s.Dir())
			}
			var found *device.Entry
			for i := range entries {
				if entries[i].DeviceID == target {
					found = &entries[i]
				}
			}
			if found == nil {
				return unknownDevice(target, entries)
			}
			out, errOut := g.out(), g.errOut()
			if !yes {
				errOut.printf("Revoke %s (%s, %s)?\n  %s\n", found.DeviceID, SanitizeName(found.FriendlyName), found.Role, roleOf(found.Role))
				ok, err := confirm(g.lines(), errOut, "Revoke it? [y/N] ")
				if err != nil {
					return err
				}
				if !ok {
					return abortedErrorf("not revoked; nothing changed")
				}
			}
			removed, err := s.Remove(target)
			if errors.Is(err, device.ErrUnknownDevice) {
				// Another process removed it meanwhile.
				return unknownDevice(target, entries)
			}
			if err != nil {
				return explain(err, s.Dir())
			}
			if out.json {
				return out.emitJSON(struct {
					Revoked device.Entry `json:"revoked"`
				}{removed})
			}
			out.printf("Revoked %s (%s).\n", removed.DeviceID, SanitizeName(removed.FriendlyName))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func unknownDevice(id string, entries []device.Entry) error {
	var b strings.Builder
	b.WriteString("no trusted device has ID " + id)
	if len(entries) == 0 {
		b.WriteString("; this device trusts no device yet")
	} else {
		b.WriteString("; known devices:")
		for _, e := range entries {
			b.WriteString("\n  " + e.DeviceID + "  " + e.Role + "  " + SanitizeName(e.FriendlyName))
		}
	}
	return failf(device.ErrUnknownDevice, "%s", b.String())
}

// confirm asks a yes/no question, default no. End of input is no.
func confirm(in *bufio.Reader, p *printer, prompt string) (bool, error) {
	p.printf("%s", prompt)
	line, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, failf(err, "reading the answer: %v", err)
	}
	if errors.Is(err, io.EOF) && line == "" {
		p.printf("\n")
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
