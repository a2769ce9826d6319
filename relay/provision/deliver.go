package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Controller is the controller a target trusts from a token.
type Controller struct {
	// PublicKey is the controller's device key, which signed the token.
	PublicKey *protocol.PublicKey
	// DeviceID is the ID shown to people ("am_…").
	DeviceID string
	// Name is the controller's friendly name from the token (sanitised).
	Name string
	// Role is always pairing.RoleController: the role to record it with.
	Role pairing.Role
	// TokenID is the ID of the token it came from (Token.ID).
	TokenID string
}

// DeliverOptions configure Deliver.
type DeliverOptions struct {
	// Signer is this target's device key (required).
	Signer protocol.Signer
	// Name is this target's friendly name as sent to the controller;
	// empty means the token's TargetName. It is sanitised.
	Name string
	// ExpectController, when set, is the device ID ("am_…") of the only
	// controller this target may accept: a token signed by any other key
	// is ErrForeign. It pins the controller when the channel that carries
	// the token is less trusted than the target's configuration.
	ExpectController string
	// RelayURL overrides the token's relay (for example the same relay
	// under an internal address).
	RelayURL string
	// Dial holds TLS settings and headers for the relay; nil: defaults.
	Dial *client.Options
	// Commit records the controller (role controller). It is called once,
	// only after the relay stored the delivery and spent the token, so a
	// refused token changes nothing. An error is returned by Deliver; the
	// token is spent by then.
	Commit func(ctx context.Context, c Controller) error
	// Now supplies the time for the expiry check (nil: time.Now).
	Now func() time.Time
}

// Deliver runs the target side: it checks the token, seals this device's
// identity for the controller, leaves it at the relay (which spends the
// token's one-time ID) and then records the controller through Commit. On
// any error before Commit, nothing was recorded.
func Deliver(ctx context.Context, t *Token, opts DeliverOptions) (Controller, error) {
	if t == nil || opts.Signer == nil || opts.Commit == nil {
		return Controller{}, errors.New("provision: deliver: a token, Signer and Commit are required")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := t.Check(now()); err != nil {
		return Controller{}, fmt.Errorf("provision: deliver: %w", err)
	}
	ctl := t.Controller()
	if opts.ExpectController != "" && opts.ExpectController != ctl.DeviceID {
		return Controller{}, fmt.Errorf("provision: deliver: %w: it names %s, this target expects %s",
			ErrForeign, ctl.DeviceID, opts.ExpectController)
	}
	pub, err := protocol.ParsePublicKey(opts.Signer.PublicKey())
	if err != nil {
		return Controller{}, fmt.Errorf("provision: deliver: device key: %w", err)
	}
	if pub.Equal(t.controller) {
		return Controller{}, errors.New("provision: deliver: this device issued the token; run it on the target")
	}
	name := opts.Name
	if name == "" {
		name = t.targetName
	}
	sealed, err := sealDelivery(t, opts.Signer, name)
	if err != nil {
		return Controller{}, fmt.Errorf("provision: deliver: %w", err)
	}
	relayURL := t.relayURL
	if opts.RelayURL != "" {
		relayURL = opts.RelayURL
	}
	conn, err := client.Dial(ctx, relayURL, opts.Dial)
	if err != nil {
		return Controller{}, fmt.Errorf("provision: deliver: %w: %w", ErrRelay, dialErr(ctx, err))
	}
	defer conn.Close()
	_, addr, _ := t.keys()
	if err := conn.Deliver(ctx, t.id[:], t.expires, addr[:], sealed); err != nil {
		return Controller{}, fmt.Errorf("provision: deliver: %w", relayErr(ctx, err))
	}
	if err := opts.Commit(ctx, ctl); err != nil {
		return Controller{}, fmt.Errorf("provision: record controller %s: %w", ctl.DeviceID, err)
	}
	return ctl, nil
}

// relayErr classifies an error of the relay client.
func relayErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(err, client.ErrTokenUsed):
		return fmt.Errorf("%w: %w", ErrUsed, err)
	case errors.Is(err, client.ErrTokenExpired):
		return fmt.Errorf("%w (by the relay's clock; check this machine's): %w", ErrExpired, err)
	}
	return fmt.Errorf("%w: %w", ErrRelay, err)
}

// dialErr makes a failed connection attempt match ctx's error when ctx
// ended during it (the WebSocket dialer reports a bare I/O timeout).
func dialErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	// The socket's deadline is ctx's, and may fire an instant before
	// ctx's own timer does.
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}
