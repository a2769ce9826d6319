package keystore

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// p256Order is n: r and s of a signature lie in [1, n-1].
var p256Order = elliptic.P256().Params().N

// softEnclave stands in for the Secure Enclave in tests: software P-256
// keys by tag, DER signatures, and switches that make it misbehave the ways
// the real one could. The real one is exercised on a Mac only.
type softEnclave struct {
	mu   sync.Mutex
	keys map[string]*ecdsa.PrivateKey
	open int // handles not yet closed

	failCreate   bool // create fails
	badPublic    bool // create and load hand back a malformed public key
	wrongPublic  bool // load hands back another key's public key
	failSign     bool // signing fails
	malformedDER bool // signatures are not DER
	highS        bool // signatures always have the high s
	otherSigner  bool // signatures are made with another key
	failRemove   bool // deleting a key fails
}

func newSoftEnclave() *softEnclave { return &softEnclave{keys: map[string]*ecdsa.PrivateKey{}} }

func (e *softEnclave) handle(k *ecdsa.PrivateKey) (enclaveKey, []byte, error) {
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, nil, err
	}
	if e.badPublic {
		pub[64] ^= 1 // still 65 bytes, no longer on the curve
	}
	if e.wrongPublic {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, _ = other.PublicKey.Bytes()
	}
	e.open++
	return &softKey{e: e, k: k}, pub, nil
}

func (e *softEnclave) create(tag string) (enclaveKey, []byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failCreate {
		return nil, nil, &enclaveStatusError{call: "SecKeyCreateRandomKey", code: errSecMissingEntitlement}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	e.keys[tag] = k
	return e.handle(k)
}

func (e *softEnclave) load(tag string) (enclaveKey, []byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[tag]
	if !ok {
		return nil, nil, errEnclaveKeyNotFound
	}
	return e.handle(k)
}

func (e *softEnclave) remove(tag string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failRemove {
		return &enclaveStatusError{call: "SecItemDelete", code: errSecInteractionNotAllowed}
	}
	delete(e.keys, tag)
	return nil
}

func (e *softEnclave) openHandles() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.open
}

type softKey struct {
	e      *softEnclave
	k      *ecdsa.PrivateKey
	closed bool
}

