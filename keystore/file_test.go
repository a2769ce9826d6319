package keystore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestFileDefaultsAreProductionStrength(t *testing.T) {
	if DefaultArgon2 != (Argon2Params{MemoryKiB: 64 * 1024, Time: 3, Threads: 4}) {
		t.Fatalf("DefaultArgon2 = %+v", DefaultArgon2)
	}
	dir := t.TempDir()
	s, err := Create(BackendFile, Options{Dir: dir, Passphrase: []PassphraseSource{StaticPassphrase([]byte("pw"))}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var f keyFileJSON
	data, _ := os.ReadFile(filepath.Join(dir, FileKeyName))
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.Argon2 != DefaultArgon2 || f.KDF != "argon2id" || f.Cipher != "xchacha20-poly1305" {
		t.Fatalf("stored header %+v", f.fileHeader)
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileKeyName)); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
}

func TestFileUnlocksOncePerProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(BackendFile, fileOpts(t, dir, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	forgetUnlocks()
	before := argon2Runs.Load()
	r, err := Open(BackendFile, fileOpts(t, dir, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := argon2Runs.Load() - before; n != 1 {
		t.Fatalf("opening ran Argon2id %d times, want 1", n)
	}
	checkSigns(t, r, 20)
	for g := uint64(1); g <= 5; g++ {
		if err := r.CommitGeneration(g); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Generation(); err != nil { // the other handle re-reads
			t.Fatal(err)
		}
	}
	r2, err := Open(BackendFile, fileOpts(t, dir, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
	if n := argon2Runs.Load() - before; n != 1 {
		t.Fatalf("signing, commits and a second open ran Argon2id %d times in all, want 1", n)
	}
}

func TestFileRejects(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(BackendFile, fileOpts(t, dir, "right"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, FileKeyName)
	orig, _ := os.ReadFile(path)
	var f keyFileJSON
	json.Unmarshal(orig, &f)

	edit := func(fn func(*keyFileJSON)) []byte {
		g := f
		fn(&g)
		b, _ := json.Marshal(g)
		return b
	}
	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)/2] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	for _, tc := range []struct {
		name string
		data []byte
		mode os.FileMode
		pass string
		want error
	}{
		{"wrong passphrase", orig, 0o600, "wrong", ErrWrongPassphrase},
		{"ciphertext bit flipped", edit(func(g *keyFileJSON) { g.Ciphertext = flip(g.Ciphertext) }), 0o600, "right", ErrWrongPassphrase},
		{"nonce changed", edit(func(g *keyFileJSON) { g.Nonce = flip(g.Nonce) }), 0o600, "right", ErrWrongPassphrase},
		{"cost lowered", edit(func(g *keyFileJSON) { g.Argon2.Time = 2 }), 0o600, "right", ErrWrongPassphrase},
		{"salt changed", edit(func(g *keyFileJSON) { g.Salt = flip(g.Salt) }), 0o600, "right", ErrWrongPassphrase},
		{"public key swapped", edit(func(g *keyFileJSON) {
			other, _ := NewMemory()
			g.PublicKey = base64.StdEncoding.EncodeToString(other.PublicKey())
		}), 0o600, "right", ErrWrongPassphrase},
		{"huge memory cost", edit(func(g *keyFileJSON) { g.Argon2.MemoryKiB = 1 << 30 }), 0o600, "right", ErrCorrupt},
		{"unknown version", edit(func(g *keyFileJSON) { g.Version = 2 }), 0o600, "right", ErrCorrupt},
		{"truncated", orig[:len(orig)/2], 0o600, "right", ErrCorrupt},
		{"empty", nil, 0o600, "right", ErrCorrupt},
		{"world readable", orig, 0o644, "right", ErrInsecurePermissions},
		{"group writable", orig, 0o620, "right", ErrInsecurePermissions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode&0o077 != 0 && runtime.GOOS == "windows" {
				t.Skip("no mode bits on Windows")
			}
			forgetUnlocks()
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.mode)
			before, _ := os.ReadFile(path)
			_, err := Open(BackendFile, fileOpts(t, dir, tc.pass))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "keystore: ") || strings.Contains(err.Error(), "keystore: keystore") {
				t.Fatalf("error lacks context, or says it twice: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("a failed open changed the key file")
			}
		})
	}
	// The untouched file still opens.
	forgetUnlocks()
	os.WriteFile(path, orig, 0o600)
	os.Chmod(path, 0o600)
	r, err := Open(BackendFile, fileOpts(t, dir, "right"))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestFileMissing(t *testing.T) {
	if _, err := Open(BackendFile, fileOpts(t, t.TempDir(), "x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func TestInsecureDirectoryRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits on Windows")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	_, err := Create(BackendFile, fileOpts(t, dir, "x"))
	if !errors.Is(err, ErrInsecurePermissions) || strings.Contains(err.Error(), "keystore: keystore") {
		t.Fatalf("got %v, want ErrInsecurePermissions, said once", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused creation left %v", entries)
	}
}

// TestPassphraseSources creates a key through each source and reopens it
// through the same one, with the default chain as production uses it.
func TestPassphraseSources(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) // sets the environment for the source
	}{
		{"systemd credential", func(t *testing.T) {
			cred := t.TempDir()
			os.WriteFile(filepath.Join(cred, CredentialName), []byte("from systemd\n"), 0o400)
			t.Setenv("CREDENTIALS_DIRECTORY", cred)
		}},
		{"AMESH_PASSPHRASE_FILE", func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "pass")
			os.WriteFile(p, []byte("from a file\r\n"), 0o600)
			t.Setenv(EnvPassphraseFile, p)
		}},
		{"AUTH_MESH_PASSPHRASE", func(t *testing.T) {
			t.Setenv(EnvPassphrase, "from the environment")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearPassphraseEnv(t)
			tc.setup(t)
			dir := t.TempDir()
			var warn bytes.Buffer
			s, err := Create(BackendFile, Options{Dir: dir, Argon2: cheapArgon2, Warn: &warn})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if warn.Len() != 0 {
				t.Fatalf("unexpected warning: %s", warn.String())
			}
			if _, err := os.Stat(filepath.Join(dir, StoredPassphraseFile)); err == nil {
				t.Fatal("a passphrase was stored although one was given")
			}
			forgetUnlocks()
			r, err := Open(BackendFile, Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			// Without the source the key does not open.
			clearPassphraseEnv(t)
			forgetUnlocks()
			if _, err := Open(BackendFile, Options{Dir: dir}); !errors.Is(err, ErrNoPassphrase) || strings.Contains(err.Error(), "keystore: keystore") {
				t.Fatalf("open without the source: %v, want ErrNoPassphrase, said once", err)
			}
		})
	}
}

func clearPassphraseEnv(t *testing.T) {
	for _, v := range []string{"CREDENTIALS_DIRECTORY", EnvPassphraseFile, EnvPassphrase} {
		t.Setenv(v, "")
	}
}

func TestPassphraseFileTooOpenRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits on Windows")
	}
	clearPassphraseEnv(t)
	p := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(p, []byte("secret"), 0o644)
	os.Chmod(p, 0o644)
	t.Setenv(EnvPassphraseFile, p)
	t.Setenv(EnvPassphrase, "lower priority")
	dir := t.TempDir()
	_, err := Create(BackendFile, Options{Dir: dir, Argon2: cheapArgon2})
	if !errors.Is(err, ErrInsecurePermissions) || !strings.Contains(err.Error(), EnvPassphraseFile) {
		t.Fatalf("got %v, want ErrInsecurePermissions naming %s", err, EnvPassphraseFile)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused creation left %v", entries)
	}
}

func TestGeneratedPassphrase(t *testing.T) {
	clearPassphraseEnv(t)
	dir := t.TempDir()
	var warn bytes.Buffer
	// Standard input of `go test` is not a terminal, so no source has a
	// passphrase: one is generated and stored.
	s, err := Create(BackendFile, Options{Dir: dir, Argon2: cheapArgon2, Warn: &warn, Passphrase: []PassphraseSource{
		PassphraseEnv(EnvPassphrase), StoredPassphrase(dir), TerminalPrompt(nil, &warn),
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	stored := filepath.Join(dir, StoredPassphraseFile)
	if !strings.Contains(warn.String(), "WARNING") || !strings.Contains(warn.String(), stored) {
		t.Fatalf("warning %q does not name %s", warn.String(), stored)
	}
	fi, err := os.Stat(stored)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o400 {
		t.Fatalf("stored passphrase mode %v, want 0400", fi.Mode())
	}
	forgetUnlocks()
	r, err := Open(BackendFile, Options{Dir: dir})
	if err != nil {
		t.Fatalf("open with the stored passphrase: %v", err)
	}
	r.Close()
	if err := Remove(BackendFile, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Remove left %v", entries)
	}
}
