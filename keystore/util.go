package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// NewAlias returns a fresh key alias: "amesh-" and 16 random hex digits.
func NewAlias() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("keystore: random alias: %w", err)
	}
	return "amesh-" + hex.EncodeToString(b[:]), nil
}

func newSecret() ([]byte, error) {
	s := make([]byte, SecretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("keystore: random sealing secret: %w", err)
	}
	return s, nil
}

// wipe overwrites a secret in memory. It is best effort: the garbage
// collector may have copied it, but this keeps it out of later dumps of the
// buffers we own.
func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// checkPrivate refuses a secret file that other users can read or write.
// Windows has no mode bits to check.
func checkPrivate(path string, fi os.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if m := fi.Mode().Perm(); m&0o066 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, readable or writable by group or others: run chmod 600 %s", ErrInsecurePermissions, path, m, path)
	}
	return nil
}

// ensureDir creates the state directory 0700 if needed and refuses one that
// other users can write to, where they could swap our files.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keystore: create directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: directory %s has mode %04o, writable by group or others: run chmod 700 %s", ErrInsecurePermissions, dir, fi.Mode().Perm(), dir)
	}
	return nil
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
