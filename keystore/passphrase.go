package keystore

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/term"
)

// Passphrase sources, environment variables and files, in the order the
// default chain consults them.
const (
	// CredentialName is the systemd credential (LoadCredential= or
	// SetCredentialEncrypted=) read from $CREDENTIALS_DIRECTORY.
	CredentialName = "amesh-passphrase"
	// EnvPassphraseFile names a file holding the passphrase; it must not
	// be readable by group or others.
	EnvPassphraseFile = "AMESH_PASSPHRASE_FILE"
	// EnvPassphrase holds the passphrase itself.
	EnvPassphrase = "AUTH_MESH_PASSPHRASE"
	// StoredPassphraseFile is the generated passphrase kept beside the key
	// (mode 0400) when none was given at creation.
	StoredPassphraseFile = "key.passphrase"
)

// maxPassphrase bounds what is read from a file or a terminal.
const maxPassphrase = 4096

// PassphraseSource supplies the passphrase of an encrypted key file.
type PassphraseSource interface {
	// Name says where the passphrase comes from, for messages. It never
	// contains the passphrase.
	Name() string
	// Passphrase returns the passphrase, or an error wrapping
	// ErrNoPassphrase when this source has none. create is true when a new
	// key is being made (a prompt then asks twice).
	Passphrase(create bool) ([]byte, error)
}

// DefaultPassphraseSources is the chain used when Options.Passphrase is
// nil: the systemd credential, AMESH_PASSPHRASE_FILE, AUTH_MESH_PASSPHRASE,
// the generated passphrase stored beside the key, and a prompt when standard
// input is a terminal.
func DefaultPassphraseSources(dir string) []PassphraseSource {
	return []PassphraseSource{
		SystemdCredential(),
		PassphraseFileFromEnv(EnvPassphraseFile),
		PassphraseEnv(EnvPassphrase),
		StoredPassphrase(dir),
		TerminalPrompt(os.Stdin, os.Stderr),
	}
}

type funcSource struct {
	name string
	fn   func(create bool) ([]byte, error)
}

func (s funcSource) Name() string                           { return s.name }
func (s funcSource) Passphrase(create bool) ([]byte, error) { return s.fn(create) }

// StaticPassphrase is a passphrase given by the program itself.
func StaticPassphrase(p []byte) PassphraseSource {
	p = clone(p)
	return funcSource{"passphrase given by the program", func(bool) ([]byte, error) {
		if len(p) == 0 {
			return nil, ErrNoPassphrase
		}
		return clone(p), nil
	}}
}

// PassphraseEnv reads the passphrase from an environment variable. An
// empty variable counts as unset.
func PassphraseEnv(name string) PassphraseSource {
	return funcSource{"environment variable " + name, func(bool) ([]byte, error) {
		v := os.Getenv(name)
		if v == "" {
			return nil, fmt.Errorf("%w: %s is not set", ErrNoPassphrase, name)
		}
		return []byte(v), nil
	}}
}

// SystemdCredential reads $CREDENTIALS_DIRECTORY/amesh-passphrase, which
// systemd provides to a service with LoadCredential=amesh-passphrase:… or
// LoadCredentialEncrypted=.
func SystemdCredential() PassphraseSource {
	return funcSource{"systemd credential " + CredentialName, func(bool) ([]byte, error) {
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return nil, fmt.Errorf("%w: CREDENTIALS_DIRECTORY is not set", ErrNoPassphrase)
		}
		p, err := readPassphraseFile(filepath.Join(dir, CredentialName), false)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no credential %s", ErrNoPassphrase, CredentialName)
		}
		return p, err
	}}
}

// PassphraseFileFromEnv reads the file named by an environment variable.
// The file is refused if group or others can read or write it.
func PassphraseFileFromEnv(env string) PassphraseSource {
	return funcSource{"file named by " + env, func(bool) ([]byte, error) {
		path := os.Getenv(env)
		if path == "" {
			return nil, fmt.Errorf("%w: %s is not set", ErrNoPassphrase, env)
		}
		return readPassphraseFile(path, true)
	}}
}

