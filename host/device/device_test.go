package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/keystore/swtpmtest"
	"github.com/amesh-go/amesh/wasm/protocol"
)

var cheapArgon2 = &keystore.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1}

const testPassphrase = "device test passphrase"

func fileKS() keystore.Options {
	return keystore.Options{
		Argon2:     cheapArgon2,
		Passphrase: []keystore.PassphraseSource{keystore.StaticPassphrase([]byte(testPassphrase))},
		Warn:       &bytes.Buffer{},
	}
}

// backend describes how to run a test against one keystore backend.
type backend struct {
	name string
	ks   func(t *testing.T) keystore.Options
}

func backends() []backend {
	return []backend{
		{keystore.BackendMemory, func(*testing.T) keystore.Options { return keystore.Options{} }},
		{keystore.BackendFile, func(*testing.T) keystore.Options { return fileKS() }},
		{keystore.BackendTPM, func(t *testing.T) keystore.Options {
			return keystore.Options{TPMDevice: swtpmtest.Start(t).Device}
		}},
	}
}

func create(t *testing.T, b backend, name string) (*State, keystore.Options) {
	t.Helper()
	ks := b.ks(t)
	dir := filepath.Join(t.TempDir(), "amesh")
	s, err := Create(CreateOptions{Dir: dir, Name: name, Backend: b.name, Keystore: ks})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		keystore.Remove(keystore.BackendMemory, keystore.Options{Dir: dir})
	})
	return s, ks
}

func newEntry(t testing.TB, name, role string) (Entry, *protocol.PrivateKey) {
	t.Helper()
	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Entry{DeviceID: k.Public().DeviceID(), PublicKey: k.Public().String(), FriendlyName: name, Role: role, AddedBy: "test"}, k
}

