package keystore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amesh-go/amesh/keystore/swtpmtest"
	"github.com/google/go-tpm/tpm2"
)

func tpmOpts(t *testing.T, sw *swtpmtest.TPM, dir string) Options {
	return Options{Dir: dir, TPMDevice: sw.Device}
}

// tpmHandles lists the TPM's loaded transient objects and sessions; after
// any amesh operation there must be none.
func tpmHandles(t *testing.T, opts Options) []tpm2.TPMHandle {
	t.Helper()
	tp, err := openTPMTransport(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	var all []tpm2.TPMHandle
	for _, ht := range []tpm2.TPMHT{tpm2.TPMHTTransient, tpm2.TPMHTHMACSession, tpm2.TPMHTPolicySession} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(ht) << 24, PropertyCount: 64}.Execute(tp)
		if err != nil {
			t.Fatalf("get handles: %v", err)
		}
		h, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, h.Handle...)
	}
	return all
}

func checkNoHandles(t *testing.T, opts Options, when string) {
	t.Helper()
	if h := tpmHandles(t, opts); len(h) != 0 {
		t.Fatalf("%s: %d handles left loaded in the TPM: %#x", when, len(h), h)
	}
}

func TestTPM(t *testing.T) {
	sw := swtpmtest.Start(t)
	dir := filepath.Join(t.TempDir(), "state")
	opts := tpmOpts(t, sw, dir)

	s, err := Create(BackendTPM, opts)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	checkNoHandles(t, opts, "after create")
	if s.Backend() != BackendTPM {
		t.Fatalf("backend %q", s.Backend())
	}
	// 1,000 signatures, every one verified and low-S: a TPM returns high-S
	// about half the time, so this fails without normalisation.
	checkSigns(t, s, 1000)
	checkNoHandles(t, opts, "after 1000 signatures")
	secret, err := s.SealingSecret()
	if err != nil || len(secret) != SecretSize {
		t.Fatalf("sealing secret: %v", err)
	}
	checkGenerations(t, s)
	gen, _ := s.Generation()
	pub := s.PublicKey()
	s.Close()
	if fi, err := os.Stat(filepath.Join(dir, TPMKeyName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}

	sw.Restart()
	r, err := Open(BackendTPM, opts)
	if err != nil {
		t.Fatalf("open after swtpm restart: %v", err)
	}
	defer r.Close()
	if !bytes.Equal(r.PublicKey(), pub) {
		t.Fatal("public key changed across restart")
	}
	secret2, _ := r.SealingSecret()
	if !bytes.Equal(secret, secret2) {
		t.Fatal("sealing secret changed across restart")
	}
	if g, err := r.Generation(); err != nil || g != gen {
		t.Fatalf("generation after restart %d, %v; want %d", g, err, gen)
	}
	checkSigns(t, r, 10)
	if _, err := Create(BackendTPM, opts); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	checkNoHandles(t, opts, "after reopen")

	// A second directory on the same TPM gets its own counter.
	other, err := Create(BackendTPM, tpmOpts(t, sw, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	og, _ := other.Generation()
	if err := other.CommitGeneration(og + 1); err != nil {
		t.Fatal(err)
	}
	if g, _ := r.Generation(); g != gen {
		t.Fatalf("another directory's commit moved this one's generation to %d", g)
	}

	var k tpmKeyFile
	data, _ := os.ReadFile(filepath.Join(dir, TPMKeyName))
	parseJSON(t, data, &k)
	if err := Remove(BackendTPM, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, TPMKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Remove left the key file")
	}
	tp, _ := openTPMTransport(opts)
	_, err = tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(k.NVIndex)}.Execute(tp)
	tp.Close()
	if err == nil {
		t.Fatal("Remove left the NV counter defined")
	}
	if _, err := r.Generation(); err == nil {
		t.Fatal("generation readable after the counter was removed")
	}
	checkNoHandles(t, opts, "at the end")
}

func TestTPMPIN(t *testing.T) {
	sw := swtpmtest.Start(t)
	dir := t.TempDir()
	opts := tpmOpts(t, sw, dir)
	opts.TPMPIN = []byte("1234")
	s, err := Create(BackendTPM, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSigns(t, s, 3)
	s.Close()

	noPIN := tpmOpts(t, sw, dir)
	t.Setenv(EnvTPMPIN, "")
	if _, err := Open(BackendTPM, noPIN); err == nil || !strings.Contains(err.Error(), EnvTPMPIN) {
		t.Fatalf("open without PIN: %v", err)
	}
	t.Setenv(EnvTPMPIN, "1234")
	e, err := Open(BackendTPM, noPIN)
	if err != nil {
		t.Fatalf("open with the PIN from %s: %v", EnvTPMPIN, err)
	}
	checkSigns(t, e, 1)
	e.Close()
	wrong := tpmOpts(t, sw, dir)
	wrong.TPMPIN = []byte("9999")
	w, err := Open(BackendTPM, wrong)
	if err != nil {
		t.Fatalf("open (the PIN is checked when signing): %v", err)
	}
	defer w.Close()
	_, err = w.SignDigest(make([]byte, 32))
	t.Logf("sign with wrong PIN: %v", err)
	if !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("sign with wrong PIN: %v, want ErrWrongPIN", err)
	}
	checkNoHandles(t, opts, "after a wrong PIN")
	// The key is not locked out (noDA): the right PIN still works.
	r, err := Open(BackendTPM, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkSigns(t, r, 3)
}

func TestTPMCleared(t *testing.T) {
	sw := swtpmtest.Start(t)
	dir := t.TempDir()
	opts := tpmOpts(t, sw, dir)
	s, err := Create(BackendTPM, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// TPM2_Clear, as a firmware update or a "clear TPM" in the setup
	// screen does: new owner seed, owner NV indices gone.
	tp, _ := openTPMTransport(opts)
	_, err = tpm2.Clear{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHLockout, Auth: tpm2.PasswordAuth(nil)}}.Execute(tp)
	tp.Close()
	if err != nil {
		t.Fatalf("TPM2_Clear: %v", err)
	}
	_, err = Open(BackendTPM, opts)
	t.Logf("open after clear: %v", err)
	if !errors.Is(err, ErrTPMKeyLost) || !strings.Contains(err.Error(), "amesh init --force") {
		t.Fatalf("open after clear: %v, want ErrTPMKeyLost with the re-enrol command", err)
	}
	if _, err := s.SignDigest(make([]byte, 32)); !errors.Is(err, ErrTPMKeyLost) {
		t.Fatalf("sign after clear: %v, want ErrTPMKeyLost", err)
	}
	if _, err := s.Generation(); err == nil {
		t.Fatal("generation readable after clear")
	}
	checkNoHandles(t, opts, "after failures")
	if err := Remove(BackendTPM, opts); err != nil {
		t.Fatalf("remove after clear: %v", err)
	}
}

func TestTPMOwnerAuthSet(t *testing.T) {
	sw := swtpmtest.Start(t)
	opts := tpmOpts(t, sw, t.TempDir())
	tp, _ := openTPMTransport(opts)
	_, err := tpm2.HierarchyChangeAuth{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NewAuth:    tpm2.TPM2BAuth{Buffer: []byte("owner password")},
	}.Execute(tp)
	tp.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Create(BackendTPM, opts)
	t.Logf("create with owner auth set: %v", err)
	if !errors.Is(err, ErrTPMOwnerAuth) || !strings.Contains(err.Error(), "tpm2_changeauth") {
		t.Fatalf("create with owner auth set: %v, want ErrTPMOwnerAuth", err)
	}
	if entries, _ := os.ReadDir(opts.Dir); len(entries) != 0 {
		t.Fatalf("failed create left %v", entries)
	}
	checkNoHandles(t, opts, "after failed create")
}

func TestTPMDetect(t *testing.T) {
	sw := swtpmtest.Start(t)
	t.Setenv(EnvTPMDevice, sw.Device)
	b, probes := Detect(Options{Dir: t.TempDir()})
	if b != BackendTPM || len(probes) != 1 || !probes[0].OK {
		t.Fatalf("Detect = %s %+v, want tpm", b, probes)
	}
	sw.Stop()
	if b, _ := Detect(Options{Dir: t.TempDir()}); b == BackendTPM {
		t.Fatal("Detect chose a TPM that does not answer")
	}
}

func TestTPMErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		op   tpmOp
		want error
	}{
		{tpm2.TPMRCLockout, keyOp, ErrTPMLockout},
		{tpm2.TPMRCLockout, ownerOp, ErrTPMLockout},
		{tpm2.TPMRCBadAuth + 0x100, ownerOp, ErrTPMOwnerAuth},
		{tpm2.TPMRCAuthFail + 0x100, ownerOp, ErrTPMOwnerAuth},
		{tpm2.TPMRCAuthFail + 0x100, keyOp, ErrWrongPIN},
		{tpm2.TPMRCIntegrity + 0x100 + 0x40, loadOp, ErrTPMKeyLost},
	} {
		if got := tpmErr("op", tc.err, tc.op); !errors.Is(got, tc.want) {
			t.Errorf("tpmErr(%v, %d) = %v, want %v", tc.err, tc.op, got, tc.want)
		}
	}
}
