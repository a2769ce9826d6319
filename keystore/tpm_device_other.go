//go:build !windows

package keystore

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// defaultTPMDevice is the kernel's resource-managed TPM device: it
// virtualises handles per connection and flushes them when a process exits.
const defaultTPMDevice = "/dev/tpmrm0"

func openPlatformTPM(dev string) (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(dev)
	if err != nil {
		return nil, fmt.Errorf("open TPM device %s: %w", dev, err)
	}
	return t, nil
}
