package provision

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/relay/wire"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Target is a target that delivered its identity with one of this
// controller's tokens: its key is proven by its signature over the token,
// and the delivery was sealed with the token's secret.
type Target struct {
	// PublicKey is the target's device key.
	PublicKey *protocol.PublicKey
	// DeviceID is the ID shown to people ("am_…").
	DeviceID string
	// Name is the name to record the target under: the token's TargetName
	// when the controller gave one, else ClaimedName.
	Name string
	// ClaimedName is the name the target gave itself (sanitised).
	ClaimedName string
	// Role is always pairing.RoleTarget: the role to record it with.
	Role pairing.Role
	// Token is the token it used; the caller can forget the token now.
	Token *Token
}

// CollectOptions configure Collect.
type CollectOptions struct {
	// Controller is this device's public key (required): a token it did
	// not issue is rejected with ErrForeign. No signature is needed, so
	// the device key need not be unlocked.
	Controller *protocol.PublicKey
	// Tokens are the tokens this controller issued and has not yet seen
	// delivered (their Encode form, parsed again, is what to keep).
	Tokens []*Token
	// Wait keeps collecting until every token is delivered or expired, or
	// ctx ends; without it Collect takes what the relay holds and returns.
	Wait bool
	// RelayURL overrides the relay of every token.
	RelayURL string
	// Dial holds TLS settings and headers for the relay; nil: defaults.
	Dial *client.Options
	// OnTarget records a target (role target). It is called once per
	// delivered token, one call at a time, before the relay forgets the
	// delivery: if it fails, the delivery stays at the relay and Collect
	// returns the error.
	OnTarget func(ctx context.Context, t Target) error
	// OnReject, if set, is told of every token or delivery refused (the
	// same as Result.Rejected, as it happens).
	OnReject func(t *Token, err error)
	// OnRelayError, if set, is told of each relay failure that wait mode
	// retries (unreachable, unavailable…), so that the caller can say why
	// nothing arrives.
	OnRelayError func(relay string, err error)
	// RetryInterval is the pause before reconnecting to a relay in wait
	// mode (default 2 s).
	RetryInterval time.Duration
	// Now supplies the time for expiry checks (nil: time.Now).
	Now func() time.Time
}

// Rejection is a token, or a delivery for it, that Collect refused.
type Rejection struct {
	Token *Token
	// Err matches ErrForeign (the token is not this controller's),
	// ErrTampered (a delivery that does not open or verify: the token
	// stays pending) or ErrUsed (a second valid delivery for a token).
	Err error
}

// Result is what Collect found.
type Result struct {
	// Targets were delivered and recorded through OnTarget.
	Targets []Target
	// Rejected lists refused tokens and deliveries.
	Rejected []Rejection
	// Expired tokens were never delivered; they can be forgotten.
	Expired []*Token
	// Pending tokens are neither delivered nor expired.
	Pending []*Token
}

// DefaultRetryInterval is the default of CollectOptions.RetryInterval.
const DefaultRetryInterval = 2 * time.Second

type pendingToken struct {
	tok   *Token
	key   [wire.MailboxLen]byte
	addr  [wire.MailboxLen]byte
	relay string
	done  bool
}

// group is the tokens of one relay.
type group struct {
	relay  string
	ps     []*pendingToken
	ctx    context.Context
	cancel context.CancelFunc // ends the group's wait once its tokens expired
}

type collection struct {
	opts   CollectOptions
	now    func() time.Time
	groups []*group

	commitMu sync.Mutex // one OnTarget at a time
	mu       sync.Mutex
	byAddr   map[[wire.MailboxLen]byte]*pendingToken
	order    []*pendingToken // as given, so that results keep the caller's order
	open     int             // pending tokens not done
	res      Result
}

