package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/amesh-go/amesh/internal/atomicfile"
	"github.com/amesh-go/amesh/relay/provision"
)

// PendingFile holds, in the controller's state directory, the bootstrap
// tokens it issued whose targets have not been collected yet. Tokens carry
// their secret, so the file is 0600 like the key.
const PendingFile = "provisions.json"

const pendingLock = "provisions.lock"

// Pending is the controller's list of issued, uncollected tokens.
type Pending struct {
	dir string
}

// NewPending returns the pending-token list of the state directory dir.
func NewPending(dir string) *Pending { return &Pending{dir: dir} }

type pendingFile struct {
	Version int      `json:"version"`
	Tokens  []string `json:"tokens"`
}

// Load returns the pending tokens. A token that no longer parses is
// reported as an error: the file was damaged.
func (p *Pending) Load() ([]*provision.Token, error) {
	var toks []*provision.Token
	err := p.locked(false, func(texts []string) ([]string, error) {
		for _, s := range texts {
			t, err := provision.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("bootstrap: %s: %w", p.path(), err)
			}
			toks = append(toks, t)
		}
		return nil, nil
	})
	return toks, err
}

// Add records an issued token.
func (p *Pending) Add(t *provision.Token) error {
	return p.locked(true, func(texts []string) ([]string, error) {
		return append(texts, t.Encode()), nil
	})
}

// Remove forgets tokens (collected or expired).
func (p *Pending) Remove(toks ...*provision.Token) error {
	if len(toks) == 0 {
		return nil
	}
	ids := make([]string, len(toks))
	for i, t := range toks {
		ids[i] = t.ID()
	}
	return p.locked(true, func(texts []string) ([]string, error) {
		kept := texts[:0]
		for _, s := range texts {
			t, err := provision.Parse(s)
			if err != nil || !slices.Contains(ids, t.ID()) {
				kept = append(kept, s)
			}
		}
		return kept, nil
	})
}

func (p *Pending) path() string { return filepath.Join(p.dir, PendingFile) }

// locked runs fn on the stored tokens under the lock; when write is set,
// what fn returns replaces them.
func (p *Pending) locked(write bool, fn func([]string) ([]string, error)) error {
	lock, err := atomicfile.LockFile(filepath.Join(p.dir, pendingLock), write)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer lock.Unlock()
	var f pendingFile
	data, err := os.ReadFile(p.path())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("bootstrap: %w", err)
	default:
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("bootstrap: %s is damaged: %w", p.path(), err)
		}
	}
	out, err := fn(f.Tokens)
	if err != nil || !write {
		return err
	}
	data, err = json.MarshalIndent(pendingFile{Version: 1, Tokens: out}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p.path(), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}
