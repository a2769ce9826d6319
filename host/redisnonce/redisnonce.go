// Package redisnonce is a protocol.NonceStore on Redis, for verifiers that
// run as several processes or machines and must share what they have seen.
//
// A nonce is recorded with one command, SET key 1 NX PX ttl, which Redis
// runs atomically: of any number of concurrent replays exactly one finds
// the key absent. The store takes a redis.UniversalClient, so a single
// server, Redis Cluster and Sentinel all work; keys are independent, so
// Cluster needs no hash tags.
//
// It fails closed: when Redis cannot answer, Record returns an error and
// the verifier answers 503 service_unavailable, never a 200 it cannot
// vouch for. go-redis reconnects by itself, so service resumes with the
// first command Redis answers again; the store logs the transitions.
package redisnonce

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "amesh:nonce:"

// DefaultTimeout bounds one Record call when Options.Timeout is zero.
const DefaultTimeout = 500 * time.Millisecond

// Options configure a Store.
type Options struct {
	// Prefix is prepended to every key, to share a Redis with other users
	// or keep several verifiers apart. Empty means DefaultPrefix.
	Prefix string
	// Timeout bounds each Record call (on top of the request's context),
	// so that a Redis that stopped answering costs a request at most this
	// long. Zero means DefaultTimeout; negative means no bound. It takes
	// effect when the client was created with ContextTimeoutEnabled, or
	// through its own ReadTimeout otherwise (see NewClient).
	Timeout time.Duration
	// Logger receives one line when Redis becomes unavailable and one when
	// it answers again; nil means slog.Default().
	Logger *slog.Logger
}

// Store is a protocol.NonceStore on Redis. It is safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
	logger  *slog.Logger
	down    atomic.Bool
}

var _ protocol.NonceStore = (*Store)(nil)

// New returns a Store using c. The caller keeps ownership of c.
func New(c redis.UniversalClient, opts Options) *Store {
	s := &Store{c: c, prefix: opts.Prefix, timeout: opts.Timeout, logger: opts.Logger}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s
}

// NewClient returns a client for the Redis servers at addrs (one address:
// a single server; several: a cluster; with opts.MasterName: Sentinel) with
// the short timeouts a request path wants, and ContextTimeoutEnabled so
// that Options.Timeout applies. opts may be nil; Addrs is set from addrs.
func NewClient(opts *redis.UniversalOptions, addrs ...string) redis.UniversalClient {
	o := redis.UniversalOptions{}
	if opts != nil {
		o = *opts
	}
	if len(addrs) > 0 {
		o.Addrs = addrs
	}
	o.ContextTimeoutEnabled = true
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = time.Second
	}
	// A SET NX retried after its reply was lost finds its own key and
	// reports a replay: safe (it rejects), but a retry cannot help a
	// request, so the default of one attempt fails faster.
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	return redis.NewUniversalClient(&o)
}

// Key returns the Redis key of a nonce key: the prefix and the key in
// unpadded base64url, since nonce keys are binary (a public key and the
// nonce's bytes).
func (s *Store) Key(key string) string {
	return s.prefix + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// Record implements protocol.NonceStore with SET key 1 NX PX ttl. Expiry
// runs on Redis's clock; now is not needed.
func (s *Store) Record(ctx context.Context, key string, _ time.Time, ttl time.Duration) (bool, error) {
	ms := ttl.Milliseconds()
	if ms < 1 {
		ms = 1 // PX takes at least one millisecond
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	err := s.c.Do(ctx, "SET", s.Key(key), "1", "NX", "PX", ms).Err()
	switch {
	case err == nil:
		s.up()
		return true, nil
	case errors.Is(err, redis.Nil):
		s.up()
		return false, nil // NX found the key: a replay
	}
	if !s.down.Swap(true) {
		s.logger.Error("amesh: Redis nonce store unavailable, rejecting requests with 503 until it answers", "err", err)
	}
	return false, fmt.Errorf("redisnonce: SET NX: %w", err)
}

func (s *Store) up() {
	if s.down.Load() && s.down.Swap(false) {
		s.logger.Info("amesh: Redis nonce store answers again")
	}
}
