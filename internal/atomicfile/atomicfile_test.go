package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestWriteAndCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, tc := range []struct {
		name    string
		write   func() error
		want    string
		wantErr error
	}{
		{"create", func() error { return CreateFile(p, []byte("one"), 0o600) }, "one", nil},
		{"create again", func() error { return CreateFile(p, []byte("two"), 0o600) }, "one", os.ErrExist},
		{"replace", func() error { return WriteFile(p, []byte("three"), 0o640) }, "three", nil},
		{"missing directory", func() error { return WriteFile(filepath.Join(dir, "no", "f"), nil, 0o600) }, "three", os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.write(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if b, _ := os.ReadFile(p); string(b) != tc.want {
				t.Fatalf("content %q, want %q", b, tc.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("temporary files left: %v", entries)
			}
		})
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640 whatever the umask", fi.Mode())
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
}

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := LockFile(p, true)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		// flock locks belong to open file descriptions, so a second open in
		// the same process contends like another process would.
		l2, err := LockFile(p, false)
		if err == nil {
			l2.Unlock()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("shared lock granted while an exclusive one was held")
	case <-time.After(100 * time.Millisecond):
	}
	l.Unlock()
	<-got
}