func (k *softKey) signDigest(d []byte) ([]byte, error) {
	k.e.mu.Lock()
	defer k.e.mu.Unlock()
	if k.closed {
		return nil, errors.New("soft enclave: handle used after close")
	}
	if k.e.failSign {
		return nil, &enclaveStatusError{call: "SecKeyCreateSignature", code: errSecInteractionNotAllowed}
	}
	if k.e.malformedDER {
		return []byte{0x30, 0x02, 0x02, 0x00}, nil
	}
	signer := k.k
	if k.e.otherSigner {
		signer, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	der, err := ecdsa.SignASN1(rand.Reader, signer, d)
	if err != nil || !k.e.highS {
		return der, err
	}
	r, s := parseDERForTest(der)
	if s.Cmp(new(big.Int).Rsh(p256Order, 1)) <= 0 {
		s.Sub(p256Order, s)
	}
	return derForTest(r, s), nil
}

func (k *softKey) close() {
	k.e.mu.Lock()
	defer k.e.mu.Unlock()
	if k.closed {
		panic("soft enclave: handle closed twice")
	}
	k.closed = true
	k.e.open--
}

// ecdsaSig is the ASN.1 ECDSA-Sig-Value, for encoding/asn1.
type ecdsaSig struct{ R, S *big.Int }

func parseDERForTest(der []byte) (r, s *big.Int) {
	var sig ecdsaSig
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 {
		panic("test signature is not DER")
	}
	return sig.R, sig.S
}

func derForTest(r, s *big.Int) []byte {
	der, err := asn1.Marshal(ecdsaSig{r, s})
	if err != nil {
		panic(err)
	}
	return der
}

// failingItems is an itemStore whose puts can fail or have side effects.
type failingItems struct {
	memItems
	onPut func(account string) error
}

func (f *failingItems) put(a string, d []byte) error {
	if f.onPut != nil {
		if err := f.onPut(a); err != nil {
			return err
		}
	}
	return f.memItems.put(a, d)
}

func (m *memItems) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

func enclaveOptions(dir string) Options { return Options{Dir: dir, KeyAlias: "amesh-test"} }

func TestEnclaveLogic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	se, items := newSoftEnclave(), &memItems{}
	s, err := createEnclave(enclaveOptions(dir), se, items)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if s.Backend() != BackendSecureEnclave {
		t.Fatalf("backend %q", s.Backend())
	}
	checkSigns(t, s, 50)
	secret, err := s.SealingSecret()
	if err != nil || len(secret) != SecretSize {
		t.Fatalf("sealing secret: %d bytes, %v", len(secret), err)
	}
	checkGenerations(t, s)
	g, _ := s.Generation()
	pub := s.PublicKey()

	// The file says what it should, and only that.
	data, err := os.ReadFile(filepath.Join(dir, EnclaveKeyName))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	parseJSON(t, data, &f)
	want := map[string]any{"version": 1.0, "alias": "amesh-test", "tag": "amesh.amesh-test", "publicKey": base64.StdEncoding.EncodeToString(pub)}
	if fmt.Sprint(f) != fmt.Sprint(want) {
		t.Fatalf("key file %v, want %v", f, want)
	}
	if fi, _ := os.Stat(filepath.Join(dir, EnclaveKeyName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o", fi.Mode().Perm())
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if n := se.openHandles(); n != 0 {
		t.Fatalf("%d key handles open after Close", n)
	}
	for name, f := range map[string]func() error{
		"SignDigest":       func() error { _, err := s.SignDigest(make([]byte, 32)); return err },
		"SealingSecret":    func() error { _, err := s.SealingSecret(); return err },
		"Generation":       func() error { _, err := s.Generation(); return err },
		"CommitGeneration": func() error { return s.CommitGeneration(g + 1) },
	} {
		if err := f(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if !bytes.Equal(secret, mustGet(t, items, secretAccount("amesh-test"))) {
		t.Fatal("Close wiped the Keychain's copy of the secret")
	}

	r, err := openEnclave(Options{Dir: dir}, se, items)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
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
	if _, err := r.SignDigest(make([]byte, 31)); err == nil {
		t.Fatal("signing a 31-byte digest succeeded")
	}

	// A second store on the same key sees the first one's commits, and
	// neither can lower the generation.
	r2, err := openEnclave(Options{Dir: dir}, se, items)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CommitGeneration(g + 5); err != nil {
		t.Fatal(err)
	}
	if err := r2.CommitGeneration(g + 3); err != nil {
		t.Fatal(err)
	}
	if got, err := r2.Generation(); err != nil || got != g+5 {
		t.Fatalf("generation %d, %v; want %d", got, err, g+5)
	}
	r.Close()
	r2.Close()

	if _, err := createEnclave(enclaveOptions(dir), se, items); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if n := se.openHandles(); n != 0 {
		t.Fatalf("%d key handles left open", n)
	}
}

func TestEnclaveSignatures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*softEnclave)
		wantErr string
	}{
		{"low or high S as it comes", func(*softEnclave) {}, ""},
		{"always high S", func(e *softEnclave) { e.highS = true }, ""},
		{"malformed DER", func(e *softEnclave) { e.malformedDER = true }, "unusable signature"},
		{"signing fails", func(e *softEnclave) { e.failSign = true }, "unlock"},
		{"signed by another key", func(e *softEnclave) { e.otherSigner = true }, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			se := newSoftEnclave()
			s, err := createEnclave(enclaveOptions(t.TempDir()), se, &memItems{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tc.set(se)
			if tc.wantErr == "" {
				checkSigns(t, s, 50)
				return
			}
			d := sha256.Sum256([]byte("x"))
			if sig, err := s.SignDigest(d[:]); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %x, %v; want an error saying %q", sig, err, tc.wantErr)
			}
		})
	}
}

// The stand-in's high-S switch must really produce high-S signatures, or
// the test above proves nothing.
func TestSoftEnclaveHighS(t *testing.T) {
	e := newSoftEnclave()
	e.highS = true
	k, _, _ := e.create("t")
	defer k.close()
	der, _ := k.signDigest(make([]byte, 32))
	_, s := parseDERForTest(der)
	if s.Cmp(new(big.Int).Rsh(p256Order, 1)) <= 0 {
		t.Fatal("stand-in returned a low-S signature")
	}
}

func TestEnclaveConcurrentSignAndClose(t *testing.T) {
	se := newSoftEnclave()
	s, err := createEnclave(enclaveOptions(t.TempDir()), se, &memItems{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := s.SignDigest(make([]byte, 32)); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
			}
		})
	}
	s.Close()
	wg.Wait()
	if n := se.openHandles(); n != 0 {
		t.Fatalf("%d handles open", n)
	}
}

