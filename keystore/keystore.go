// Package keystore keeps a device's private key in the best storage the
// machine has: a TPM 2.0, the macOS Keychain, or a file encrypted under a
// passphrase with Argon2id and XChaCha20-Poly1305. Builds with the
// amesh_secureenclave tag add the Mac's Secure Enclave, used only when asked
// for. An in-memory backend serves tests and demos.
//
// Besides the signing key, every backend keeps two small things for the
// device state (package host/device): a 32-byte sealing secret from which the
// allow list's HMAC key is derived, and the allow list's last committed
// generation, so that restoring an older allow list, or deleting it, is
// detected. docs/keystore.md describes what each backend protects against.
//
// A backend is chosen once, when the key is created (Detect picks the best
// available one), and recorded by the caller; Open then uses exactly that
// backend and never falls back to another.
package keystore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// Backend names, as recorded in identity.json (storageBackend).
const (
	BackendTPM           = "tpm"
	BackendKeychain      = "keychain"
	BackendSecureEnclave = "secure-enclave"
	BackendFile          = "encrypted-file"
	BackendMemory        = "memory"
)

// SecretSize is the size of the sealing secret.
const SecretSize = 32

// Key is a device's signing key. The private key stays in its backend.
type Key interface {
	// PublicKey returns the 33-byte compressed P-256 public key.
	PublicKey() []byte
	// SignDigest signs a 32-byte SHA-256 digest and returns a 64-byte raw
	// r||s signature that is always low-S.
	SignDigest(digest []byte) ([]byte, error)
	// Backend returns the backend name (BackendTPM, BackendFile…).
	Backend() string
	// Close releases what the key holds (TPM connection, secrets in
	// memory). The key cannot sign afterwards.
	Close() error
}

// Store is an opened device key together with the secrets the device state
// needs from the same backend.
type Store interface {
	Key
	// SealingSecret returns a copy of the device-local 32-byte secret that
	// seals the allow list. It is created with the key and never leaves the
	// machine.
	SealingSecret() ([]byte, error)
	// Generation returns the last committed allow-list generation, read
	// from the backend each time (another process may have committed).
	Generation() (uint64, error)
	// CommitGeneration records g as the last committed generation. It never
	// lowers the recorded value. Callers serialise commits with their own
	// lock (host/device holds the allow list's lock file).
	CommitGeneration(g uint64) error
}

var _ protocol.Signer = Key(nil)

// Errors for use with errors.Is. Each error a backend returns wraps at most
// one of them, adds the "keystore:" prefix and context, and says what to do
// next.
var (
	// ErrNotFound means there is no key of this backend in the directory.
	ErrNotFound = errors.New("no key found")
	// ErrExists means a key already exists where one was to be created.
	ErrExists = errors.New("keystore: a key already exists")
	// ErrUnavailable means the backend cannot run on this machine or build.
	ErrUnavailable = errors.New("keystore: backend unavailable")
	// ErrWrongPassphrase means the passphrase does not decrypt the key file.
	ErrWrongPassphrase = errors.New("keystore: wrong passphrase")
	// ErrNoPassphrase means no passphrase source supplied a passphrase.
	ErrNoPassphrase = errors.New("keystore: no passphrase available")
	// ErrInsecurePermissions means a secret file is readable or writable
	// by other users, or a directory is writable by them.
	ErrInsecurePermissions = errors.New("keystore: insecure permissions")
	// ErrCorrupt means a key file is malformed or was tampered with.
	ErrCorrupt = errors.New("keystore: key file corrupt or tampered with")
	// ErrWrongPIN means the TPM refused the key's PIN.
	ErrWrongPIN = errors.New("keystore: wrong TPM PIN")
	// ErrTPMOwnerAuth means the TPM's owner hierarchy has a password.
	ErrTPMOwnerAuth = errors.New("keystore: TPM owner hierarchy requires a password")
	// ErrTPMLockout means the TPM is in dictionary-attack lockout.
	ErrTPMLockout = errors.New("keystore: TPM is in dictionary-attack lockout")
	// ErrTPMKeyLost means the TPM can no longer load this device's key,
	// typically because it was cleared (a firmware update can do that).
	ErrTPMKeyLost = errors.New("keystore: the TPM cannot load this device's key")
	// ErrClosed means the key was closed.
	ErrClosed = errors.New("keystore: key is closed")
)

// ReenrolHint is the command that replaces a lost or unusable key.
const ReenrolHint = "amesh init --force --name NAME"

// Options configure Create, Open and Remove. Only Dir is required; the
// zero value of everything else means the production defaults.
type Options struct {
	// Dir is the device's state directory (AUTH_MESH_DIR or ~/.amesh). Key
	// files live in it, so keys of different directories never collide.
	Dir string
	// KeyAlias names the key in backends with a shared namespace (the
	// Keychain). It must be unique per directory; host/device generates one.
	// Empty means one derived from random bytes.
	KeyAlias string

	// Passphrase lists where the encrypted-file backend looks for its
	// passphrase, in order. Nil means DefaultPassphraseSources(Dir).
	Passphrase []PassphraseSource
	// Argon2 overrides the key-derivation parameters for a new encrypted
	// file (tests use cheap ones). Nil means DefaultArgon2. The parameters
	// are stored in the file, so Open needs no setting.
	Argon2 *Argon2Params

	// TPMDevice is where the TPM is: a device path (default /dev/tpmrm0 on
	// Linux, or AMESH_TPM_DEVICE), "tbs" for Windows' TPM Base Services
	// (the default there), or "tcp://127.0.0.1:PORT" for swtpm or the
	// reference simulator (its command port).
	TPMDevice string
	// TPMPIN protects the TPM key with a PIN when set at creation; it is
	// then needed to sign. Open falls back to AMESH_TPM_PIN.
	TPMPIN []byte

	// Warn receives warnings meant for a person (for example that a
	// generated passphrase was stored beside the key). Nil means os.Stderr.
	Warn io.Writer
}

