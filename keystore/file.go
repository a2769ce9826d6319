package keystore

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/amesh-go/amesh/internal/atomicfile"
	"github.com/amesh-go/amesh/internal/strictjson"
	"github.com/amesh-go/amesh/wasm/protocol"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// FileKeyName is the encrypted key file in the state directory.
const FileKeyName = "key.enc.json"

// Argon2Params are the Argon2id cost parameters of an encrypted key file.
// They are stored in the file, so changing the defaults never locks out an
// existing key.
type Argon2Params struct {
	MemoryKiB uint32 `json:"memoryKiB"`
	Time      uint32 `json:"time"`
	Threads   uint8  `json:"threads"`
}

// DefaultArgon2 is the production cost: 64 MiB, 3 passes, 4 lanes (about
// 0.2–0.5 s on a small server, paid once per process).
var DefaultArgon2 = Argon2Params{MemoryKiB: 64 * 1024, Time: 3, Threads: 4}

// Bounds on parameters read from a file, so that a crafted file cannot make
// us allocate gigabytes or spin for minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 64
	maxKeyFileBytes   = 64 << 10
)

func (p Argon2Params) validate() error {
	switch {
	case p.Threads == 0:
		return errors.New("argon2 threads must be at least 1")
	case p.Time == 0 || p.Time > maxArgonTime:
		return fmt.Errorf("argon2 time must be 1..%d", maxArgonTime)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgonMemoryKiB:
		return fmt.Errorf("argon2 memory must be %d..%d KiB", 8*uint32(p.Threads), maxArgonMemoryKiB)
	}
	return nil
}

// The file format, version 1. Everything but nonce and ciphertext is the
// header, authenticated as associated data, so that nobody can lower the
// Argon2id cost or swap the public key without the passphrase.
type fileHeader struct {
	Version   int          `json:"version"`
	KDF       string       `json:"kdf"`
	Argon2    Argon2Params `json:"argon2"`
	Salt      string       `json:"salt"`
	Cipher    string       `json:"cipher"`
	PublicKey string       `json:"publicKey"`
}

type keyFileJSON struct {
	fileHeader
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

const (
	fileVersion = 1
	fileKDF     = "argon2id"
	fileCipher  = "xchacha20-poly1305"
	// plaintext: format byte, private scalar, sealing secret, generation.
	filePlainFormat = 1
	filePlainSize   = 1 + 32 + SecretSize + 8
	fileADPrefix    = "amesh encrypted key file\x00"
)

// parsedKeyFile is a syntactically valid key file, not yet decrypted.
type parsedKeyFile struct {
	header     fileHeader
	salt       []byte
	pub        []byte
	nonce      []byte
	ciphertext []byte
}

// parseKeyFile checks everything that can be checked without the
// passphrase. It never panics, whatever the input (see FuzzParseKeyFile).
func parseKeyFile(data []byte) (*parsedKeyFile, error) {
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxKeyFileBytes)
	}
	var f keyFileJSON
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrCorrupt, f.Version, fileVersion)
	}
	if f.KDF != fileKDF || f.Cipher != fileCipher {
		return nil, fmt.Errorf("%w: kdf %q / cipher %q, want %q / %q", ErrCorrupt, f.KDF, f.Cipher, fileKDF, fileCipher)
	}
	if err := f.Argon2.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	p := &parsedKeyFile{header: f.fileHeader}
	var err error
	dec64 := func(name, s string, min, max int) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = base64.StdEncoding.Strict().DecodeString(s)
		if err == nil && (len(b) < min || len(b) > max) {
			err = fmt.Errorf("%s is %d bytes, want %d..%d", name, len(b), min, max)
		}
		if err != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
		return b
	}
	p.salt = dec64("salt", f.Salt, 16, 64)
	p.pub = dec64("publicKey", f.PublicKey, protocol.PublicKeySize, protocol.PublicKeySize)
	p.nonce = dec64("nonce", f.Nonce, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX)
	p.ciphertext = dec64("ciphertext", f.Ciphertext, filePlainSize+chacha20poly1305.Overhead, filePlainSize+chacha20poly1305.Overhead)
	if err != nil {
		return nil, err
	}
	if _, err := protocol.ParsePublicKey(p.pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return p, nil
}

func (h *fileHeader) ad() []byte {
	b, _ := json.Marshal(h) // a struct of strings and numbers cannot fail
	return append([]byte(fileADPrefix), b...)
}

