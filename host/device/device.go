// Package device keeps this device's state in its state directory
// (AUTH_MESH_DIR, or ~/.amesh): identity.json, which says who the device is
// and where its key lives, and allow_list.json, the devices it trusts,
// sealed with an HMAC under a key derived from the keystore's sealing
// secret.
//
// The allow list carries a generation number inside the seal, and the
// keystore keeps the last committed generation too (a TPM NV counter, a
// Keychain item, or inside the encrypted key file), so that restoring an
// older sealed file, or deleting it, is an integrity failure and never an
// accepted, emptier list. Writes are atomic and serialised with an flock on
// a separate lock file, so concurrent writers from separate processes never
// lose each other's changes and readers never see a partial file.
//
// AllowList implements protocol.AllowList, so a verifier can use it
// directly; an integrity failure surfaces from Lookup as an *IntegrityError,
// which wraps protocol.ErrIntegrity (HTTP 500 allow_list_integrity_failure).
package device

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// File names in the state directory.
const (
	IdentityFile  = "identity.json"
	AllowListFile = "allow_list.json"
	// LockFile is locked (flock) while the allow list is read or written.
	// It is separate from the allow list, which is replaced by rename on
	// every write and so cannot carry a lock itself.
	LockFile = "allow_list.lock"
)

// EnvDir names the state directory; empty means ~/.amesh.
const EnvDir = "AUTH_MESH_DIR"

// DefaultDir returns $AUTH_MESH_DIR, or ~/.amesh.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("device: no %s and no home directory: %w", EnvDir, err)
	}
	return filepath.Join(home, ".amesh"), nil
}

// Errors for use with errors.Is.
var (
	// ErrNoIdentity means the directory holds no device identity yet.
	ErrNoIdentity = errors.New("no device identity")
	// ErrExists means an identity exists where one was to be created.
	ErrExists = errors.New("a device identity already exists")
	// ErrUnknownDevice means no allow-list entry has the given device ID.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrTooManyControllers means adding a controller would exceed the
	// identity's maxControllers; add with ReplaceControllers to replace
	// the existing ones.
	ErrTooManyControllers = errors.New("too many controllers")
	// ErrInvalidEntry means an allow-list entry failed validation.
	ErrInvalidEntry = errors.New("invalid allow-list entry")
)

// IntegrityError reports an allow list that must not be trusted: modified,
// restored from an older copy, deleted, or unreadable. It wraps
// protocol.ErrIntegrity, which verifiers turn into HTTP 500
// allow_list_integrity_failure.
type IntegrityError struct {
	Path   string // the allow-list file
	Reason string
}

// Error says what failed and what to do about it.
func (e *IntegrityError) Error() string {
	return fmt.Sprintf("device: allow list %s failed its integrity check: %s. "+
		"It was changed, restored from an older copy or deleted outside amesh; trust none of it. "+
		"Re-create the device state with `amesh init --force` and pair again", e.Path, e.Reason)
}

// Unwrap makes errors.Is(err, protocol.ErrIntegrity) true.
func (e *IntegrityError) Unwrap() error { return protocol.ErrIntegrity }

func integrity(path, format string, args ...any) error {
	return &IntegrityError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// ensureDir creates the state directory 0700, or checks that an existing
// one is not writable by other users, who could swap our files.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("device: create state directory: %w", err)
	}
	return checkDir(dir)
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("device: state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("device: %s is not a directory", dir)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("device: state directory %s has mode %04o and other users can write to it: run chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
