package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/amesh-go/amesh/internal/atomicfile"
	"github.com/amesh-go/amesh/internal/strictjson"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// The Secure Enclave backend: the signing key is a P-256 key that the Mac's
// Secure Enclave generates and uses, and whose private half no process ever
// sees. The sealing secret and the allow-list generation are Keychain items,
// exactly as in the keychain backend. key.enclave.json in the state directory
// names the key (its application tag) and records its public key, so that a
// different key under the same tag is noticed. The logic is here, portable
// and tested with a software stand-in; enclave_darwin.go only talks to
// Security.framework.

// EnclaveKeyName is the Secure Enclave backend's key file in the state
// directory.
const EnclaveKeyName = "key.enclave.json"

// errEnclaveKeyNotFound is what enclaveOps.load returns when no key has the
// tag.
var errEnclaveKeyNotFound = errors.New("no Secure Enclave key with this tag")

// enclaveOps is the part of the Secure Enclave the backend uses. Public keys
// cross it as 65-byte uncompressed points (0x04, X, Y), the form
// Security.framework exports.
type enclaveOps interface {
	// create makes a new P-256 key, kept under tag.
	create(tag string) (k enclaveKey, pub []byte, err error)
	// load finds the key kept under tag, or returns errEnclaveKeyNotFound.
	load(tag string) (k enclaveKey, pub []byte, err error)
	// remove deletes the key kept under tag; a missing one is not an error.
	remove(tag string) error
}

// enclaveKey is a handle on one Secure Enclave key.
type enclaveKey interface {
	// signDigest signs a SHA-256 digest and returns an ASN.1 DER
	// ECDSA-Sig-Value (X9.62), whose s may be in either half of its range.
	signDigest(digest []byte) ([]byte, error)
	// close releases the handle; the key stays in the Secure Enclave.
	close()
}

type enclaveFile struct {
	Version   int    `json:"version"`
	Alias     string `json:"alias"`
	PublicKey string `json:"publicKey"`
	Tag       string `json:"tag"`
}

// enclaveTag is the application tag of a directory's Secure Enclave key. The
// alias is unique per directory, and so is the tag.
func enclaveTag(alias string) string { return "amesh." + alias }

// parseEnclaveFile validates the file without the Secure Enclave.
func parseEnclaveFile(data []byte) (*enclaveFile, *protocol.PublicKey, error) {
	if len(data) > maxKeyFileBytes {
		return nil, nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxKeyFileBytes)
	}
	var f enclaveFile
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if f.Version != 1 || f.Alias == "" || len(f.Alias) > maxAliasBytes {
		return nil, nil, fmt.Errorf("%w: version or alias", ErrCorrupt)
	}
	// Version 1 derives the tag from the alias; a file naming another tag
	// would point this directory at some other key.
	if f.Tag != enclaveTag(f.Alias) {
		return nil, nil, fmt.Errorf("%w: tag %q does not belong to alias %q", ErrCorrupt, f.Tag, f.Alias)
	}
	pub, err := protocol.DecodePublicKey(f.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if pub.String() != f.PublicKey {
		return nil, nil, fmt.Errorf("%w: public key is not in standard base64", ErrCorrupt)
	}
	return &f, pub, nil
}