// filePlain is the decrypted content of a key file.
type filePlain struct {
	scalar []byte
	secret []byte
	gen    uint64
}

func (p *filePlain) marshal() []byte {
	b := make([]byte, 0, filePlainSize)
	b = append(b, filePlainFormat)
	b = append(b, p.scalar...)
	b = append(b, p.secret...)
	return binary.BigEndian.AppendUint64(b, p.gen)
}

func (p *parsedKeyFile) open(aead cipher.AEAD) (*filePlain, error) {
	plain, err := aead.Open(nil, p.nonce, p.ciphertext, p.header.ad())
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	if len(plain) != filePlainSize || plain[0] != filePlainFormat {
		return nil, fmt.Errorf("%w: unknown plaintext format", ErrCorrupt)
	}
	return &filePlain{scalar: plain[1:33], secret: plain[33 : 33+SecretSize], gen: binary.BigEndian.Uint64(plain[33+SecretSize:])}, nil
}

func seal(aead cipher.AEAD, h fileHeader, plain *filePlain) ([]byte, error) {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keystore: random nonce: %w", err)
	}
	pt := plain.marshal()
	ct := aead.Seal(nil, nonce, pt, h.ad())
	wipe(pt)
	out, err := json.MarshalIndent(keyFileJSON{
		fileHeader: h,
		Nonce:      base64.StdEncoding.EncodeToString(nonce),
		Ciphertext: base64.StdEncoding.EncodeToString(ct),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keystore: encode key file: %w", err)
	}
	return append(out, '\n'), nil
}

// argon2Runs counts key derivations, so that tests can check that signing
// and reloading never run Argon2id again.
var argon2Runs atomic.Int64

func deriveKey(pass, salt []byte, p Argon2Params) []byte {
	argon2Runs.Add(1)
	return argon2.IDKey(pass, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
}

// unlocked remembers, per key file and salt, the key Argon2id derived, so
// that a process opens the same key file many times but pays for Argon2id
// once.
var unlocked sync.Map // string -> []byte

func unlockCacheKey(path string, h fileHeader) string {
	return fmt.Sprintf("%s\x00%s\x00%d/%d/%d", absDir(path), h.Salt, h.Argon2.MemoryKiB, h.Argon2.Time, h.Argon2.Threads)
}

type fileStore struct {
	path   string
	header fileHeader
	aead   cipher.AEAD
	key    *protocol.PrivateKey
	secret []byte

	mu     sync.Mutex
	closed bool
}

func createFile(opts Options) (Store, error) {
	if err := ensureDir(opts.Dir); err != nil {
		return nil, err
	}
	path := keyPath(opts.Dir, FileKeyName)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	params := DefaultArgon2
	if opts.Argon2 != nil {
		params = *opts.Argon2
	}
	if err := params.validate(); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	sources := opts.Passphrase
	if sources == nil {
		sources = DefaultPassphraseSources(opts.Dir)
	}
	pass, _, err := findPassphrase(sources, true)
	generated := false
	if errors.Is(err, ErrNoPassphrase) {
		if pass, err = generatePassphrase(); err != nil {
			return nil, err
		}
		generated = true
	} else if err != nil {
		return nil, err
	}
	defer wipe(pass)

	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("keystore: generate key: %w", err)
	}
	scalar, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("keystore: random salt: %w", err)
	}
	h := fileHeader{
		Version:   fileVersion,
		KDF:       fileKDF,
		Argon2:    params,
		Salt:      base64.StdEncoding.EncodeToString(salt),
		Cipher:    fileCipher,
		PublicKey: base64.StdEncoding.EncodeToString(k.PublicKey()),
	}
	dk := deriveKey(pass, salt, params)
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	data, err := seal(aead, h, &filePlain{scalar: scalar, secret: secret})
	wipe(scalar)
	if err != nil {
		return nil, err
	}
	passPath := keyPath(opts.Dir, StoredPassphraseFile)
	if generated {
		if err := atomicfile.WriteFile(passPath, append(clone(pass), '\n'), 0o400); err != nil {
			return nil, fmt.Errorf("keystore: store generated passphrase: %w", err)
		}
	}
	if err := atomicfile.CreateFile(path, data, 0o600); err != nil {
		if generated {
			atomicfile.Remove(passPath)
		}
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, path)
		}
		return nil, fmt.Errorf("keystore: write key file: %w", err)
	}
	if generated {
		fmt.Fprintf(opts.warn(), "WARNING: no passphrase was given (%s, %s, systemd credential %s or a terminal),\n"+
			"so a random one was generated and stored in %s (mode 0400).\n"+
			"The device key is then only as safe as the directory %s.\n",
			EnvPassphrase, EnvPassphraseFile, CredentialName, passPath, opts.Dir)
	}
	unlocked.Store(unlockCacheKey(path, h), dk)
	return &fileStore{path: path, header: h, aead: aead, key: k, secret: secret}, nil
}