func TestEnclaveOpenErrors(t *testing.T) {
	otherKey, _ := protocol.GeneratePrivateKey(nil)
	for _, tc := range []struct {
		name string
		// change breaks something after a successful create.
		change   func(t *testing.T, path string, se *softEnclave, items *memItems)
		want     error
		wantText string
	}{
		{"no key file", func(t *testing.T, path string, _ *softEnclave, _ *memItems) { os.Remove(path) }, ErrNotFound, ""},
		{"garbled file", editFile(func(b []byte) []byte { return b[:len(b)/2] }), ErrCorrupt, ""},
		{"not JSON", editFile(func([]byte) []byte { return []byte("\x00\x01binary") }), ErrCorrupt, ""},
		{"unknown field", replaceInFile(`"version": 1`, `"version": 1, "extra": true`), ErrCorrupt, ""},
		{"data after the object", editFile(func(b []byte) []byte { return append(b, "{}"...) }), ErrCorrupt, ""},
		{"version 2", replaceInFile(`"version": 1`, `"version": 2`), ErrCorrupt, ""},
		{"tag of another alias", replaceInFile(`"tag": "amesh.amesh-test"`, `"tag": "amesh.amesh-other"`), ErrCorrupt, ""},
		{"alias changed with its tag", func(t *testing.T, path string, se *softEnclave, items *memItems) {
			replaceInFile(`"alias": "amesh-test"`, `"alias": "amesh-other"`)(t, path, se, items)
			replaceInFile(`"tag": "amesh.amesh-test"`, `"tag": "amesh.amesh-other"`)(t, path, se, items)
		}, ErrNotFound, ReenrolHint},
		{"too large", editFile(func(b []byte) []byte { return append(b, bytes.Repeat([]byte(" "), maxKeyFileBytes)...) }), ErrCorrupt, ""},
		{"another public key in the file", func(t *testing.T, path string, se *softEnclave, items *memItems) {
			data, _ := os.ReadFile(path)
			var f enclaveFile
			parseJSON(t, data, &f)
			replaceInFile(f.PublicKey, otherKey.Public().String())(t, path, se, items)
		}, ErrCorrupt, "is not the key"},
		{"enclave key deleted", func(_ *testing.T, _ string, se *softEnclave, _ *memItems) { se.remove("amesh.amesh-test") }, ErrNotFound, ReenrolHint},
		{"enclave answers with another key", func(_ *testing.T, _ string, se *softEnclave, _ *memItems) { se.wrongPublic = true }, ErrCorrupt, "is not the key"},
		{"enclave answers with a malformed key", func(_ *testing.T, _ string, se *softEnclave, _ *memItems) { se.badPublic = true }, nil, "not on the P-256 curve"},
		{"sealing secret deleted", func(_ *testing.T, _ string, _ *softEnclave, items *memItems) {
			items.remove(secretAccount("amesh-test"))
		}, ErrNotFound, ReenrolHint},
		{"sealing secret shortened", func(_ *testing.T, _ string, _ *softEnclave, items *memItems) {
			items.put(secretAccount("amesh-test"), []byte("short"))
		}, ErrCorrupt, ""},
		{"generation deleted", func(_ *testing.T, _ string, _ *softEnclave, items *memItems) { items.remove(genAccount("amesh-test")) }, ErrNotFound, ReenrolHint},
		{"generation garbled", func(_ *testing.T, _ string, _ *softEnclave, items *memItems) {
			items.put(genAccount("amesh-test"), []byte{1})
		}, ErrCorrupt, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			se, items := newSoftEnclave(), &memItems{}
			s, err := createEnclave(enclaveOptions(dir), se, items)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			tc.change(t, filepath.Join(dir, EnclaveKeyName), se, items)
			r, err := openEnclave(Options{Dir: dir}, se, items)
			if err == nil {
				r.Close()
				t.Fatal("open succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
			if !strings.HasPrefix(err.Error(), "keystore: ") {
				t.Errorf("error %q lacks the keystore: prefix", err)
			}
			if n := se.openHandles(); n != 0 {
				t.Errorf("%d key handles left open", n)
			}
		})
	}
}

// The file holds the key in standard base64 only, although the protocol's
// decoder also takes base64url.
func TestParseEnclaveFileBase64URL(t *testing.T) {
	var std string
	for !strings.ContainsAny(std, "+/") {
		k, err := protocol.GeneratePrivateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		std = k.Public().String()
	}
	file := func(pub string) []byte {
		return []byte(`{"version":1,"alias":"a","publicKey":"` + pub + `","tag":"amesh.a"}`)
	}
	if _, _, err := parseEnclaveFile(file(std)); err != nil {
		t.Fatalf("standard base64: %v", err)
	}
	url := strings.NewReplacer("+", "-", "/", "_").Replace(std)
	if _, _, err := parseEnclaveFile(file(url)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "standard base64") {
		t.Fatalf("base64url: %v, want ErrCorrupt", err)
	}
}

func editFile(f func([]byte) []byte) func(*testing.T, string, *softEnclave, *memItems) {
	return func(t *testing.T, path string, _ *softEnclave, _ *memItems) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func replaceInFile(old, new string) func(*testing.T, string, *softEnclave, *memItems) {
	return func(t *testing.T, path string, se *softEnclave, items *memItems) {
		t.Helper()
		editFile(func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("key file has no %q:\n%s", old, b)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		})(t, path, se, items)
	}
}

// A create that fails and cannot undo its key says both, so that the
// user knows a key is left behind.
func TestEnclaveCreateReportsFailedUndo(t *testing.T) {
	se := newSoftEnclave()
	se.badPublic, se.failRemove = true, true
	s, err := createEnclave(enclaveOptions(t.TempDir()), se, &failingItems{})
	if err == nil {
		s.Close()
		t.Fatal("create succeeded")
	}
	for _, want := range []string{"not on the P-256 curve", "and undoing it failed", "SecItemDelete"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// refusePut makes the Keychain refuse to store the item of one account.
func refusePut(account string) func(*softEnclave, *failingItems, string) {
	return func(_ *softEnclave, items *failingItems, _ string) {
		items.onPut = func(a string) error {
			if a == account {
				return errors.New("keychain full")
			}
			return nil
		}
	}
}

func TestEnclaveCreateFailureLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		set      func(e *softEnclave, items *failingItems, dir string)
		want     error
		wantText string
	}{
		{"enclave refuses", func(e *softEnclave, _ *failingItems, _ string) { e.failCreate = true }, nil, "keychain-access-groups"},
		{"malformed public key", func(e *softEnclave, _ *failingItems, _ string) { e.badPublic = true }, nil, "not on the P-256 curve"},
		{"Keychain refuses the secret", refusePut(secretAccount("amesh-test")), nil, "keychain full"},
		{"Keychain refuses the generation", refusePut(genAccount("amesh-test")), nil, "keychain full"},
		{"another create wins the key file", func(_ *softEnclave, items *failingItems, dir string) {
			items.onPut = func(a string) error {
				if a == genAccount("amesh-test") {
					return os.WriteFile(filepath.Join(dir, EnclaveKeyName), []byte("theirs"), 0o600)
				}
				return nil
			}
		}, ErrExists, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			se, items := newSoftEnclave(), &failingItems{}
			tc.set(se, items, dir)
			s, err := createEnclave(enclaveOptions(dir), se, items)
			if err == nil {
				s.Close()
				t.Fatal("create succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
			if len(se.keys) != 0 || se.openHandles() != 0 {
				t.Errorf("%d enclave keys and %d handles left", len(se.keys), se.openHandles())
			}
			if n := items.len(); n != 0 {
				t.Errorf("%d Keychain items left", n)
			}
			data, err := os.ReadFile(filepath.Join(dir, EnclaveKeyName))
			if err == nil && string(data) != "theirs" {
				t.Errorf("key file left behind: %s", data)
			}
		})
	}
}

func TestEnclaveCreateKeepsAnExistingTag(t *testing.T) {
	se, items := newSoftEnclave(), &memItems{}
	s, err := createEnclave(enclaveOptions(t.TempDir()), se, items)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Another directory with the same alias must neither reuse nor delete
	// the first one's key.
	if _, err := createEnclave(enclaveOptions(t.TempDir()), se, items); !errors.Is(err, ErrExists) {
		t.Fatalf("got %v, want ErrExists", err)
	}
	checkSigns(t, s, 1)
	if _, err := s.SealingSecret(); err != nil {
		t.Fatal(err)
	}
	if len(se.keys) != 1 || items.len() != 2 {
		t.Fatalf("%d keys, %d items after the refused create", len(se.keys), items.len())
	}
}

func TestEnclaveCreateRejectsAliases(t *testing.T) {
	for _, alias := range []string{"", strings.Repeat("a", maxAliasBytes+1)} {
		if _, err := createEnclave(Options{Dir: t.TempDir(), KeyAlias: alias}, newSoftEnclave(), &memItems{}); err == nil {
			t.Errorf("alias of %d bytes accepted", len(alias))
		}
	}
}

func TestEnclaveRemove(t *testing.T) {
	dir := t.TempDir()
	se, items := newSoftEnclave(), &memItems{}
	s, err := createEnclave(enclaveOptions(dir), se, items)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := removeEnclave(Options{Dir: dir}, se, items); err != nil {
		t.Fatal(err)
	}
	if len(se.keys) != 0 || items.len() != 0 {
		t.Fatalf("remove left %d enclave keys and %d Keychain items", len(se.keys), items.len())
	}
	if _, err := os.Stat(filepath.Join(dir, EnclaveKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("remove left the key file")
	}
	if err := removeEnclave(Options{Dir: dir}, se, items); err != nil {
		t.Fatalf("removing nothing: %v", err)
	}
	if _, err := openEnclave(Options{Dir: dir}, se, items); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open after remove: %v, want ErrNotFound", err)
	}
	// A new key can then be made in the same directory.
	s, err = createEnclave(enclaveOptions(dir), se, items)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A corrupt file cannot name its key, but still goes.
	os.WriteFile(filepath.Join(dir, EnclaveKeyName), []byte("garbage"), 0o600)
	if err := removeEnclave(Options{Dir: dir}, se, items); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, EnclaveKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("remove left the corrupt key file")
	}
}

// This build has no Secure Enclave backend (it needs darwin, cgo and the
// amesh_secureenclave tag): choosing it must say how to get one.
func TestSecureEnclaveUnavailable(t *testing.T) {
	if secureEnclaveAvailable {
		t.Skip("built with the Secure Enclave backend")
	}
	dir := t.TempDir()
	for name, f := range map[string]func() error{
		"Create": func() error { _, err := Create(BackendSecureEnclave, Options{Dir: dir}); return err },
		"Open":   func() error { _, err := Open(BackendSecureEnclave, Options{Dir: dir}); return err },
	} {
		err := f()
		if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "keystore: keystore") {
			t.Fatalf("%s: %v, want ErrUnavailable, saying keystore once", name, err)
		}
		for _, s := range []string{"macOS", "cgo", "go build -tags amesh_secureenclave", "keychain-access-groups", "keychain backend"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", name, err, s)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, EnclaveKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed Create left a key file")
	}
	// Remove can still clear a key file copied from a Mac.
	path := filepath.Join(dir, EnclaveKeyName)
	os.WriteFile(path, []byte("{}"), 0o600)
	if err := Remove(BackendSecureEnclave, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Remove left the key file")
	}
	for _, b := range Backends() {
		if b == BackendSecureEnclave {
			t.Fatal("Backends lists the secure-enclave backend in a build without it")
		}
	}
	if err := unknownBackend("floppy"); strings.Count(err.Error(), BackendSecureEnclave) != 1 {
		t.Fatalf("unknown-backend error %q should name secure-enclave once", err)
	}
}

func TestEnclaveStatusError(t *testing.T) {
	for _, tc := range []struct {
		err  enclaveStatusError
		want []string
	}{
		{enclaveStatusError{"SecKeyCreateRandomKey", errSecMissingEntitlement, "A required entitlement isn't present."},
			[]string{"SecKeyCreateRandomKey", "-34018", "A required entitlement", "code-signed", "keychain-access-groups", "keychain backend"}},
		{enclaveStatusError{"SecKeyCreateSignature", errSecInteractionNotAllowed, ""}, []string{"-25308", "unlock"}},
		{enclaveStatusError{"SecItemDelete", -25244, ""}, []string{"SecItemDelete: error -25244"}},
	} {
		got := tc.err.Error()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q does not contain %q", got, w)
			}
		}
	}
}
