package command

import (
	"errors"
	"fmt"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/keystore"
)

// stateDir returns the state directory: --dir, then AUTH_MESH_DIR, then
// ~/.amesh.
func (g *globals) stateDir() (string, error) {
	if g.dir != "" {
		return g.dir, nil
	}
	d, err := device.DefaultDir()
	if err != nil {
		return "", failf(err, "cannot find the state directory: %v; set %s or pass --dir", err, device.EnvDir)
	}
	return d, nil
}

// keystoreOptions are the backend settings for this process: passphrase
// sources in their default order, warnings to standard error.
func (g *globals) keystoreOptions() keystore.Options {
	return keystore.Options{Warn: g.io.Err}
}

// openState opens this device, turning the usual failures into messages
// that say what to do next.
func (g *globals) openState() (*device.State, error) {
	dir, err := g.stateDir()
	if err != nil {
		return nil, err
	}
	s, err := device.Open(dir, g.keystoreOptions())
	if err != nil {
		return nil, explain(err, dir)
	}
	return s, nil
}

// explain adds the next step to errors people meet.
func explain(err error, dir string) error {
	switch {
	case errors.Is(err, device.ErrNoIdentity):
		return failf(err, "no device identity in %s: run 'amesh init --name NAME' first (or set %s)", dir, device.EnvDir)
	case errors.Is(err, keystore.ErrNoPassphrase):
		return failf(err, "%v\nSet %s or %s, or run in a terminal to be asked", err, keystore.EnvPassphrase, keystore.EnvPassphraseFile)
	}
	return err
}

// readIdentity reads identity.json without unlocking the key.
func (g *globals) readIdentity() (*device.Identity, string, error) {
	dir, err := g.stateDir()
	if err != nil {
		return nil, "", err
	}
	id, err := device.ReadIdentity(dir)
	if err != nil {
		return nil, dir, explain(err, dir)
	}
	return id, dir, nil
}

// errorf wraps err with a message for people.
func errorf(err error, format string, args ...any) error {
	return failf(err, "%s: %v", fmt.Sprintf(format, args...), err)
}
