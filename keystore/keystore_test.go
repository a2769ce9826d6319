package keystore

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// cheapArgon2 keeps tests fast where the cost is not what is tested; the
// parameters are stored in the file, so everything else runs as in
// production.
var cheapArgon2 = &Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1}

// forgetUnlocks empties the per-process unlock cache, as a new process
// would start.
func forgetUnlocks() {
	unlocked.Range(func(k, _ any) bool { unlocked.Delete(k); return true })
}

func fileOpts(t *testing.T, dir string, pass string) Options {
	t.Helper()
	return Options{Dir: dir, Argon2: cheapArgon2, Passphrase: []PassphraseSource{StaticPassphrase([]byte(pass))}, Warn: &bytes.Buffer{}}
}

// checkSigns signs n digests and checks each signature verifies and is
// low-S.
func checkSigns(t testing.TB, k Key, n int) {
	t.Helper()
	pub, err := protocol.ParsePublicKey(k.PublicKey())
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	for i := range n {
		d := sha256.Sum256([]byte(fmt.Sprint("message ", i)))
		sig, err := k.SignDigest(d[:])
		if err != nil {
			t.Fatalf("sign %d: %v", i, err)
		}
		if len(sig) != protocol.SignatureSize || !protocol.IsLowS(sig) {
			t.Fatalf("signature %d: %d bytes, low-S %v", i, len(sig), protocol.IsLowS(sig))
		}
		if err := pub.VerifyDigest(d[:], sig); err != nil {
			t.Fatalf("signature %d does not verify: %v", i, err)
		}
	}
}

// checkGenerations exercises the generation contract: starts at some
// value, commits raise it, lower commits are ignored.
func checkGenerations(t *testing.T, s Store) {
	t.Helper()
	g0, err := s.Generation()
	if err != nil {
		t.Fatalf("generation: %v", err)
	}
	for _, step := range []struct {
		commit, want uint64
	}{{g0 + 1, g0 + 1}, {g0 + 2, g0 + 2}, {g0, g0 + 2}, {g0 + 2, g0 + 2}} {
		if err := s.CommitGeneration(step.commit); err != nil {
			t.Fatalf("commit %d: %v", step.commit, err)
		}
		got, err := s.Generation()
		if err != nil || got != step.want {
			t.Fatalf("after commit %d: generation %d, %v; want %d", step.commit, got, err, step.want)
		}
	}
}

func TestBackendsContract(t *testing.T) {
	for _, tc := range []struct {
		name   string
		create func(t *testing.T, dir string) (Store, error)
		open   func(t *testing.T, dir string) (Store, error)
	}{
		{"memory",
			func(t *testing.T, dir string) (Store, error) { return Create(BackendMemory, Options{Dir: dir}) },
			func(t *testing.T, dir string) (Store, error) { return Open(BackendMemory, Options{Dir: dir}) }},
		{"encrypted-file",
			func(t *testing.T, dir string) (Store, error) {
				return Create(BackendFile, fileOpts(t, dir, "correct horse"))
			},
			func(t *testing.T, dir string) (Store, error) {
				forgetUnlocks()
				return Open(BackendFile, fileOpts(t, dir, "correct horse"))
			}},
		{"keychain-logic",
			func(t *testing.T, dir string) (Store, error) {
				return createWrapped(Options{Dir: dir, KeyAlias: "amesh-test"}, testItems(dir))
			},
			func(t *testing.T, dir string) (Store, error) { return openWrapped(Options{Dir: dir}, testItems(dir)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			s, err := tc.create(t, dir)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() { Remove(BackendMemory, Options{Dir: dir}) })
			checkSigns(t, s, 50)
			secret, err := s.SealingSecret()
			if err != nil || len(secret) != SecretSize {
				t.Fatalf("sealing secret: %d bytes, %v", len(secret), err)
			}
			checkGenerations(t, s)
			g, _ := s.Generation()
			pub := s.PublicKey()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SignDigest(make([]byte, 32)); !errors.Is(err, ErrClosed) {
				t.Fatalf("sign after close: %v, want ErrClosed", err)
			}
			if _, err := s.SignDigest(make([]byte, 31)); err == nil {
				t.Fatal("signing a 31-byte digest succeeded")
			}

			r, err := tc.open(t, dir)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer r.Close()
			if !bytes.Equal(r.PublicKey(), pub) {
				t.Fatal("reopened key has another public key")
			}
			secret2, _ := r.SealingSecret()
			if !bytes.Equal(secret, secret2) {
				t.Fatal("sealing secret changed across reopen")
			}
			if g2, err := r.Generation(); err != nil || g2 != g {
				t.Fatalf("generation after reopen %d, %v; want %d", g2, err, g)
			}
			checkSigns(t, r, 5)
			if _, err := tc.create(t, dir); !errors.Is(err, ErrExists) {
				t.Fatalf("second create: %v, want ErrExists", err)
			}
		})
	}
}