func TestIdentityFile(t *testing.T) {
	now := time.Date(2026, 3, 28, 10, 0, 0, 123456789, time.UTC)
	dir := filepath.Join(t.TempDir(), "amesh")
	s, err := Create(CreateOptions{Dir: dir, Name: "build-server", Backend: keystore.BackendFile, MaxControllers: 3, Keystore: fileKS(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Identity()
	s.Close()
	data, _ := os.ReadFile(filepath.Join(dir, IdentityFile))
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": 1.0, "deviceId": id.DeviceID, "keyAlias": id.KeyAlias, "publicKey": id.PublicKey,
		"friendlyName": "build-server", "createdAt": "2026-03-28T10:00:00.123Z",
		"storageBackend": "encrypted-file", "maxControllers": 3.0,
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("identity.json = %v\nwant %v", m, want)
	}
	if !strings.HasPrefix(id.DeviceID, "am_") || len(id.DeviceID) != 19 {
		t.Fatalf("device ID %q", id.DeviceID)
	}
	if runtime.GOOS != "windows" {
		for name, mode := range map[string]os.FileMode{"": 0o700, IdentityFile: 0o600, AllowListFile: 0o600, keystore.FileKeyName: 0o600} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.Mode().Perm() != mode {
				t.Errorf("%q: mode %v, %v; want %04o", name, fi.Mode().Perm(), err, mode)
			}
		}
	}

	// maxControllers is omitted at the default, as the seed writes it.
	dir2 := filepath.Join(t.TempDir(), "amesh")
	s2, err := Create(CreateOptions{Dir: dir2, Name: "laptop", Backend: keystore.BackendFile, Keystore: fileKS()})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	data, _ = os.ReadFile(filepath.Join(dir2, IdentityFile))
	if bytes.Contains(data, []byte("maxControllers")) {
		t.Fatalf("maxControllers written at its default: %s", data)
	}

	// The seed's files may carry fields we do not know; they are ignored.
	seedLike := bytes.Replace(data, []byte(`"version": 1,`), []byte(`"version": 1, "extra": true,`), 1)
	if _, err := parseIdentity(seedLike); err != nil {
		t.Fatalf("identity with an unknown field: %v", err)
	}
	r, err := Open(dir2, fileKS())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := ReadIdentity(dir2); err != nil || got.DeviceID != r.Identity().DeviceID {
		t.Fatalf("ReadIdentity: %v %v", got, err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(EnvDir, "/somewhere/amesh")
	if d, _ := DefaultDir(); d != "/somewhere/amesh" {
		t.Fatalf("DefaultDir = %q", d)
	}
	t.Setenv(EnvDir, "")
	home, _ := os.UserHomeDir()
	if d, _ := DefaultDir(); d != filepath.Join(home, ".amesh") {
		t.Fatalf("DefaultDir = %q", d)
	}
}

func TestCreateRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "amesh")
	for _, tc := range []struct {
		name string
		opts CreateOptions
	}{
		{"empty name", CreateOptions{Dir: dir, Backend: keystore.BackendFile, Keystore: fileKS()}},
		{"escape in name", CreateOptions{Dir: dir, Name: "evil\x1b[2J", Backend: keystore.BackendFile, Keystore: fileKS()}},
		{"negative max", CreateOptions{Dir: dir, Name: "x", MaxControllers: -1, Backend: keystore.BackendFile, Keystore: fileKS()}},
		{"unknown backend", CreateOptions{Dir: dir, Name: "x", Backend: "floppy", Keystore: fileKS()}},
		{"absent TPM", CreateOptions{Dir: dir, Name: "x", Backend: keystore.BackendTPM, Keystore: keystore.Options{TPMDevice: "/nonexistent/tpm"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Create(tc.opts); err == nil {
				t.Fatal("created")
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != LockFile {
					t.Fatalf("failed create left %s", e.Name())
				}
			}
		})
	}
}

func TestCreateExistingAndForce(t *testing.T) {
	for _, b := range []backend{backends()[1], backends()[2]} {
		t.Run(b.name, func(t *testing.T) {
			s, ks := create(t, b, "first")
			old := s.Identity()
			e, _ := newEntry(t, "ctl", protocol.RoleController)
			if _, err := s.Add(e, AddOptions{}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			_, err := Create(CreateOptions{Dir: s.Dir(), Name: "second", Backend: b.name, Keystore: ks})
			if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("create over an identity: %v", err)
			}
			n, err := Create(CreateOptions{Dir: s.Dir(), Name: "second", Backend: b.name, Keystore: ks, Force: true})
			if err != nil {
				t.Fatalf("create --force: %v", err)
			}
			defer n.Close()
			if n.Identity().PublicKey == old.PublicKey {
				t.Fatal("--force kept the old key")
			}
			if d, err := n.Devices(); err != nil || len(d) != 0 {
				t.Fatalf("new identity trusts %v, %v", d, err)
			}
		})
	}
}

func TestAllowListWithVerifier(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			target, _ := create(t, b, "api-server")
			ctl, ctlKey := newEntry(t, "laptop", protocol.RoleController)
			if _, err := target.Add(ctl, AddOptions{}); err != nil {
				t.Fatal(err)
			}
			l, err := target.AllowList()
			if err != nil {
				t.Fatal(err)
			}
			v, err := protocol.NewVerifier(protocol.Config{AllowList: l, Nonces: protocol.NewMemoryNonceStore(100)})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			req := func(k protocol.Signer) *protocol.Request {
				signed, err := protocol.SignRequest(k, protocol.SignParams{Method: "GET", Target: "/api", Time: now})
				if err != nil {
					t.Fatal(err)
				}
				return &protocol.Request{Method: "GET", Target: "/api", Host: "api.example.test", Authorization: []string{signed.Authorization}}
			}
			if res := v.Verify(context.Background(), req(ctlKey), now); !res.OK() || res.Device.Name != "laptop" {
				t.Fatalf("controller rejected: %+v", res)
			}
			// The device's own key, which the keystore holds, signs too; it
			// is not in its own allow list.
			if res := v.Verify(context.Background(), req(target.Key()), now); res.Status() != 401 {
				t.Fatalf("self-signed request: %+v", res)
			}

			// Tampering makes the next snapshot answer 500.
			path := filepath.Join(target.Dir(), AllowListFile)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, bytes.Replace(data, []byte("laptop"), []byte("Laptop"), 1), 0o600)
			if !l.Changed() {
				t.Fatal("Changed missed a rewrite")
			}
			bad, err := target.AllowList()
			if !errors.Is(err, protocol.ErrIntegrity) {
				t.Fatalf("tampered list loaded: %v", err)
			}
			v2, _ := protocol.NewVerifier(protocol.Config{AllowList: bad, Nonces: protocol.NewMemoryNonceStore(100)})
			res := v2.Verify(context.Background(), req(ctlKey), now)
			if res.Status() != 500 || res.Code != protocol.CodeIntegrityFailure {
				t.Fatalf("verifier with a tampered list: %+v", res)
			}
		})
	}
}

