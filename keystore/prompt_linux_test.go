//go:build linux

package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a real pseudo-terminal pair: the prompt reads from the
// terminal side as it would from a person's terminal; the test types into
// the other side.
func openPTY(t *testing.T) (typer, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open terminal side: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestTerminalPrompt(t *testing.T) {
	clearPassphraseEnv(t)
	dir := t.TempDir()
	typer, tty := openPTY(t)
	var out bytes.Buffer
	prompt := []PassphraseSource{PassphraseEnv(EnvPassphrase), TerminalPrompt(tty, &out)}

	typer.WriteString("typed secret\ntyped secret\n")
	s, err := Create(BackendFile, Options{Dir: dir, Argon2: cheapArgon2, Passphrase: prompt, Warn: &out})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !strings.Contains(out.String(), "Repeat") {
		t.Fatalf("creation did not ask twice: %q", out.String())
	}
	if strings.Contains(out.String(), "typed secret") {
		t.Fatal("the passphrase was echoed")
	}

	forgetUnlocks()
	typer.WriteString("typed secret\n")
	r, err := Open(BackendFile, Options{Dir: dir, Passphrase: prompt})
	if err != nil {
		t.Fatalf("open with the typed passphrase: %v", err)
	}
	r.Close()

	forgetUnlocks()
	typer.WriteString("mistyped\n")
	if _, err := Open(BackendFile, Options{Dir: dir, Passphrase: prompt}); !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "terminal prompt") {
		t.Fatalf("mistyped passphrase: %v", err)
	}

	typer.WriteString("one\ntwo\n")
	if _, err := Create(BackendFile, Options{Dir: t.TempDir(), Argon2: cheapArgon2, Passphrase: prompt}); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("different passphrases: %v", err)
	}
}
