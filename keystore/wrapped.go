package keystore

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/amesh-go/amesh/internal/atomicfile"
	"github.com/amesh-go/amesh/internal/strictjson"
	"github.com/amesh-go/amesh/wasm/protocol"
	"golang.org/x/crypto/chacha20poly1305"
)

// The Keychain backend keeps the key material in a file in the state
// directory, encrypted under a random 32-byte wrapping key that lives in the
// login Keychain (never synced to iCloud; see macKeychain for what macOS
// enforces there). The allow-list generation is a second item. The logic
// is here, portable and tested; keychain_darwin.go only moves items in and
// out of the Keychain.

// WrappedKeyName is the Keychain backend's key file in the state directory.
const WrappedKeyName = "key.keychain.json"

// KeychainService is the Keychain service name of amesh's items; the
// account is the key alias plus a suffix, unique per state directory.
const KeychainService = "amesh"

// errItemNotFound is what an itemStore returns for a missing item.
var errItemNotFound = errors.New("keychain item not found")

// itemStore is the part of the Keychain the backend uses: small secrets by
// account name.
type itemStore interface {
	get(account string) ([]byte, error)
	// put creates or replaces an item.
	put(account string, data []byte) error
	// remove deletes an item; a missing one is not an error.
	remove(account string) error
}

// itemGeneration is the allow-list generation kept as an 8-byte big-endian
// Keychain item, for the backends whose secrets live in the Keychain. The
// Keychain has no monotonic counter, so commit only ever writes a higher
// value; callers serialise commits (Store.CommitGeneration).
type itemGeneration struct {
	items   itemStore
	account string
}

// init records generation 0 for a new key.
func (g itemGeneration) init() error {
	if err := g.items.put(g.account, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
		return fmt.Errorf("keystore: store the generation in the Keychain: %w", err)
	}
	return nil
}

func (g itemGeneration) get() (uint64, error) {
	b, err := g.items.get(g.account)
	if errors.Is(err, errItemNotFound) {
		return 0, fmt.Errorf("keystore: %w: the Keychain has no allow-list generation item %q (it was deleted, or this is another user or Mac); re-enrol with `%s` and pair again", ErrNotFound, g.account, ReenrolHint)
	}
	if err != nil {
		return 0, fmt.Errorf("keystore: read the allow-list generation from the Keychain: %w", err)
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: Keychain generation item has %d bytes", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func (g itemGeneration) commit(n uint64) error {
	cur, err := g.get()
	if err != nil {
		return err
	}
	if n <= cur {
		return nil
	}
	if err := g.items.put(g.account, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return fmt.Errorf("keystore: write the allow-list generation to the Keychain: %w", err)
	}
	return nil
}

type wrappedFile struct {
	Version    int    `json:"version"`
	Alias      string `json:"alias"`
	PublicKey  string `json:"publicKey"`
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

const wrappedADPrefix = "amesh keychain-wrapped key\x00"

func (f *wrappedFile) ad() []byte {
	return []byte(wrappedADPrefix + f.Alias + "\x00" + f.PublicKey)
}

// maxAliasBytes bounds key aliases; Keychain account names and application
// tags are built from them.
const maxAliasBytes = 128

// The Keychain accounts of a key's items, by alias.
func wrapAccount(alias string) string   { return alias + ".wrap" }
func genAccount(alias string) string    { return alias + ".generation" }
func secretAccount(alias string) string { return alias + ".secret" }

// parseWrappedFile validates the file without the Keychain.
func parseWrappedFile(data []byte) (*wrappedFile, []byte, []byte, error) {
	if len(data) > maxKeyFileBytes {
		return nil, nil, nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxKeyFileBytes)
	}
	var f wrappedFile
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if f.Version != 1 || f.Alias == "" || len(f.Alias) > maxAliasBytes {
		return nil, nil, nil, fmt.Errorf("%w: version or alias", ErrCorrupt)
	}
	if _, err := protocol.DecodePublicKey(f.PublicKey); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	nonce, err1 := base64.StdEncoding.Strict().DecodeString(f.Nonce)
	ct, err2 := base64.StdEncoding.Strict().DecodeString(f.Ciphertext)
	if err := errors.Join(err1, err2); err != nil || len(nonce) != chacha20poly1305.NonceSizeX || len(ct) != 32+SecretSize+chacha20poly1305.Overhead {
		return nil, nil, nil, fmt.Errorf("%w: nonce or ciphertext", ErrCorrupt)
	}
	return &f, nonce, ct, nil
}

type wrappedStore struct {
	gen    itemGeneration
	key    *protocol.PrivateKey
	secret []byte

	mu     sync.Mutex
	closed bool
}

func createWrapped(opts Options, items itemStore) (Store, error) {
	if err := ensureDir(opts.Dir); err != nil {
		return nil, err
	}
	path := keyPath(opts.Dir, WrappedKeyName)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("keystore: generate key: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	wrap := make([]byte, chacha20poly1305.KeySize)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(wrap); err != nil {
		return nil, fmt.Errorf("keystore: random wrapping key: %w", err)
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keystore: random nonce: %w", err)
	}
	aead, _ := chacha20poly1305.NewX(wrap)
	scalar, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	f := wrappedFile{Version: 1, Alias: opts.KeyAlias, PublicKey: base64.StdEncoding.EncodeToString(k.PublicKey())}
	pt := append(scalar, secret...)
	ct := aead.Seal(nil, nonce, pt, f.ad())
	wipe(pt)
	f.Nonce = base64.StdEncoding.EncodeToString(nonce)
	f.Ciphertext = base64.StdEncoding.EncodeToString(ct)
	data, _ := json.MarshalIndent(f, "", "  ")

	if err := items.put(wrapAccount(opts.KeyAlias), wrap); err != nil {
		return nil, fmt.Errorf("keystore: store the wrapping key in the Keychain: %w", err)
	}
	wipe(wrap)
	gen := itemGeneration{items, genAccount(opts.KeyAlias)}
	if err := gen.init(); err != nil {
		items.remove(wrapAccount(opts.KeyAlias))
		return nil, err
	}
	if err := atomicfile.CreateFile(path, append(data, '\n'), 0o600); err != nil {
		items.remove(wrapAccount(opts.KeyAlias))
		items.remove(genAccount(opts.KeyAlias))
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, path)
		}
		return nil, fmt.Errorf("keystore: write wrapped key file: %w", err)
	}
	return &wrappedStore{gen: gen, key: k, secret: secret}, nil
}