func TestChanged(t *testing.T) {
	s, _ := create(t, backends()[0], "x")
	l, err := s.AllowList()
	if err != nil {
		t.Fatal(err)
	}
	if l.Changed() {
		t.Fatal("Changed without a change")
	}
	e, _ := newEntry(t, "t", protocol.RoleTarget)
	if _, err := s.Add(e, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if !l.Changed() {
		t.Fatal("Changed missed an add")
	}
	l2, _ := s.AllowList()
	if l2.Changed() || l2.Generation() != l.Generation()+1 {
		t.Fatalf("reloaded: changed %v, generation %d after %d", l2.Changed(), l2.Generation(), l.Generation())
	}
}

// TestIntegrity runs the attacks the seal must catch, on every backend.
func TestIntegrity(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s, ks := create(t, b, "target")
			path := filepath.Join(s.Dir(), AllowListFile)
			ctl, _ := newEntry(t, "old-controller", protocol.RoleController)
			if _, err := s.Add(ctl, AddOptions{}); err != nil {
				t.Fatal(err)
			}
			withController, _ := os.ReadFile(path)
			if _, err := s.Remove(ctl.DeviceID); err != nil { // revoked
				t.Fatal(err)
			}
			current, _ := os.ReadFile(path)

			expectIntegrity := func(t *testing.T, what string) {
				t.Helper()
				_, err := s.AllowList()
				var ie *IntegrityError
				if !errors.As(err, &ie) || !errors.Is(err, protocol.ErrIntegrity) || !strings.Contains(err.Error(), path) {
					t.Fatalf("%s: got %v, want an IntegrityError naming %s", what, err, path)
				}
				t.Logf("%s: %v", what, err)
				// Writers refuse too, and change nothing.
				before, _ := os.ReadFile(path)
				e, _ := newEntry(t, "new", protocol.RoleTarget)
				if _, err := s.Add(e, AddOptions{}); !errors.Is(err, protocol.ErrIntegrity) {
					t.Fatalf("%s: add on a broken list: %v", what, err)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(before, after) {
					t.Fatalf("%s: a refused add changed the file", what)
				}
				// And so does a fresh process opening the state.
				r, err := Open(s.Dir(), ks)
				if err == nil {
					_, err = r.AllowList()
					r.Close()
				}
				if !errors.Is(err, protocol.ErrIntegrity) && b.name != keystore.BackendMemory {
					t.Fatalf("%s: reopened state: %v", what, err)
				}
			}
			restore := func() { os.WriteFile(path, current, 0o600) }

			for i := range current {
				if current[i] == '"' || current[i] == ' ' || current[i] == '\n' {
					continue
				}
				if i%7 != 0 {
					continue // a sample of positions keeps the TPM run short
				}
				flipped := bytes.Clone(current)
				flipped[i] ^= 0x01
				os.WriteFile(path, flipped, 0o600)
				if _, err := s.AllowList(); !errors.Is(err, protocol.ErrIntegrity) {
					t.Fatalf("byte %d flipped (%q): %v", i, current[i], err)
				}
			}
			os.WriteFile(path, bytes.Replace(current, []byte(`"generation": `), []byte(`"generation": 1`), 1), 0o600)
			expectIntegrity(t, "generation edited")
			os.WriteFile(path, withController, 0o600)
			expectIntegrity(t, "older copy restored")
			os.Remove(path)
			expectIntegrity(t, "file deleted")
			os.WriteFile(path, nil, 0o600)
			expectIntegrity(t, "file emptied")
			restore()
			if d, err := s.Devices(); err != nil || len(d) != 0 {
				t.Fatalf("restored current list: %v %v", d, err)
			}
		})
	}
}