// Collect runs the controller side: it collects the deliveries of its
// tokens from their relays, opens and verifies them, and records each
// target through OnTarget. It returns what it found; the error is a relay
// error (one-shot mode), OnTarget's error, or, in wait mode, ctx's cause
// when ctx ends before every token is settled.
func Collect(ctx context.Context, opts CollectOptions) (Result, error) {
	if opts.Controller == nil || opts.OnTarget == nil {
		return Result{}, errors.New("provision: collect: Controller and OnTarget are required")
	}
	c := &collection{opts: opts, now: time.Now, byAddr: map[[wire.MailboxLen]byte]*pendingToken{}}
	if opts.Now != nil {
		c.now = opts.Now
	}
	if c.opts.RetryInterval <= 0 {
		c.opts.RetryInterval = DefaultRetryInterval
	}
	groups := map[string][]*pendingToken{}
	seen := map[[idLen]byte]bool{}
	now := c.now()
	for _, t := range opts.Tokens {
		switch {
		case t == nil || seen[t.id]:
			continue
		case !t.IssuedBy(opts.Controller):
			c.reject(t, fmt.Errorf("%w: %s names %s, this device is %s", ErrForeign, t.ID(), t.controller.DeviceID(), opts.Controller.DeviceID()))
			continue
		case t.Check(now) != nil:
			c.res.Expired = append(c.res.Expired, t)
			continue
		}
		seen[t.id] = true
		p := &pendingToken{tok: t, relay: t.relayURL}
		if opts.RelayURL != "" {
			p.relay = opts.RelayURL
		}
		p.key, p.addr, _ = t.keys()
		c.byAddr[p.addr] = p
		c.order = append(c.order, p)
		groups[p.relay] = append(groups[p.relay], p)
		c.open++
	}
	for relay, ps := range groups {
		if len(ps) > wire.MaxMailboxes {
			return c.result(), fmt.Errorf("provision: collect: %d tokens for %s, at most %d at once", len(ps), relay, wire.MaxMailboxes)
		}
	}
	if c.open == 0 {
		return c.result(), nil
	}
	allCtx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	for relay, ps := range groups {
		g := &group{relay: relay, ps: ps}
		g.ctx, g.cancel = context.WithCancel(allCtx)
		defer g.cancel()
		c.groups = append(c.groups, g)
	}
	if opts.Wait {
		go c.expire(allCtx)
	}
	var wg sync.WaitGroup
	errs := make([]error, 0, len(groups))
	var errMu sync.Mutex
	for _, g := range c.groups {
		wg.Go(func() {
			if err := c.serve(g); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
				if errors.Is(err, errCommit) {
					cancelAll()
				}
			}
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil && opts.Wait && ctx.Err() != nil {
		c.mu.Lock()
		unsettled := c.open > 0
		c.mu.Unlock()
		if unsettled {
			err = fmt.Errorf("provision: collect: stopped waiting: %w", context.Cause(ctx))
		}
	}
	return c.result(), err
}

// errCommit marks OnTarget's failures, which end every relay's collection.
var errCommit = errors.New("provision: record target")

func (c *collection) reject(t *Token, err error) {
	c.mu.Lock()
	c.res.Rejected = append(c.res.Rejected, Rejection{Token: t, Err: err})
	c.mu.Unlock()
	if c.opts.OnReject != nil {
		c.opts.OnReject(t, err)
	}
}

// result sorts the tokens that are not done into expired and pending.
func (c *collection) result() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := c.res
	res.Targets = append([]Target(nil), res.Targets...)
	res.Rejected = append([]Rejection(nil), res.Rejected...)
	res.Expired = append([]*Token(nil), res.Expired...)
	now := c.now()
	for _, p := range c.order {
		if p.done {
			continue
		}
		if p.tok.Check(now) != nil {
			res.Expired = append(res.Expired, p.tok)
		} else {
			res.Pending = append(res.Pending, p.tok)
		}
	}
	return res
}

// settled reports whether every token of g is delivered or expired.
func (c *collection) settled(g *group) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range g.ps {
		if !p.done {
			return false
		}
	}
	return true
}

