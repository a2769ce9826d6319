package wasmhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// Verifier decides requests with a pool of pre-warmed amesh.wasm
// instances. It has the Verify method of protocol.Verifier and the same
// verdicts, and is safe for concurrent use: each call borrows an instance
// for itself, so an instance never runs on two goroutines.
type Verifier struct {
	eng  *Engine
	pool chan *pooled
	size int // instances owned by the pool

	mu     sync.Mutex
	cfg    Config
	gen    uint64 // bumped by every reconfiguration
	rec    []byte // cfg encoded for the guest
	closed bool
}

type pooled struct {
	inst *Instance
	gen  uint64
}

// NewVerifier creates a Verifier with size instances (zero means
// GOMAXPROCS), all instantiated and configured before it returns, so that
// no request pays for an instance start. cfg.Nonces is required: nonces
// must be shared by the whole pool.
func (e *Engine) NewVerifier(ctx context.Context, cfg Config, size int) (*Verifier, error) {
	if cfg.Nonces == nil {
		return nil, errors.New("wasmhost: a Verifier needs a nonce store shared by its instances")
	}
	if size <= 0 {
		size = runtime.GOMAXPROCS(0)
	}
	v := &Verifier{eng: e, pool: make(chan *pooled, size), cfg: cfg, gen: 1, rec: cfg.record()}
	for range size {
		inst, err := e.NewInstance(ctx)
		if err == nil {
			err = inst.configureRecord(ctx, &v.cfg, v.rec)
		}
		if err != nil {
			v.Close(ctx)
			return nil, err
		}
		v.pool <- &pooled{inst: inst, gen: v.gen}
		v.size++ // Close waits for this many
	}
	return v, nil
}

// MaxBodyBytes returns the body limit in force.
func (v *Verifier) MaxBodyBytes() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cfg.MaxBodyBytes == 0 {
		return protocol.DefaultMaxBodyBytes
	}
	return v.cfg.MaxBodyBytes
}

// Reconfigure replaces the configuration. Instances pick it up the next
// time they are borrowed, before deciding anything; it is checked first on
// a spare instance so that an invalid configuration is refused here.
func (v *Verifier) Reconfigure(ctx context.Context, cfg Config) error {
	if cfg.Nonces == nil {
		return errors.New("wasmhost: a Verifier needs a nonce store shared by its instances")
	}
	rec := cfg.record()
	p, err := v.borrow(ctx)
	if err != nil {
		return err
	}
	err = p.inst.configureRecord(ctx, &cfg, rec)
	if err == nil {
		v.mu.Lock()
		v.cfg, v.rec = cfg, rec
		v.gen++
		p.gen = v.gen
		v.mu.Unlock()
	}
	v.give(ctx, p)
	return err
}

// SetAllowList replaces the allow list (and its integrity state) and keeps
// the rest of the configuration: the way to apply a reloaded list.
func (v *Verifier) SetAllowList(ctx context.Context, list protocol.StaticAllowList, integrityFailure bool) error {
	v.mu.Lock()
	cfg := v.cfg
	v.mu.Unlock()
	cfg.AllowList, cfg.IntegrityFailure = list, integrityFailure
	return v.Reconfigure(ctx, cfg)
}

// errClosed is the answer of a closed Verifier.
var errClosed = errors.New("wasmhost: verifier closed")

// borrow takes an instance from the pool, waiting for one if all are busy,
// and brings it up to the current configuration.
func (v *Verifier) borrow(ctx context.Context) (*pooled, error) {
	var p *pooled
	select {
	case p = <-v.pool:
	case <-ctx.Done():
		return nil, fmt.Errorf("wasmhost: waiting for an instance: %w", ctx.Err())
	}
	if p == nil {
		v.pool <- nil // closed: pass the marker on
		return nil, errClosed
	}
	v.mu.Lock()
	gen, cfg, rec := v.gen, v.cfg, v.rec
	v.mu.Unlock()
	if p.gen != gen {
		if err := p.inst.configureRecord(ctx, &cfg, rec); err != nil {
			v.give(ctx, p)
			return nil, err
		}
		p.gen = gen
	}
	return p, nil
}

// give returns an instance to the pool, replacing it if it broke.
func (v *Verifier) give(ctx context.Context, p *pooled) {
	if p.inst.Broken() != nil {
		v.eng.logger.Error("amesh: replacing a broken wasm instance", "err", p.inst.Broken())
		p.inst.Close(context.WithoutCancel(ctx))
		inst, err := v.eng.NewInstance(context.WithoutCancel(ctx))
		if err == nil {
			p = &pooled{inst: inst} // gen 0: configured when next borrowed
		} else {
			v.eng.logger.Error("amesh: cannot replace a wasm instance", "err", err)
			// Keep the broken one: every call on it fails closed with 503,
			// and the next give tries again.
		}
	}
	v.pool <- p
}

// Verify decides one request, like protocol.Verifier.Verify.
func (v *Verifier) Verify(ctx context.Context, req *protocol.Request, now time.Time) protocol.Result {
	p, err := v.borrow(ctx)
	if err != nil {
		return unavailable(err)
	}
	res := p.inst.Verify(ctx, req, now)
	v.give(ctx, p)
	return res
}

// VerifyDigest decides one request whose body the caller hashed, like
// Instance.VerifyDigest.
func (v *Verifier) VerifyDigest(ctx context.Context, req *protocol.Request, size int64, sum [sha256.Size]byte, now time.Time) protocol.Result {
	p, err := v.borrow(ctx)
	if err != nil {
		return unavailable(err)
	}
	res := p.inst.VerifyDigest(ctx, req, size, sum, now)
	v.give(ctx, p)
	return res
}

// Close closes every instance, waiting for those in use to come back.
func (v *Verifier) Close(ctx context.Context) error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	var errs []error
	for range v.size {
		var p *pooled
		select {
		case p = <-v.pool:
		case <-ctx.Done():
			return fmt.Errorf("wasmhost: close: %w", ctx.Err())
		}
		if p != nil {
			errs = append(errs, p.inst.Close(ctx))
		}
	}
	v.pool <- nil // wakes and refuses later borrowers
	return errors.Join(errs...)
}
