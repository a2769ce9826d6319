//go:build windows

package keystore

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/windowstpm"
)

// defaultTPMDevice selects Windows' TPM Base Services, which arbitrate the
// TPM between processes like /dev/tpmrm0 on Linux.
const defaultTPMDevice = "tbs"

func openPlatformTPM(dev string) (transport.TPMCloser, error) {
	if dev != "tbs" {
		return nil, fmt.Errorf("TPM device %q: on Windows only \"tbs\" or tcp://host:port are supported", dev)
	}
	t, err := windowstpm.Open()
	if err != nil {
		return nil, fmt.Errorf("open TPM through TBS: %w", err)
	}
	return t, nil
}
