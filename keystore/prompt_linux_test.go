//go:build linux

package keystore

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/amesh-go/amesh/internal/testenv"
)

func TestTerminalPrompt(t *testing.T) {
	clearPassphraseEnv(t)
	dir := t.TempDir()
	typer, tty := testenv.OpenPTY(t)
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
