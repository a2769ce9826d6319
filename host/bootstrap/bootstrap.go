// Package bootstrap enrols devices without a person at the keyboard, with
// the bootstrap tokens of relay/provision, and keeps the tokens a controller
// has issued until their targets are collected.
//
// On the target, Provision (or OpenOrProvision, for a service that starts
// with AMESH_BOOTSTRAP_TOKEN set) creates the device identity, trusts the
// token's controller and delivers the new identity through the relay. A
// refused token (malformed, tampered, expired, used, foreign, relay
// unreachable) leaves no key and no file behind.
//
// On the controller, Pending keeps the issued tokens in the state directory
// (provisions.json, 0600: tokens carry secrets) until Collect has recorded
// their targets or they expire.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/relay/provision"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// EnvControllerID names a device ID that pins the only controller a
// bootstrap token may come from (see provision.DeliverOptions.ExpectController).
const EnvControllerID = "AMESH_CONTROLLER_ID"

// Options configure Provision.
type Options struct {
	// Dir is the state directory; empty means device.DefaultDir().
	Dir string
	// Token is the bootstrap token's text; empty means AMESH_BOOTSTRAP_TOKEN.
	Token string
	// Name is this device's friendly name; empty means the name the
	// controller gave it in the token.
	Name string
	// Backend, MaxControllers and Keystore are those of device.CreateOptions.
	Backend        string
	MaxControllers int
	Keystore       keystore.Options
	// ExpectController pins the controller's device ID; empty means
	// AMESH_CONTROLLER_ID, and no pin when that is unset too.
	ExpectController string
	// RelayURL overrides the token's relay.
	RelayURL string
	// Progress, if set, receives the keystore's detection probes.
	Progress func(keystore.Probe)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrNoToken means neither the options nor the environment hold a token.
var ErrNoToken = errors.New("bootstrap: no bootstrap token (set " + provision.EnvToken + ")")

// Provision creates this device from a bootstrap token: it checks the token
// before touching anything, creates the identity, delivers it to the
// controller through the relay, and records the controller (role
// controller) once the relay has accepted. On any error the new identity is
// destroyed again. An existing identity is never replaced.
func Provision(ctx context.Context, opts Options) (*device.State, provision.Controller, error) {
	text := opts.Token
	if text == "" {
		text = os.Getenv(provision.EnvToken)
	}
	if text == "" {
		return nil, provision.Controller{}, ErrNoToken
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	tok, err := provision.Parse(text)
	if err != nil {
		return nil, provision.Controller{}, err
	}
	if err := tok.Check(now()); err != nil {
		return nil, provision.Controller{}, err
	}
	pin := opts.ExpectController
	if pin == "" {
		pin = os.Getenv(EnvControllerID)
	}
	if pin != "" && tok.Controller().DeviceID != pin {
		return nil, provision.Controller{}, fmt.Errorf("%w: it names controller %s, this device accepts only %s", provision.ErrForeign, tok.Controller().DeviceID, pin)
	}
	name := opts.Name
	if name == "" {
		name = tok.TargetName()
	}
	if name == "" {
		return nil, provision.Controller{}, errors.New("bootstrap: no name for this device: the token names none, give one")
	}
	dir, err := resolve(opts.Dir)
	if err != nil {
		return nil, provision.Controller{}, err
	}
	if _, err := device.ReadIdentity(dir); err == nil {
		return nil, provision.Controller{}, fmt.Errorf("bootstrap: %w in %s: a bootstrap token enrols a new device only", device.ErrExists, dir)
	}
	s, err := device.Create(device.CreateOptions{Dir: dir, Name: name, Backend: opts.Backend,
		MaxControllers: opts.MaxControllers, Keystore: opts.Keystore, Progress: opts.Progress, Now: opts.Now})
	if err != nil {
		return nil, provision.Controller{}, err
	}
	ctl, err := provision.Deliver(ctx, tok, provision.DeliverOptions{
		Signer: s.Key(), Name: name, ExpectController: pin, RelayURL: opts.RelayURL, Now: opts.Now,
		Commit: func(_ context.Context, c provision.Controller) error {
			_, err := s.Add(device.Entry{DeviceID: c.DeviceID, PublicKey: c.PublicKey.String(), FriendlyName: c.Name,
				AddedBy: "provision", Role: protocol.RoleController}, device.AddOptions{})
			return err
		},
	})
	if err != nil {
		s.Close()
		if derr := device.Destroy(dir, opts.Keystore); derr != nil {
			return nil, ctl, errors.Join(err, fmt.Errorf("bootstrap: removing the new identity again: %w", derr))
		}
		return nil, ctl, err
	}
	return s, ctl, nil
}

// OpenOrProvision opens the device in opts.Dir, or, when there is none and
// a bootstrap token is set, provisions it: what a service does at start.
// provisioned reports which happened.
func OpenOrProvision(ctx context.Context, opts Options) (s *device.State, provisioned bool, err error) {
	dir, err := resolve(opts.Dir)
	if err != nil {
		return nil, false, err
	}
	s, err = device.Open(dir, opts.Keystore)
	if !errors.Is(err, device.ErrNoIdentity) {
		return s, false, err
	}
	if opts.Token == "" && os.Getenv(provision.EnvToken) == "" {
		return nil, false, err
	}
	s, _, err = Provision(ctx, opts)
	return s, err == nil, err
}

func resolve(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return device.DefaultDir()
}
