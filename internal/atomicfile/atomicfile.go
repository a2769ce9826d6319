// Package atomicfile writes files so that readers see either the old or the
// new content, never a partial file, and takes advisory locks on separate
// lock files. The keystore and the device state both keep small files that
// several processes may update at once.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile replaces path with data: it writes a temporary file in the same
// directory, syncs it, renames it over path and syncs the directory, so that a
// crash leaves either the old or the new file. perm is applied to the new
// file whatever the umask. On error the temporary file is removed and path is
// untouched.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

// CreateFile is WriteFile that fails with an error wrapping fs.ErrExist when
// path already exists, so that two creators cannot both win.
func CreateFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

func write(path string, data []byte, perm os.FileMode, exclusive bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("atomicfile: chmod %s: %w", tmp, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", tmp, err)
	}
	if exclusive {
		// A hard link fails if the target exists, unlike rename, which
		// would silently replace a file another process just created.
		if err = os.Link(tmp, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("atomicfile: %s: %w", path, os.ErrExist)
			}
			return fmt.Errorf("atomicfile: create %s: %w", path, err)
		}
		os.Remove(tmp)
	} else if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename to %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir flushes a directory's entries (a rename or a removal) to disk. It
// does nothing on Windows, where directories cannot be synced.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync directory %s: %w", dir, err)
	}
	return nil
}

// Remove deletes path and syncs its directory. A missing file is not an
// error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("atomicfile: remove %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// Lock is an advisory lock held on a lock file.
type Lock struct {
	f *os.File
}

// LockFile opens (creating it 0600 if needed) the lock file at path and
// locks it: exclusively when exclusive is true, shared otherwise. It blocks
// until the lock is granted. The lock is released by Unlock or when the
// process exits, so a crashed writer never leaves the state locked.
func LockFile(path string, exclusive bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("atomicfile: open lock file %s: %w", path, err)
	}
	if err := lock(f, exclusive); err != nil {
		f.Close()
		return nil, fmt.Errorf("atomicfile: lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock and closes the lock file.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