func openFile(opts Options) (Store, error) {
	path := keyPath(opts.Dir, FileKeyName)
	p, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	cacheKey := unlockCacheKey(path, p.header)
	var aead cipher.AEAD
	var plain *filePlain
	if dk, ok := unlocked.Load(cacheKey); ok {
		aead, _ = chacha20poly1305.NewX(dk.([]byte))
		if plain, err = p.open(aead); err != nil {
			plain = nil
		}
	}
	if plain == nil {
		sources := opts.Passphrase
		if sources == nil {
			sources = DefaultPassphraseSources(opts.Dir)
		}
		pass, source, err := findPassphrase(sources, false)
		if err != nil {
			return nil, fmt.Errorf("%w (needed to unlock %s)", err, path)
		}
		dk := deriveKey(pass, p.salt, p.header.Argon2)
		wipe(pass)
		aead, err = chacha20poly1305.NewX(dk)
		if err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
		if plain, err = p.open(aead); err != nil {
			if errors.Is(err, ErrWrongPassphrase) {
				return nil, fmt.Errorf("%w for %s (passphrase from %s), or the file was tampered with", ErrWrongPassphrase, path, source)
			}
			return nil, fmt.Errorf("keystore: %s: %w", path, err)
		}
		unlocked.Store(cacheKey, dk)
	}
	k, err := protocol.ParsePrivateKey(plain.scalar)
	wipe(plain.scalar)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w: %v", path, ErrCorrupt, err)
	}
	if subtle.ConstantTimeCompare(k.PublicKey(), p.pub) != 1 {
		return nil, fmt.Errorf("keystore: %s: %w: the private key does not match the public key", path, ErrCorrupt)
	}
	return &fileStore{path: path, header: p.header, aead: aead, key: k, secret: plain.secret}, nil
}

func readKeyFile(path string) (*parsedKeyFile, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("keystore: %w: %s does not exist", ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if err := checkPrivate(path, fi); err != nil {
		return nil, err // already says keystore and what to run
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: read %s: %w", path, err)
	}
	p, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return p, nil
}

func removeFile(opts Options) error {
	return errors.Join(
		atomicfile.Remove(keyPath(opts.Dir, FileKeyName)),
		atomicfile.Remove(keyPath(opts.Dir, StoredPassphraseFile)),
	)
}

func (s *fileStore) PublicKey() []byte { return s.key.PublicKey() }
func (s *fileStore) Backend() string   { return BackendFile }

func (s *fileStore) SignDigest(d []byte) ([]byte, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return signSoftware(s.key, d)
}

func (s *fileStore) SealingSecret() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return clone(s.secret), nil
}

// current re-reads the key file: another process may have committed a
// newer generation since we opened it. The derived key is reused, so no
// Argon2id runs.
func (s *fileStore) current() (*filePlain, error) {
	p, err := readKeyFile(s.path)
	if err != nil {
		return nil, err
	}
	if p.header != s.header {
		return nil, fmt.Errorf("keystore: %s: %w: the key file was replaced since it was opened", s.path, ErrCorrupt)
	}
	plain, err := p.open(s.aead)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w: it no longer decrypts with the key it was opened with", s.path, ErrCorrupt)
	}
	if subtle.ConstantTimeCompare(plain.secret, s.secret) != 1 {
		return nil, fmt.Errorf("keystore: %s: %w: sealing secret changed", s.path, ErrCorrupt)
	}
	return plain, nil
}

func (s *fileStore) Generation() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	plain, err := s.current()
	if err != nil {
		return 0, err
	}
	wipe(plain.scalar)
	return plain.gen, nil
}

func (s *fileStore) CommitGeneration(g uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	plain, err := s.current()
	if err != nil {
		return err
	}
	defer wipe(plain.scalar)
	if g <= plain.gen {
		return nil
	}
	plain.gen = g
	data, err := seal(s.aead, s.header, plain)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path, data, 0o600); err != nil {
		return fmt.Errorf("keystore: commit generation: %w", err)
	}
	return nil
}

func (s *fileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		wipe(s.secret)
	}
	return nil
}
