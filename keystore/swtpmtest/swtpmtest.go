// Package swtpmtest starts Debian's swtpm, a software TPM 2.0, for tests:
// one per test, on free loopback ports, with a fresh state directory, so
// that tests never share TPM state or handles. Keystore and CLI tests use it
// to exercise the TPM backend against a real TPM implementation.
//
// When swtpm is not installed the test is skipped with a message naming the
// packages to install, or fails under CI=true (internal/testenv).
package swtpmtest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
)

// TPM is a running swtpm.
type TPM struct {
	// Device is the address to give keystore.Options.TPMDevice (or
	// AMESH_TPM_DEVICE): "tcp://127.0.0.1:PORT".
	Device string
	// StateDir holds the TPM's persistent state.
	StateDir string

	t        testing.TB
	bin      string
	port     int
	ctrlPort int

	mu     sync.Mutex
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

// Start starts swtpm for the test and stops it when the test ends.
func Start(t testing.TB) *TPM {
	t.Helper()
	bin := testenv.LookPath(t, "swtpm", "Debian: apt-get install swtpm swtpm-tools")
	s := &TPM{
		t:        t,
		bin:      bin,
		StateDir: t.TempDir(),
		port:     testenv.FreePort(t),
	}
	// Each port is free when asked for, but a second request may return
	// the first one again, which is no longer held.
	for s.ctrlPort = testenv.FreePort(t); s.ctrlPort == s.port; s.ctrlPort = testenv.FreePort(t) {
	}
	s.Device = "tcp://" + testenv.Addr(s.port)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *TPM) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stderr = new(bytes.Buffer)
	// not-need-init and startup-clear make swtpm power on and run
	// TPM2_Startup(CLEAR) itself, as firmware does on a real machine.
	s.cmd = exec.Command(s.bin, "socket", "--tpm2",
		"--tpmstate", "dir="+s.StateDir,
		"--server", "type=tcp,port="+strconv.Itoa(s.port)+",bindaddr=127.0.0.1",
		"--ctrl", "type=tcp,port="+strconv.Itoa(s.ctrlPort)+",bindaddr=127.0.0.1",
		"--flags", "not-need-init,startup-clear")
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("swtpmtest: start swtpm: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", testenv.Addr(s.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("swtpmtest: swtpm exited at start: %s", s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("swtpmtest: swtpm did not listen on port %d within 10 s: %v\n%s", s.port, err, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends swtpm; its state stays in StateDir.
func (s *TPM) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart stops swtpm and starts it again on the same ports and state, like
// a reboot: transient objects and sessions are gone, NV data survives.
func (s *TPM) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// String describes the instance for test logs.
func (s *TPM) String() string { return fmt.Sprintf("swtpm at %s (state %s)", s.Device, s.StateDir) }
