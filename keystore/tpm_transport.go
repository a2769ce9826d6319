package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// EnvTPMDevice overrides the default TPM device (see Options.TPMDevice).
const EnvTPMDevice = "AMESH_TPM_DEVICE"

func tpmDeviceName(opts Options) string {
	if opts.TPMDevice != "" {
		return opts.TPMDevice
	}
	if v := os.Getenv(EnvTPMDevice); v != "" {
		return v
	}
	return defaultTPMDevice
}

// openTPMTransport connects to the TPM named by opts. Each operation opens
// its own connection: a resource-managed device (/dev/tpmrm0, TBS) then
// flushes anything a crashed process left, and a TCP simulator, which
// serves one connection at a time, is not monopolised.
func openTPMTransport(opts Options) (transport.TPMCloser, error) {
	dev := tpmDeviceName(opts)
	if addr, ok := strings.CutPrefix(dev, "tcp://"); ok {
		return dialTCPTPM(addr)
	}
	return openPlatformTPM(dev)
}

// tcpTPM speaks the TCP protocol of the TPM reference simulator, which
// swtpm implements: each command is framed as TPM_SEND_COMMAND, locality,
// length, bytes; each response as length, bytes, and a trailing status word.
// It reads with io.ReadFull, since TCP may split a response.
type tcpTPM struct {
	conn net.Conn
}

const (
	tcpSendCommand = 8
	tcpSessionEnd  = 20
	maxTPMResponse = 1 << 16
)

func dialTCPTPM(addr string) (transport.TPMCloser, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to TPM simulator at %s: %w", addr, err)
	}
	return &tcpTPM{conn: conn}, nil
}

func (t *tcpTPM) Send(cmd []byte) ([]byte, error) {
	// A TPM command takes milliseconds; a minute means the simulator hung.
	t.conn.SetDeadline(time.Now().Add(time.Minute))
	hdr := make([]byte, 0, 9+len(cmd))
	hdr = binary.BigEndian.AppendUint32(hdr, tcpSendCommand)
	hdr = append(hdr, 0) // locality
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(cmd)))
	if _, err := t.conn.Write(append(hdr, cmd...)); err != nil {
		return nil, fmt.Errorf("TPM simulator: send: %w", err)
	}
	var n [4]byte
	if _, err := io.ReadFull(t.conn, n[:]); err != nil {
		return nil, fmt.Errorf("TPM simulator: read response length: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxTPMResponse {
		return nil, fmt.Errorf("TPM simulator: response of %d bytes", size)
	}
	rsp := make([]byte, size)
	if _, err := io.ReadFull(t.conn, rsp); err != nil {
		return nil, fmt.Errorf("TPM simulator: read response: %w", err)
	}
	if _, err := io.ReadFull(t.conn, n[:]); err != nil {
		return nil, fmt.Errorf("TPM simulator: read status: %w", err)
	}
	if st := binary.BigEndian.Uint32(n[:]); st != 0 {
		return nil, fmt.Errorf("TPM simulator: status %d", st)
	}
	return rsp, nil
}

func (t *tcpTPM) Close() error {
	t.conn.SetDeadline(time.Now().Add(time.Second))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], tcpSessionEnd)
	_, werr := t.conn.Write(b[:])
	return errors.Join(werr, t.conn.Close())
}