// expire settles tokens as they expire while waiting, and ends the wait of
// a relay whose tokens are all settled.
func (c *collection) expire(ctx context.Context) {
	for {
		c.mu.Lock()
		var next time.Time
		now := c.now()
		for _, p := range c.order {
			if p.done {
				continue
			}
			if p.tok.Check(now) != nil {
				p.done = true
				c.open--
				c.res.Expired = append(c.res.Expired, p.tok)
				continue
			}
			if next.IsZero() || p.tok.expires.Before(next) {
				next = p.tok.expires
			}
		}
		open := c.open
		c.mu.Unlock()
		for _, g := range c.groups {
			if c.settled(g) {
				g.cancel()
			}
		}
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next) + 10*time.Millisecond):
		}
	}
}

// serve collects from one relay: once, or in wait mode until every token is
// settled, reconnecting after failures.
func (c *collection) serve(g *group) error {
	for {
		err := c.collectOnce(g)
		switch {
		case errors.Is(err, errCommit):
			return err
		case !c.opts.Wait:
			return err
		case g.ctx.Err() != nil || c.settled(g):
			return nil
		}
		if c.opts.OnRelayError != nil {
			c.opts.OnRelayError(g.relay, err)
		}
		var re *client.RelayError
		if errors.As(err, &re) && (re.Reason == wire.ReasonSessionLimit || re.Reason == wire.ReasonShutdown) {
			// A healthy wait that the relay ended (its session limit,
			// a restart): reconnect at once, to another instance if
			// it is going away.
			continue
		}
		select {
		case <-g.ctx.Done():
			return nil
		case <-time.After(c.opts.RetryInterval):
		}
	}
}

func (c *collection) collectOnce(g *group) error {
	ctx, relay := g.ctx, g.relay
	var keys [][]byte
	c.mu.Lock()
	for _, p := range g.ps {
		if !p.done {
			keys = append(keys, p.key[:])
		}
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	conn, err := client.Dial(ctx, relay, c.opts.Dial)
	if err != nil {
		return fmt.Errorf("provision: collect: %w: %w", ErrRelay, dialErr(ctx, err))
	}
	defer conn.Close()
	if err := conn.Collect(ctx, keys, c.opts.Wait); err != nil {
		return fmt.Errorf("provision: collect: %w", relayErr(ctx, err))
	}
	var handled uint32
	for {
		m, batchEnd, err := conn.NextMail(ctx)
		if err != nil {
			// relayErr gives ctx's cause when ctx ended: serve ignores
			// it when waiting, a one-shot collect returns it.
			return fmt.Errorf("provision: collect: %w", relayErr(ctx, err))
		}
		if !batchEnd {
			if err := c.handle(ctx, m); err != nil {
				// Not acknowledged: the relay puts it back.
				return err
			}
			handled++
			continue
		}
		if err := conn.Ack(ctx, handled); err != nil {
			return fmt.Errorf("provision: collect: %w", relayErr(ctx, err))
		}
		if !c.opts.Wait || c.settled(g) {
			return nil
		}
	}
}

// handle opens one delivery and records its target.
func (c *collection) handle(ctx context.Context, m client.Mail) error {
	c.mu.Lock()
	p := c.byAddr[m.Mailbox]
	c.mu.Unlock()
	if p == nil {
		// Not a mailbox this collection asked for: nothing to do.
		return nil
	}
	target, err := openDelivery(p.tok, m.Sealed)
	if err != nil {
		c.reject(p.tok, fmt.Errorf("provision: delivery for %s: %w", p.tok.ID(), err))
		return nil
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	done := p.done
	c.mu.Unlock()
	if done {
		c.reject(p.tok, fmt.Errorf("provision: second delivery for %s from %s: %w", p.tok.ID(), target.DeviceID, ErrUsed))
		return nil
	}
	if err := c.opts.OnTarget(ctx, target); err != nil {
		return fmt.Errorf("%w %s: %w", errCommit, target.DeviceID, err)
	}
	c.mu.Lock()
	if !p.done {
		p.done = true
		c.open--
	}
	c.res.Targets = append(c.res.Targets, target)
	c.mu.Unlock()
	return nil
}