// TestInterruptedCommit stops a writer between writing the file and
// committing its generation: readers accept the file, the next writer
// finishes the commit, and the file from before is then a rollback.
func TestInterruptedCommit(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s, _ := create(t, b, "target")
			path := filepath.Join(s.Dir(), AllowListFile)
			before, _ := os.ReadFile(path)
			l, _ := s.AllowList()
			e, _ := newEntry(t, "half-written", protocol.RoleTarget)
			e.AddedAt = Time{time.Now()}
			e.normalize()
			data, err := sealList(s.sealKey, &listBody{Generation: l.Generation() + 1, Devices: []Entry{e}})
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(path, data, 0o600) // no CommitGeneration: the crash
			if d, err := s.Devices(); err != nil || len(d) != 1 {
				t.Fatalf("reader after an interrupted commit: %v %v", d, err)
			}
			e2, _ := newEntry(t, "next", protocol.RoleTarget)
			if _, err := s.Add(e2, AddOptions{}); err != nil {
				t.Fatalf("writer after an interrupted commit: %v", err)
			}
			if d, _ := s.Devices(); len(d) != 2 {
				t.Fatalf("devices %v", d)
			}
			os.WriteFile(path, before, 0o600)
			if _, err := s.AllowList(); !errors.Is(err, protocol.ErrIntegrity) {
				t.Fatalf("pre-crash file accepted: %v", err)
			}
		})
	}
}

func TestAddRemoveRules(t *testing.T) {
	s, _ := create(t, backends()[0], "target")
	path := filepath.Join(s.Dir(), AllowListFile)
	c1, _ := newEntry(t, "controller one", protocol.RoleController)
	c2, _ := newEntry(t, "controller two", protocol.RoleController)
	tg, _ := newEntry(t, "a target", protocol.RoleTarget)
	for _, e := range []Entry{c1, tg} {
		if _, err := s.Add(e, AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	unchanged := func(t *testing.T, fn func() error) {
		t.Helper()
		before, _ := os.ReadFile(path)
		if err := fn(); err == nil {
			t.Fatal("no error")
		} else {
			t.Log(err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatal("a refused change altered the file")
		}
	}
	unchanged(t, func() error {
		_, err := s.Add(c2, AddOptions{})
		if !errors.Is(err, ErrTooManyControllers) {
			return fmt.Errorf("want ErrTooManyControllers: %v", err)
		}
		return err
	})
	for _, tc := range []struct {
		name string
		edit func(*Entry)
	}{
		{"bad key", func(e *Entry) { e.PublicKey = "AAAA" }},
		{"wrong device ID", func(e *Entry) { e.DeviceID = "am_AAAAAAAAAAAAAAAA" }},
		{"bad role", func(e *Entry) { e.Role = "admin" }},
		{"escape sequence", func(e *Entry) { e.FriendlyName = "x\x1b]0;pwned\x07" }},
		{"bidi override", func(e *Entry) { e.FriendlyName = "abc\u202edef" }},
		{"long name", func(e *Entry) { e.FriendlyName = strings.Repeat("n", MaxNameBytes+1) }},
		{"invalid UTF-8", func(e *Entry) { e.FriendlyName = "\xff" }},
		{"empty name", func(e *Entry) { e.FriendlyName = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEntry(t, "ok", protocol.RoleTarget)
			tc.edit(&e)
			unchanged(t, func() error {
				_, err := s.Add(e, AddOptions{})
				if !errors.Is(err, ErrInvalidEntry) {
					return fmt.Errorf("want ErrInvalidEntry: %v", err)
				}
				return err
			})
		})
	}
	self := Entry{PublicKey: s.Identity().PublicKey, FriendlyName: "me", Role: protocol.RoleController}
	unchanged(t, func() error { _, err := s.Add(self, AddOptions{}); return err })
	unchanged(t, func() error {
		_, err := s.Remove("am_doesnotexist0000")
		if !errors.Is(err, ErrUnknownDevice) {
			return fmt.Errorf("want ErrUnknownDevice: %v", err)
		}
		return err
	})

	// Re-pairing a known controller updates it in place, within the limit.
	c1.FriendlyName = "controller one, renamed"
	if _, err := s.Add(c1, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	replaced, err := s.Add(c2, AddOptions{ReplaceControllers: true})
	if err != nil || len(replaced) != 1 || replaced[0].DeviceID != c1.DeviceID {
		t.Fatalf("replace: %v %v", replaced, err)
	}
	devs, _ := s.Devices()
	if len(devs) != 2 || devs[0].DeviceID != tg.DeviceID || devs[1].DeviceID != c2.DeviceID {
		t.Fatalf("devices after replace: %+v", devs)
	}
	if got, err := s.Remove(tg.DeviceID); err != nil || got.FriendlyName != "a target" {
		t.Fatalf("remove: %v %v", got, err)
	}
	l, _ := s.AllowList()
	if e, ok := l.Find(c2.DeviceID); !ok || e.AddedBy != "test" || e.AddedAt.IsZero() {
		t.Fatalf("Find: %+v %v", e, ok)
	}
}

// helperEnv selects what the test binary does when a test re-executes it
// as a separate process.
const helperEnv = "AMESH_DEVICE_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "add" {
		os.Exit(helperAdd())
	}
	os.Exit(m.Run())
}

// helperAdd opens the state like a separate amesh process and trusts one
// new device.
func helperAdd() int {
	s, err := Open(os.Getenv(EnvDir), fileKS())
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		return 1
	}
	defer s.Close()
	e, _ := newEntry(&testing.T{}, "device "+os.Getenv("AMESH_HELPER_N"), protocol.RoleTarget)
	if _, err := s.Add(e, AddOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "helper: add:", err)
		return 1
	}
	return 0
}