func readEnclaveFile(dir string) (*enclaveFile, *protocol.PublicKey, error) {
	path := keyPath(dir, EnclaveKeyName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("keystore: %w: %s does not exist", ErrNotFound, path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: read Secure Enclave key file: %w", err)
	}
	f, pub, err := parseEnclaveFile(data)
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return f, pub, nil
}

// enclaveStore is an open Secure Enclave key.
type enclaveStore struct {
	pub *protocol.PublicKey
	gen itemGeneration

	// mu is held for reading while the handle is in use, so that Close
	// cannot release it under a signature in progress.
	mu     sync.RWMutex
	key    enclaveKey
	secret []byte
	closed bool
}

func createEnclave(opts Options, se enclaveOps, items itemStore) (_ Store, err error) {
	alias := opts.KeyAlias
	if alias == "" || len(alias) > maxAliasBytes {
		return nil, fmt.Errorf("keystore: key alias must be 1 to %d bytes, not %d", maxAliasBytes, len(alias))
	}
	if err := ensureDir(opts.Dir); err != nil {
		return nil, err
	}
	path := keyPath(opts.Dir, EnclaveKeyName)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	tag := enclaveTag(alias)
	// Two keys under one tag would leave load to pick either.
	switch k, _, err := se.load(tag); {
	case err == nil:
		k.close()
		return nil, fmt.Errorf("%w: the Secure Enclave already holds a key tagged %q; use another key alias", ErrExists, tag)
	case !errors.Is(err, errEnclaveKeyNotFound):
		return nil, fmt.Errorf("keystore: look for an existing Secure Enclave key: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}

	// On failure, undo what exists so far, newest first: a key without its
	// file (or the reverse) is neither usable nor found by Remove.
	undo := []func() error{func() error { wipe(secret); return nil }}
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				err = errors.Join(err, fmt.Errorf("keystore: and undoing it failed: %w", uerr))
			}
		}
	}()

	key, raw, err := se.create(tag)
	if err != nil {
		return nil, fmt.Errorf("keystore: create the Secure Enclave key: %w", err)
	}
	undo = append(undo, func() error {
		key.close()
		if err := se.remove(tag); err != nil {
			return fmt.Errorf("remove the new Secure Enclave key %q: %w", tag, err)
		}
		return nil
	})
	pub, err := protocol.ParseUncompressedPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("keystore: the new Secure Enclave key: %w", err)
	}
	if err := items.put(secretAccount(alias), secret); err != nil {
		return nil, fmt.Errorf("keystore: store the sealing secret in the Keychain: %w", err)
	}
	undo = append(undo, func() error { return items.remove(secretAccount(alias)) })
	gen := itemGeneration{items, genAccount(alias)}
	if err := gen.init(); err != nil {
		return nil, err
	}
	undo = append(undo, func() error { return items.remove(gen.account) })

	f := enclaveFile{Version: 1, Alias: alias, PublicKey: pub.String(), Tag: tag}
	data, _ := json.MarshalIndent(f, "", "  ")
	if err := atomicfile.CreateFile(path, append(data, '\n'), 0o600); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, path)
		}
		return nil, fmt.Errorf("keystore: write Secure Enclave key file: %w", err)
	}
	return &enclaveStore{pub: pub, gen: gen, key: key, secret: secret}, nil
}