func readWrappedFile(dir string) (*wrappedFile, []byte, []byte, error) {
	path := keyPath(dir, WrappedKeyName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("keystore: %w: %s does not exist", ErrNotFound, path)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("keystore: read wrapped key file: %w", err)
	}
	f, nonce, ct, err := parseWrappedFile(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return f, nonce, ct, nil
}

func openWrapped(opts Options, items itemStore) (Store, error) {
	f, nonce, ct, err := readWrappedFile(opts.Dir)
	if err != nil {
		return nil, err
	}
	wrap, err := items.get(wrapAccount(f.Alias))
	if errors.Is(err, errItemNotFound) {
		return nil, fmt.Errorf("keystore: %w: the Keychain has no wrapping key %q for %s (another user, another Mac, or it was deleted); re-enrol with `%s` and pair again", ErrNotFound, wrapAccount(f.Alias), opts.Dir, ReenrolHint)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: read the wrapping key from the Keychain: %w", err)
	}
	var aead cipher.AEAD
	if len(wrap) == chacha20poly1305.KeySize {
		aead, _ = chacha20poly1305.NewX(wrap)
	}
	wipe(wrap)
	if aead == nil {
		return nil, fmt.Errorf("%w: wrapping key in the Keychain has the wrong size", ErrCorrupt)
	}
	pt, err := aead.Open(nil, nonce, ct, f.ad())
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not decrypt with its Keychain wrapping key", ErrCorrupt, keyPath(opts.Dir, WrappedKeyName))
	}
	defer wipe(pt)
	k, err := protocol.ParsePrivateKey(pt[:32])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if base64.StdEncoding.EncodeToString(k.PublicKey()) != f.PublicKey {
		return nil, fmt.Errorf("%w: private and public key differ", ErrCorrupt)
	}
	return &wrappedStore{gen: itemGeneration{items, genAccount(f.Alias)}, key: k, secret: clone(pt[32:])}, nil
}

func removeWrapped(opts Options, items itemStore) error {
	f, _, _, err := readWrappedFile(opts.Dir)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err == nil {
		if err := errors.Join(items.remove(wrapAccount(f.Alias)), items.remove(genAccount(f.Alias))); err != nil {
			return fmt.Errorf("keystore: remove Keychain items: %w", err)
		}
	}
	return removeWrappedFile(opts)
}

func removeWrappedFile(opts Options) error {
	return atomicfile.Remove(keyPath(opts.Dir, WrappedKeyName))
}

func (s *wrappedStore) PublicKey() []byte { return s.key.PublicKey() }
func (s *wrappedStore) Backend() string   { return BackendKeychain }

func (s *wrappedStore) check() error {
	if s.closed {
		return ErrClosed
	}
	return nil
}

func (s *wrappedStore) SignDigest(d []byte) ([]byte, error) {
	s.mu.Lock()
	err := s.check()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return signSoftware(s.key, d)
}

func (s *wrappedStore) SealingSecret() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	return clone(s.secret), nil
}

func (s *wrappedStore) Generation() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.gen.get()
}

func (s *wrappedStore) CommitGeneration(g uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	return s.gen.commit(g)
}

func (s *wrappedStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		wipe(s.secret)
	}
	return nil
}