func TestConcurrentAddsFromProcesses(t *testing.T) {
	const n = 100
	s, _ := create(t, backends()[1], "target")
	g0, _ := s.AllowList()
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), helperEnv+"=add", EnvDir+"="+s.Dir(), "AMESH_HELPER_N="+strconv.Itoa(i))
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i])
		}
	}
	devs, err := s.Devices()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range devs {
		names[d.FriendlyName] = true
	}
	if len(devs) != n || len(names) != n {
		t.Fatalf("%d devices (%d distinct names) survived %d concurrent adds", len(devs), len(names), n)
	}
	l, _ := s.AllowList()
	if l.Generation() != g0.Generation()+n {
		t.Fatalf("generation %d, want %d", l.Generation(), g0.Generation()+n)
	}
	if g, _ := s.store.Generation(); g != l.Generation() {
		t.Fatalf("keystore generation %d, file %d", g, l.Generation())
	}
}

func TestTimeRange(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`"2026-03-28T10:00:00.000Z"`, true},
		{`"2026-03-28T10:00:00+02:00"`, true},
		{`"9999-12-31T23:59:59-23:59"`, false},
		{`"0000-01-01T00:00:00+01:00"`, false},
		{`"yesterday"`, false},
		{`12`, false},
	} {
		var v Time
		if err := v.UnmarshalJSON([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.in, err)
		}
	}
}

func TestInterruptedInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "amesh")
	ks := fileKS()
	ks.Dir = dir
	os.MkdirAll(dir, 0o700)
	stale, err := keystore.Create(keystore.BackendFile, ks) // a key, but no identity.json
	if err != nil {
		t.Fatal(err)
	}
	stale.Close()
	_, err = Create(CreateOptions{Dir: dir, Name: "x", Backend: keystore.BackendFile, Keystore: fileKS()})
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("create over a stale key: %v", err)
	}
	s, err := Create(CreateOptions{Dir: dir, Name: "x", Backend: keystore.BackendFile, Keystore: fileKS(), Force: true})
	if err != nil {
		t.Fatalf("create --force over a stale key: %v", err)
	}
	s.Close()
}

// TestBackendNeverSwitched: identity.json's backend is used strictly; when
// it cannot open, Open fails naming it instead of trying another backend.
func TestBackendNeverSwitched(t *testing.T) {
	s, _ := create(t, backends()[1], "x")
	s.Close()
	path := filepath.Join(s.Dir(), IdentityFile)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte(`"encrypted-file"`), []byte(`"tpm"`), 1), 0o600)
	_, err := Open(s.Dir(), keystore.Options{TPMDevice: "/nonexistent/tpm"})
	if err == nil || !strings.Contains(err.Error(), "tpm key") {
		t.Fatalf("open with an unavailable recorded backend: %v", err)
	}
}

func TestDestroyLeavesNothing(t *testing.T) {
	t.Setenv("AUTH_MESH_PASSPHRASE", "destroy-test")
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Create(CreateOptions{Dir: dir, Name: "gone", Backend: keystore.BackendFile,
		Keystore: keystore.Options{Argon2: &keystore.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := Destroy(dir, keystore.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("directory still there (%v): %v", err, entries)
	}
	// A directory holding other files stays, emptied of the identity.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "notes.txt"), []byte("mine"), 0o600)
	s, err = Create(CreateOptions{Dir: dir2, Name: "gone", Backend: keystore.BackendMemory})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := Destroy(dir2, keystore.Options{}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir2)
	if len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Fatalf("left %v", entries)
	}
}