var testItemStores sync.Map

// testItems gives each test directory its own stand-in Keychain that
// outlives the store, as the real one does.
func testItems(dir string) itemStore {
	v, _ := testItemStores.LoadOrStore(absDir(dir), &memItems{})
	return v.(itemStore)
}

func TestKeychainLogicErrors(t *testing.T) {
	dir := t.TempDir()
	items := &memItems{}
	s, err := createWrapped(Options{Dir: dir, KeyAlias: "amesh-a"}, items)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, WrappedKeyName)
	orig, _ := os.ReadFile(path)

	// Another directory's items never answer for this one.
	if _, err := openWrapped(Options{Dir: dir}, &memItems{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open with an empty Keychain: %v, want ErrNotFound", err)
	}
	tampered := bytes.Replace(orig, []byte(`"alias": "amesh-a"`), []byte(`"alias": "amesh-b"`), 1)
	items.put(wrapAccount("amesh-b"), mustGet(t, items, wrapAccount("amesh-a")))
	os.WriteFile(path, tampered, 0o600)
	if _, err := openWrapped(Options{Dir: dir}, items); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a changed alias: %v, want ErrCorrupt", err)
	}
	os.WriteFile(path, orig, 0o600)
	if err := removeWrapped(Options{Dir: dir}, items); err != nil {
		t.Fatal(err)
	}
	if _, err := items.get(wrapAccount("amesh-a")); !errors.Is(err, errItemNotFound) {
		t.Fatal("remove left the wrapping key in the Keychain")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("remove left the key file")
	}
}

// A Keychain without the generation item (deleted, or another user's) is
// a missing key to re-enrol, not a generation of 0 that would let an old
// allow list back in.
func TestKeychainGenerationItemMissing(t *testing.T) {
	dir := t.TempDir()
	items := &memItems{}
	s, err := createWrapped(Options{Dir: dir, KeyAlias: "amesh-a"}, items)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := items.remove(genAccount("amesh-a")); err != nil {
		t.Fatal(err)
	}
	s, err = openWrapped(Options{Dir: dir}, items)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Generation()
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), ReenrolHint) {
		t.Fatalf("Generation without its item: %v, want ErrNotFound naming %q", err, ReenrolHint)
	}
	if err := s.CommitGeneration(5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CommitGeneration without its item: %v, want ErrNotFound", err)
	}
}

func mustGet(t *testing.T, items itemStore, a string) []byte {
	t.Helper()
	b, err := items.get(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMemoryDoesNotPersistAcrossProcesses(t *testing.T) {
	// A directory this process never created a memory key for is what
	// another process sees.
	_, err := Open(BackendMemory, Options{Dir: t.TempDir()})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "only inside the process") {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownBackend(t *testing.T) {
	for _, f := range []func() error{
		func() error { _, err := Create("floppy", Options{Dir: t.TempDir()}); return err },
		func() error { _, err := Open("floppy", Options{Dir: t.TempDir()}); return err },
		func() error { return Remove("floppy", Options{Dir: t.TempDir()}) },
		func() error { _, err := Create(BackendFile, Options{}); return err },
	} {
		if err := f(); err == nil {
			t.Fatal("no error")
		}
	}
}

func TestDetectWithoutTPM(t *testing.T) {
	b, probes := Detect(Options{Dir: t.TempDir(), TPMDevice: filepath.Join(t.TempDir(), "no-tpm")})
	want := BackendFile
	if keychainAvailable {
		want = BackendKeychain
	}
	if b != want {
		t.Fatalf("Detect chose %s, want %s (probes %+v)", b, want, probes)
	}
	if len(probes) < 2 || probes[0].Backend != BackendTPM || probes[0].OK {
		t.Fatalf("probes %+v: want a failed TPM probe first", probes)
	}
}

func parseJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}