func openEnclave(opts Options, se enclaveOps, items itemStore) (Store, error) {
	f, pub, err := readEnclaveFile(opts.Dir)
	if err != nil {
		return nil, err
	}
	key, raw, err := se.load(f.Tag)
	if errors.Is(err, errEnclaveKeyNotFound) {
		return nil, fmt.Errorf("keystore: %w: the Secure Enclave has no key tagged %q for %s (another user, another Mac, or it was deleted); re-enrol with `%s` and pair again", ErrNotFound, f.Tag, opts.Dir, ReenrolHint)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: load the Secure Enclave key %q: %w", f.Tag, err)
	}
	s := &enclaveStore{pub: pub, gen: itemGeneration{items, genAccount(f.Alias)}, key: key}
	if err := s.finishOpen(opts, f, raw); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// finishOpen checks what the key file's key and items must be and reads the
// sealing secret.
func (s *enclaveStore) finishOpen(opts Options, f *enclaveFile, raw []byte) error {
	got, err := protocol.ParseUncompressedPublicKey(raw)
	if err != nil {
		return fmt.Errorf("keystore: the Secure Enclave key %q: %w", f.Tag, err)
	}
	if !got.Equal(s.pub) {
		return fmt.Errorf("%w: the Secure Enclave key tagged %q is not the key %s records", ErrCorrupt, f.Tag, keyPath(opts.Dir, EnclaveKeyName))
	}
	secret, err := s.gen.items.get(secretAccount(f.Alias))
	if errors.Is(err, errItemNotFound) {
		return fmt.Errorf("keystore: %w: the Keychain has no sealing secret %q for %s (another user, another Mac, or it was deleted); re-enrol with `%s` and pair again", ErrNotFound, secretAccount(f.Alias), opts.Dir, ReenrolHint)
	}
	if err != nil {
		return fmt.Errorf("keystore: read the sealing secret from the Keychain: %w", err)
	}
	if len(secret) != SecretSize {
		wipe(secret)
		return fmt.Errorf("%w: sealing secret in the Keychain has %d bytes, want %d", ErrCorrupt, len(secret), SecretSize)
	}
	s.secret = secret
	// A missing generation would otherwise surface only at the first
	// allow-list read, with less context.
	_, err = s.gen.get()
	return err
}

func removeEnclave(opts Options, se enclaveOps, items itemStore) error {
	f, _, err := readEnclaveFile(opts.Dir)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err == nil {
		if err := errors.Join(se.remove(f.Tag), items.remove(secretAccount(f.Alias)), items.remove(genAccount(f.Alias))); err != nil {
			return fmt.Errorf("keystore: remove the Secure Enclave key and its Keychain items: %w", err)
		}
	}
	// A corrupt file cannot name its key; removing it is all we can do.
	return removeEnclaveFile(opts)
}

func removeEnclaveFile(opts Options) error {
	return atomicfile.Remove(keyPath(opts.Dir, EnclaveKeyName))
}

func (s *enclaveStore) PublicKey() []byte { return s.pub.Bytes() }
func (s *enclaveStore) Backend() string   { return BackendSecureEnclave }

func (s *enclaveStore) SignDigest(d []byte) ([]byte, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	der, err := s.key.signDigest(d)
	s.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("keystore: sign with the Secure Enclave: %w", err)
	}
	sig, err := protocol.SignatureFromDER(der)
	if err != nil {
		return nil, fmt.Errorf("keystore: the Secure Enclave returned an unusable signature: %v", err)
	}
	// As with the TPM: a wrong key or a corrupted answer must not leave
	// this function, where it would fail at every server instead.
	if err := s.pub.VerifyDigest(d, sig); err != nil {
		return nil, fmt.Errorf("keystore: the Secure Enclave's signature does not verify: %v", err)
	}
	return sig, nil
}

func (s *enclaveStore) SealingSecret() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return clone(s.secret), nil
}

func (s *enclaveStore) Generation() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.gen.get()
}

func (s *enclaveStore) CommitGeneration(g uint64) error {
	// The write lock also keeps two commits of this process apart.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.gen.commit(g)
}

func (s *enclaveStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.key.close()
		wipe(s.secret)
	}
	return nil
}

// Security framework status codes the backend explains (SecBase.h).
const (
	errSecItemNotFound          = -25300
	errSecInteractionNotAllowed = -25308
	errSecMissingEntitlement    = -34018
)

// enclaveStatusError is a failed Security framework call: an OSStatus, or
// the code of a CFError (whose domain is OSStatus for these calls).
type enclaveStatusError struct {
	call string // the Security function
	code int64
	desc string // the CFError's description, if any
}

func (e *enclaveStatusError) Error() string {
	msg := fmt.Sprintf("%s: error %d", e.call, e.code)
	if e.desc != "" {
		msg += " (" + e.desc + ")"
	}
	switch e.code {
	case errSecMissingEntitlement:
		msg += ": Secure Enclave keys live in the data protection keychain, which only a code-signed binary with a keychain-access-groups entitlement may use; sign amesh with one (docs/keystore.md) or use the keychain backend"
	case errSecInteractionNotAllowed:
		msg += ": the key is usable only while the Mac is unlocked; unlock it and try again"
	}
	return msg
}
