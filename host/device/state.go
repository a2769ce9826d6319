package device

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/amesh-go/amesh/internal/atomicfile"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// State is an opened device: its identity, its key, and access to its
// sealed allow list. Its methods are safe for concurrent use, also with
// other processes working on the same directory.
type State struct {
	dir     string
	id      Identity
	store   keystore.Store
	sealKey []byte
}

// CreateOptions configure Create.
type CreateOptions struct {
	// Dir is the state directory; empty means DefaultDir().
	Dir string
	// Name is the device's friendly name (required).
	Name string
	// Backend is a keystore backend name; empty or "auto" means
	// keystore.Detect. The choice is recorded in identity.json and used
	// strictly afterwards.
	Backend string
	// MaxControllers is how many controllers the allow list may hold
	// (default 1).
	MaxControllers int
	// Force replaces an existing identity, removing its key from its
	// backend first. The old identity is gone even if creating the new one
	// then fails.
	Force bool
	// Keystore passes backend settings (passphrase sources, TPM device and
	// PIN…); its Dir and KeyAlias are set by Create.
	Keystore keystore.Options
	// Progress, if set, receives each backend probe when detecting.
	Progress func(keystore.Probe)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Create makes a new device identity: a key in the chosen backend, an empty
// sealed allow list, and identity.json, written last, so that an identity
// exists only once everything it needs does. On error it leaves nothing
// behind (beyond what Force already removed).
func Create(opts CreateOptions) (*State, error) {
	dir, err := resolveDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := checkName(opts.Name); err != nil {
		return nil, fmt.Errorf("device: friendly name: %w", err)
	}
	if opts.MaxControllers < 0 || opts.MaxControllers > MaxControllersLimit {
		return nil, fmt.Errorf("device: max controllers %d out of range 1..%d", opts.MaxControllers, MaxControllersLimit)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	lock, err := atomicfile.LockFile(filepath.Join(dir, LockFile), true)
	if err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	defer lock.Unlock()

	ks := opts.Keystore
	ks.Dir = dir
	if opts.Force {
		// Also clears what an interrupted init left without identity.json.
		if err := removeState(dir, ks); err != nil {
			return nil, err
		}
	} else if _, err := os.Lstat(filepath.Join(dir, IdentityFile)); err == nil {
		return nil, fmt.Errorf("device: %w in %s; use --force to replace it (its key and trusted devices are then lost)", ErrExists, dir)
	}

	backend := opts.Backend
	if backend == "" || backend == "auto" {
		var probes []keystore.Probe
		backend, probes = keystore.Detect(ks)
		if opts.Progress != nil {
			for _, p := range probes {
				opts.Progress(p)
			}
		}
	}
	alias, err := keystore.NewAlias()
	if err != nil {
		return nil, err
	}
	ks.KeyAlias = alias
	store, err := keystore.Create(backend, ks)
	if errors.Is(err, keystore.ErrExists) {
		return nil, fmt.Errorf("device: %s holds a %s key but no %s (an interrupted init?): use --force to replace it: %w", dir, backend, IdentityFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("device: create %s key: %w", backend, err)
	}
	s, err := finishCreate(dir, store, alias, opts, now())
	if err != nil {
		store.Close()
		keystore.Remove(backend, ks)
		atomicfile.Remove(filepath.Join(dir, AllowListFile))
		atomicfile.Remove(filepath.Join(dir, IdentityFile))
		return nil, err
	}
	return s, nil
}

func finishCreate(dir string, store keystore.Store, alias string, opts CreateOptions, now time.Time) (*State, error) {
	pub, err := protocol.ParsePublicKey(store.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("device: keystore returned a bad public key: %w", err)
	}
	id := Identity{
		Version:        identityVersion,
		DeviceID:       pub.DeviceID(),
		KeyAlias:       alias,
		PublicKey:      pub.String(),
		FriendlyName:   opts.Name,
		CreatedAt:      Time{now.UTC().Truncate(time.Millisecond)},
		StorageBackend: store.Backend(),
	}
	if opts.MaxControllers > 1 {
		id.MaxControllers = opts.MaxControllers
	}
	s, err := newState(dir, &id, store)
	if err != nil {
		return nil, err
	}
	// The first sealed list is one generation past whatever the backend
	// holds (a TPM counter starts wherever the TPM's counters are).
	g, err := store.Generation()
	if err != nil {
		return nil, fmt.Errorf("device: read the allow-list generation: %w", err)
	}
	if err := s.writeList(&listBody{Generation: g + 1}); err != nil {
		return nil, err
	}
	if err := atomicfile.CreateFile(filepath.Join(dir, IdentityFile), id.marshal(), 0o600); err != nil {
		return nil, fmt.Errorf("device: write identity: %w", err)
	}
	return s, nil
}

// Destroy deletes the identity in dir: its key (from its backend), its
// allow list and identity.json, then the lock file and the directory itself
// if nothing else is left in it. It is what undoes a Create whose next step
// failed (an unattended enrolment refused by the relay, say), so that no key
// or file is left behind.
func Destroy(dir string, ks keystore.Options) error {
	dir, err := resolveDir(dir)
	if err != nil {
		return err
	}
	lockPath := filepath.Join(dir, LockFile)
	lock, err := atomicfile.LockFile(lockPath, true)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	ks.Dir = dir
	err = removeState(dir, ks)
	lock.Unlock()
	if err != nil {
		return err
	}
	os.Remove(lockPath)
	os.Remove(dir) // only if empty: the directory may hold other things
	return nil
}

// removeState deletes an existing identity, its key and its allow list.
func removeState(dir string, ks keystore.Options) error {
	id, err := ReadIdentity(dir)
	if err == nil {
		ks.KeyAlias = id.KeyAlias
		if err := keystore.Remove(id.StorageBackend, ks); err != nil {
			return fmt.Errorf("device: remove the old %s key: %w", id.StorageBackend, err)
		}
	} else {
		// An unreadable identity cannot say where its key is: remove
		// whatever key files the directory holds.
		for _, b := range keystore.Backends() {
			if rerr := keystore.Remove(b, ks); rerr != nil {
				return fmt.Errorf("device: remove old %s key: %w", b, rerr)
			}
		}
	}
	return errors.Join(
		atomicfile.Remove(filepath.Join(dir, AllowListFile)),
		atomicfile.Remove(filepath.Join(dir, IdentityFile)))
}

// Open opens the device in dir (empty means DefaultDir()) with the backend
// its identity names; ks passes backend settings (passphrase sources, TPM
// device and PIN).
func Open(dir string, ks keystore.Options) (*State, error) {
	dir, err := resolveDir(dir)
	if err != nil {
		return nil, err
	}
	id, err := ReadIdentity(dir)
	if err != nil {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	ks.Dir = dir
	ks.KeyAlias = id.KeyAlias
	store, err := keystore.Open(id.StorageBackend, ks)
	if err != nil {
		return nil, fmt.Errorf("device: open the %s key of %s: %w", id.StorageBackend, id.DeviceID, err)
	}
	if subtle.ConstantTimeCompare(store.PublicKey(), mustDecode(id.PublicKey)) != 1 {
		store.Close()
		return nil, fmt.Errorf("device: %s names public key %s but the %s backend holds another key", filepath.Join(dir, IdentityFile), id.PublicKey, id.StorageBackend)
	}
	s, err := newState(dir, id, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

func mustDecode(s string) []byte {
	pub, err := protocol.DecodePublicKey(s)
	if err != nil {
		return nil
	}
	return pub.Bytes()
}

func newState(dir string, id *Identity, store keystore.Store) (*State, error) {
	secret, err := store.SealingSecret()
	if err != nil {
		return nil, fmt.Errorf("device: sealing secret: %w", err)
	}
	key, err := sealKey(secret, id.DeviceID)
	clear(secret)
	if err != nil {
		return nil, err
	}
	return &State{dir: dir, id: *id, store: store, sealKey: key}, nil
}

func resolveDir(dir string) (string, error) {
	if dir == "" {
		return DefaultDir()
	}
	return dir, nil
}

// Dir returns the state directory.
func (s *State) Dir() string { return s.dir }

// Identity returns a copy of the device's identity.
func (s *State) Identity() Identity { return s.id }

// Key returns the device's signing key.
func (s *State) Key() keystore.Key { return s.store }

// Close closes the key and forgets the secrets held in memory.
func (s *State) Close() error {
	clear(s.sealKey)
	return s.store.Close()
}

func (s *State) listPath() string { return filepath.Join(s.dir, AllowListFile) }

// AllowList loads and verifies the allow list. On an integrity failure it
// returns the *IntegrityError and also a snapshot whose Lookup returns that
// error, for servers that keep running and answer 500.
func (s *State) AllowList() (*AllowList, error) {
	lock, err := atomicfile.LockFile(filepath.Join(s.dir, LockFile), false)
	if err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	defer lock.Unlock()
	l, _, err := s.load()
	return l, err
}

// load reads the list under the caller's lock and checks its generation
// against the keystore's: equal, or one ahead when a writer stopped between
// writing the file and committing the generation.
func (s *State) load() (*AllowList, uint64, error) {
	path := s.listPath()
	committed, err := s.store.Generation()
	if err != nil {
		if errors.Is(err, keystore.ErrCorrupt) || errors.Is(err, keystore.ErrTPMKeyLost) {
			err = integrity(path, "the keystore's generation record is unusable (%v)", err)
		} else {
			err = fmt.Errorf("device: read the allow-list generation from the %s backend: %w", s.store.Backend(), err)
		}
		return failedAllowList(path, nil, err), 0, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		err = integrity(path, "the file is missing (the keystore says generation %d was written)", committed)
		return failedAllowList(path, nil, err), committed, err
	}
	if err != nil {
		err = fmt.Errorf("device: open allow list: %w", err)
		return failedAllowList(path, nil, err), committed, err
	}
	defer f.Close()
	// Stat the open file, not the path, so that the snapshot's stamp is
	// the one of the bytes we read even if a writer renames meanwhile.
	fi, err := f.Stat()
	if err == nil && fi.Mode().Perm()&0o022 != 0 && runtime.GOOS != "windows" {
		err = integrity(path, "the file has mode %04o and other users can write to it", fi.Mode().Perm())
	}
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(f, maxListBytes+1))
	}
	if err != nil {
		if _, ok := err.(*IntegrityError); !ok {
			err = fmt.Errorf("device: read allow list: %w", err)
		}
		return failedAllowList(path, fi, err), committed, err
	}
	body, err := openList(path, s.sealKey, data)
	if err == nil {
		switch {
		case body.Generation < committed:
			err = integrity(path, "its generation %d is older than the last one written (%d): an older copy was restored", body.Generation, committed)
		case body.Generation > committed+1:
			err = integrity(path, "its generation %d is ahead of the last one written (%d)", body.Generation, committed)
		}
	}
	if err != nil {
		return failedAllowList(path, fi, err), committed, err
	}
	return newAllowList(path, body, fi), committed, nil
}

// Devices returns the trusted devices.
func (s *State) Devices() ([]Entry, error) {
	l, err := s.AllowList()
	if err != nil {
		return nil, err
	}
	return l.Entries(), nil
}

// Update changes the allow list in one transaction: under the exclusive
// lock it loads and verifies the list, calls fn with a copy of the entries,
// validates what fn returns, and writes it sealed with the next
// generation. If the list fails its integrity check, or fn or the
// validation fails, nothing is written.
func (s *State) Update(fn func(entries []Entry) ([]Entry, error)) error {
	lock, err := atomicfile.LockFile(filepath.Join(s.dir, LockFile), true)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	defer lock.Unlock()
	cur, committed, err := s.load()
	if err != nil {
		return err
	}
	if cur.gen > committed {
		// A writer stopped after writing the file: finish its commit.
		if err := s.store.CommitGeneration(cur.gen); err != nil {
			return fmt.Errorf("device: commit allow-list generation: %w", err)
		}
	}
	next, err := fn(cur.Entries())
	if err != nil {
		return err
	}
	next = append([]Entry(nil), next...)
	if err := checkEntries(next); err != nil {
		return fmt.Errorf("device: %w", err)
	}
	return s.writeList(&listBody{Generation: cur.gen + 1, Devices: next})
}

// writeList writes the sealed list, then commits its generation to the
// keystore. A crash in between leaves the file one generation ahead, which
// readers accept and the next writer commits.
func (s *State) writeList(body *listBody) error {
	data, err := sealList(s.sealKey, body)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.listPath(), data, 0o600); err != nil {
		return fmt.Errorf("device: write allow list: %w", err)
	}
	if err := s.store.CommitGeneration(body.Generation); err != nil {
		return fmt.Errorf("device: the allow list was written but its generation could not be committed to the %s backend (the next change retries): %w", s.store.Backend(), err)
	}
	return nil
}

// AddOptions configure Add.
type AddOptions struct {
	// ReplaceControllers removes the existing controllers when adding a
	// controller would exceed the identity's maxControllers.
	ReplaceControllers bool
	// Now is the clock for a missing AddedAt; nil means time.Now.
	Now func() time.Time
}

// Add trusts a device, or updates the entry of a device already trusted
// (re-pairing). Adding a controller beyond the identity's maxControllers
// fails with ErrTooManyControllers unless opts.ReplaceControllers is set;
// replaced lists the entries that were removed for it.
func (s *State) Add(e Entry, opts AddOptions) (replaced []Entry, err error) {
	if e.AddedAt.IsZero() {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		e.AddedAt = Time{now().UTC().Truncate(time.Millisecond)}
	}
	if _, err := e.normalize(); err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	if e.PublicKey == s.id.PublicKey {
		return nil, fmt.Errorf("device: %w: a device cannot trust itself", ErrInvalidEntry)
	}
	err = s.Update(func(entries []Entry) ([]Entry, error) {
		replaced = nil
		for i := range entries {
			if entries[i].PublicKey == e.PublicKey {
				entries[i] = e
				return entries, nil
			}
		}
		if e.Role == protocol.RoleController {
			var controllers []Entry
			for _, x := range entries {
				if x.Role == protocol.RoleController {
					controllers = append(controllers, x)
				}
			}
			if len(controllers) >= s.id.Controllers() {
				if !opts.ReplaceControllers {
					return nil, fmt.Errorf("device: %w: this device allows %d controller(s) and trusts %d already; replace them or raise --max-controllers", ErrTooManyControllers, s.id.Controllers(), len(controllers))
				}
				replaced = controllers
				kept := entries[:0]
				for _, x := range entries {
					if x.Role != protocol.RoleController {
						kept = append(kept, x)
					}
				}
				entries = kept
			}
		}
		return append(entries, e), nil
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// Remove stops trusting the device with this ID and returns its entry. An
// unknown ID fails with ErrUnknownDevice and changes nothing.
func (s *State) Remove(deviceID string) (Entry, error) {
	var removed Entry
	err := s.Update(func(entries []Entry) ([]Entry, error) {
		for i, x := range entries {
			if x.DeviceID == deviceID {
				removed = x
				return append(entries[:i], entries[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("device: %w %q", ErrUnknownDevice, deviceID)
	})
	return removed, err
}