// PassphraseFile reads the passphrase from path, refusing a file that group
// or others can read or write. A missing file is an error, not "no
// passphrase": it was named on purpose.
func PassphraseFile(path string) PassphraseSource {
	return funcSource{"file " + path, func(bool) ([]byte, error) {
		return readPassphraseFile(path, true)
	}}
}

// StoredPassphrase reads the generated passphrase kept beside the key in
// dir, if there is one.
func StoredPassphrase(dir string) PassphraseSource {
	path := filepath.Join(dir, StoredPassphraseFile)
	return funcSource{"generated passphrase file " + path, func(create bool) ([]byte, error) {
		if create {
			// A leftover from an older key must not silently protect a
			// new one; creation stores a fresh one if nothing else is set.
			return nil, ErrNoPassphrase
		}
		p, err := readPassphraseFile(path, true)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no %s", ErrNoPassphrase, path)
		}
		return p, err
	}}
}

func readPassphraseFile(path string, checkMode bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	if checkMode {
		if err := checkPrivate(path, fi); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPassphrase+1))
	if err != nil {
		return nil, fmt.Errorf("read passphrase file %s: %w", path, err)
	}
	if len(b) > maxPassphrase {
		return nil, fmt.Errorf("passphrase file %s is larger than %d bytes", path, maxPassphrase)
	}
	// Editors and `echo` add a final newline that nobody means as part of
	// the passphrase.
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return b, nil
}

// TerminalPrompt asks for the passphrase on a terminal, without echo. It
// supplies nothing when in is not a terminal (a service, a pipe, CI).
func TerminalPrompt(in *os.File, out io.Writer) PassphraseSource {
	return funcSource{"terminal prompt", func(create bool) ([]byte, error) {
		if in == nil || !term.IsTerminal(int(in.Fd())) {
			return nil, fmt.Errorf("%w: standard input is not a terminal", ErrNoPassphrase)
		}
		read := func(prompt string) ([]byte, error) {
			fmt.Fprint(out, prompt)
			p, err := term.ReadPassword(int(in.Fd()))
			fmt.Fprintln(out)
			if err != nil {
				return nil, fmt.Errorf("read passphrase: %w", err)
			}
			if len(p) > maxPassphrase {
				return nil, fmt.Errorf("passphrase longer than %d bytes", maxPassphrase)
			}
			return p, nil
		}
		if !create {
			return read("Passphrase for the amesh device key: ")
		}
		p, err := read("New passphrase for the amesh device key (empty: generate one): ")
		if err != nil || len(p) == 0 {
			return nil, errors.Join(err, fmt.Errorf("%w: empty passphrase entered", ErrNoPassphrase))
		}
		again, err := read("Repeat the passphrase: ")
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(p, again) != 1 {
			return nil, errors.New("the two passphrases differ; nothing was created")
		}
		return p, nil
	}}
}

// findPassphrase returns the first passphrase the sources supply and the
// name of the source. A source that fails for another reason than having
// no passphrase stops the search: its error is what the user must fix.
func findPassphrase(sources []PassphraseSource, create bool) ([]byte, string, error) {
	var tried []string
	for _, s := range sources {
		p, err := s.Passphrase(create)
		if err == nil {
			return p, s.Name(), nil
		}
		if !errors.Is(err, ErrNoPassphrase) {
			return nil, s.Name(), fmt.Errorf("keystore: passphrase from %s: %w", s.Name(), err)
		}
		tried = append(tried, s.Name())
	}
	return nil, "", fmt.Errorf("%w (looked at: %v); set %s or %s, or run interactively", ErrNoPassphrase, tried, EnvPassphrase, EnvPassphraseFile)
}

// generatePassphrase makes a random passphrase for a key created without
// one.
func generatePassphrase() ([]byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("keystore: random passphrase: %w", err)
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b[:])), nil
}