func (o *Options) warn() io.Writer {
	if o.Warn == nil {
		return os.Stderr
	}
	return o.Warn
}

func (o *Options) check() error {
	if o.Dir == "" {
		return errors.New("keystore: no state directory given")
	}
	return nil
}

// Backends lists the backends this build can use, best first.
func Backends() []string {
	b := []string{BackendTPM}
	if secureEnclaveAvailable {
		b = append(b, BackendSecureEnclave)
	}
	if keychainAvailable {
		b = append(b, BackendKeychain)
	}
	return append(b, BackendFile, BackendMemory)
}

// Create makes a new key with the named backend in opts.Dir. It refuses to
// replace an existing key of that backend (ErrExists): call Remove first.
// On error nothing is left behind.
func Create(backend string, opts Options) (Store, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.KeyAlias == "" {
		alias, err := NewAlias()
		if err != nil {
			return nil, err
		}
		opts.KeyAlias = alias
	}
	switch backend {
	case BackendMemory:
		return createMemory(opts)
	case BackendFile:
		return createFile(opts)
	case BackendTPM:
		return createTPM(opts)
	case BackendKeychain:
		return createKeychain(opts)
	case BackendSecureEnclave:
		return createSecureEnclave(opts)
	}
	return nil, unknownBackend(backend)
}

// Open opens the existing key of the named backend in opts.Dir. It uses
// that backend only: if it is unavailable the error says so, and no other
// backend is tried.
func Open(backend string, opts Options) (Store, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	switch backend {
	case BackendMemory:
		return openMemory(opts)
	case BackendFile:
		return openFile(opts)
	case BackendTPM:
		return openTPM(opts)
	case BackendKeychain:
		return openKeychain(opts)
	case BackendSecureEnclave:
		return openSecureEnclave(opts)
	}
	return nil, unknownBackend(backend)
}

// Remove deletes the key of the named backend in opts.Dir from the backend
// and the directory (TPM NV index, Keychain items, key files). It needs no
// passphrase or PIN, so a forgotten one can still be replaced. A missing key
// is not an error.
func Remove(backend string, opts Options) error {
	if err := opts.check(); err != nil {
		return err
	}
	switch backend {
	case BackendMemory:
		return removeMemory(opts)
	case BackendFile:
		return removeFile(opts)
	case BackendTPM:
		return removeTPM(opts)
	case BackendKeychain:
		return removeKeychain(opts)
	case BackendSecureEnclave:
		return removeSecureEnclave(opts)
	}
	return unknownBackend(backend)
}

func unknownBackend(b string) error {
	known := Backends()
	if !slices.Contains(known, BackendSecureEnclave) {
		known = append(known, BackendSecureEnclave)
	}
	return fmt.Errorf("keystore: unknown backend %q (known: %v)", b, known)
}

// Probe is one step of backend detection, for progress output.
type Probe struct {
	Backend string
	OK      bool
	Detail  string // why it is or is not usable
}

// Detect picks the backend for a new key: the TPM if one answers, then the
// Keychain on macOS, then the encrypted file. It returns the choice and
// the probes made, in order. The memory backend is never chosen, nor is the
// Secure Enclave: it works only in a specially signed binary, so it is used
// only when asked for by name.
func Detect(opts Options) (string, []Probe) {
	var probes []Probe
	if err := probeTPM(opts); err != nil {
		probes = append(probes, Probe{BackendTPM, false, err.Error()})
	} else {
		return BackendTPM, append(probes, Probe{BackendTPM, true, "TPM 2.0 answered at " + tpmDeviceName(opts)})
	}
	if keychainAvailable {
		return BackendKeychain, append(probes, Probe{BackendKeychain, true, "macOS Keychain"})
	}
	probes = append(probes, Probe{BackendKeychain, false, "not macOS (or built without cgo)"})
	return BackendFile, append(probes, Probe{BackendFile, true, "passphrase-encrypted file in " + opts.Dir})
}

// keyPath names a backend's file in the state directory.
func keyPath(dir, name string) string { return filepath.Join(dir, name) }

// checkDigest applies the contract of SignDigest to its argument, before
// any backend spends a signature on it.
func checkDigest(d []byte) error {
	if len(d) != 32 {
		return fmt.Errorf("keystore: digest is %d bytes, want 32 (SHA-256)", len(d))
	}
	return nil
}

// signSoftware signs with a software key under the backend contract.
func signSoftware(k *protocol.PrivateKey, digest []byte) ([]byte, error) {
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	sig, err := k.SignDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("keystore: sign: %w", err)
	}
	return sig, nil
}
