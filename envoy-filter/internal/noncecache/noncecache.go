// Package noncecache is the filter's replay cache: a bounded set of recently
// used nonces kept in Envoy's shared data, so that every worker thread of one
// Envoy process (each runs its own Wasm VM) sees the nonces the others have
// recorded.
//
// Envoy's shared data is a key-value map per vm_id with a compare-and-swap
// token per key. It has no delete, and an insert of an absent key ignores the
// token, so two workers creating the same key race. The cache therefore
// works on a fixed number of buckets created once at plugin start; each
// bucket is one value holding a fixed number of slots (a 16-byte fingerprint
// of the nonce key and its expiry). Record reads a bucket, looks for the
// fingerprint, takes a free or expired slot and writes the bucket back with
// the token it read. When another worker wrote in between, the write fails
// and Record starts over; after MaxAttempts conflicts in a row it gives up
// and the request is rejected (fail closed). A bucket with no free slot is
// full and rejects too: a full cache must never turn into accepted replays.
//
// The cache lives in one Envoy process. Replicas of a service behind a load
// balancer each have their own, so a captured request can be replayed once
// per replica within the time window; see docs/envoy.md.
package noncecache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// Store is the shared key-value map with compare-and-swap tokens, with the
// semantics of Envoy's shared data.
type Store interface {
	// Get returns the value of key and its CAS token, or ErrNotFound.
	Get(key string) (value []byte, cas uint32, err error)
	// Set stores value under key if cas is the key's current token, and
	// returns ErrCASMismatch otherwise. An absent key is inserted whatever
	// cas is. The store keeps its own copy of value.
	Set(key string, value []byte, cas uint32) error
}

// Errors of a Store.
var (
	ErrNotFound    = errors.New("shared data: key not found")
	ErrCASMismatch = errors.New("shared data: CAS mismatch")
)

// ErrContention is returned by Record after MaxAttempts CAS conflicts in a
// row on one bucket.
var ErrContention = errors.New("amesh: nonce cache: too many concurrent updates of one bucket")

// Limits and defaults of a Layout.
const (
	DefaultBuckets     = 4096
	DefaultSlots       = 32
	DefaultMaxAttempts = 8
	MaxBuckets         = 1 << 16
	MaxSlots           = 1024
	MaxAttemptsLimit   = 64
	// MaxBytes bounds the shared memory the cache may take.
	MaxBytes = 64 << 20
)

const (
	headerSize = 8
	fpSize     = 16
	slotSize   = fpSize + 8
	// createCAS is the token used to create a bucket. On an absent key it
	// is ignored; on a key another worker created in the meantime it makes
	// the write fail instead of wiping that worker's entries (a token of 0
	// would overwrite unconditionally). Envoy hands out tokens from a
	// counter, so it would take four billion writes to meet this one.
	createCAS = 0xffffffff
)

var magic = [4]byte{'A', 'M', 'N', '1'}

// Layout is the shape of the cache. Zero fields take the defaults.
type Layout struct {
	Buckets     int
	Slots       int
	MaxAttempts int
}

// WithDefaults returns l with zero fields set to the defaults.
func (l Layout) WithDefaults() Layout {
	if l.Buckets == 0 {
		l.Buckets = DefaultBuckets
	}
	if l.Slots == 0 {
		l.Slots = DefaultSlots
	}
	if l.MaxAttempts == 0 {
		l.MaxAttempts = DefaultMaxAttempts
	}
	return l
}

// Validate checks l (after WithDefaults).
func (l Layout) Validate() error {
	switch {
	case l.Buckets < 1 || l.Buckets > MaxBuckets:
		return fmt.Errorf("nonce cache: buckets %d, want 1 to %d", l.Buckets, MaxBuckets)
	case l.Slots < 1 || l.Slots > MaxSlots:
		return fmt.Errorf("nonce cache: slots %d, want 1 to %d", l.Slots, MaxSlots)
	case l.MaxAttempts < 1 || l.MaxAttempts > MaxAttemptsLimit:
		return fmt.Errorf("nonce cache: max_attempts %d, want 1 to %d", l.MaxAttempts, MaxAttemptsLimit)
	case l.Bytes() > MaxBytes:
		return fmt.Errorf("nonce cache: %d buckets of %d slots take %d bytes, limit %d", l.Buckets, l.Slots, l.Bytes(), MaxBytes)
	}
	return nil
}

// Capacity returns the number of nonces the cache can hold.
func (l Layout) Capacity() int { return l.Buckets * l.Slots }

// Bytes returns the shared memory the buckets take (values only).
func (l Layout) Bytes() int { return l.Buckets * l.bucketSize() }

func (l Layout) bucketSize() int { return headerSize + l.Slots*slotSize }

// Cache is a protocol.NonceStore on a Store. Each worker (Wasm VM) has its
// own Cache value; they share the Store.
type Cache struct {
	store  Store
	layout Layout
	keys   []string
}

var _ protocol.NonceStore = (*Cache)(nil)

// New returns a cache on store. Call Init before Record.
func New(store Store, l Layout) (*Cache, error) {
	l = l.WithDefaults()
	if err := l.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{store: store, layout: l, keys: make([]string, l.Buckets)}
	// The slot count is part of the key so that a configuration with
	// another layout never reads buckets of the old shape.
	prefix := "amesh.nonce.v1." + strconv.Itoa(l.Slots) + "."
	for i := range c.keys {
		c.keys[i] = prefix + strconv.Itoa(i)
	}
	return c, nil
}

// Layout returns the cache's layout, defaults filled in.
func (c *Cache) Layout() Layout { return c.layout }

// Init creates the buckets that do not exist yet and checks the ones that
// do. Every worker calls it at plugin start; buckets survive configuration
// reloads because Envoy keeps shared data per vm_id.
func (c *Cache) Init() error {
	empty := c.emptyBucket()
	for _, key := range c.keys {
		v, _, err := c.store.Get(key)
		switch {
		case err == nil:
			if err := c.checkBucket(key, v); err != nil {
				return err
			}
			continue
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("nonce cache: read %s: %w", key, err)
		}
		err = c.store.Set(key, empty, createCAS)
		switch {
		case err == nil:
		case errors.Is(err, ErrCASMismatch):
			// Another worker created it first; check what it wrote.
			v, _, err := c.store.Get(key)
			if err != nil {
				return fmt.Errorf("nonce cache: read %s: %w", key, err)
			}
			if err := c.checkBucket(key, v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("nonce cache: create %s: %w", key, err)
		}
	}
	return nil
}

func (c *Cache) emptyBucket() []byte {
	b := make([]byte, c.layout.bucketSize())
	copy(b, magic[:])
	binary.LittleEndian.PutUint16(b[4:], uint16(c.layout.Slots))
	return b
}

func (c *Cache) checkBucket(key string, v []byte) error {
	if len(v) != c.layout.bucketSize() || !bytes.Equal(v[:4], magic[:]) ||
		int(binary.LittleEndian.Uint16(v[4:])) != c.layout.Slots {
		return fmt.Errorf("nonce cache: bucket %s holds %d bytes that are not a bucket of %d slots", key, len(v), c.layout.Slots)
	}
	return nil
}

// Record implements protocol.NonceStore.
func (c *Cache) Record(_ context.Context, key string, now time.Time, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("nonce cache: TTL %v is not positive", ttl)
	}
	sum := sha256.Sum256([]byte(key))
	fp := sum[:fpSize]
	bkey := c.keys[binary.BigEndian.Uint32(sum[fpSize:])%uint32(len(c.keys))]
	t := now.UnixNano()
	exp := t + int64(ttl)
	for range c.layout.MaxAttempts {
		v, cas, err := c.store.Get(bkey)
		if err != nil {
			// A bucket is never deleted, so a missing one means the store
			// was reset under us: fail closed rather than guess.
			return false, fmt.Errorf("nonce cache: read %s: %w", bkey, err)
		}
		if err := c.checkBucket(bkey, v); err != nil {
			return false, err
		}
		free := -1
		for i := 0; i < c.layout.Slots; i++ {
			s := v[headerSize+i*slotSize : headerSize+(i+1)*slotSize]
			live := int64(binary.LittleEndian.Uint64(s[fpSize:])) > t
			if live && bytes.Equal(s[:fpSize], fp) {
				return false, nil
			}
			if !live && free < 0 {
				free = i
			}
		}
		if free < 0 {
			return false, fmt.Errorf("%w: bucket %s has %d live nonces", protocol.ErrNonceStoreFull, bkey, c.layout.Slots)
		}
		// Write into a copy: the store may hand out its own memory (the
		// emulator does), and a write that loses the race must leave no
		// trace.
		nv := bytes.Clone(v)
		s := nv[headerSize+free*slotSize : headerSize+(free+1)*slotSize]
		copy(s, fp)
		binary.LittleEndian.PutUint64(s[fpSize:], uint64(exp))
		err = c.store.Set(bkey, nv, cas)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrCASMismatch) {
			return false, fmt.Errorf("nonce cache: write %s: %w", bkey, err)
		}
	}
	return false, fmt.Errorf("%w (%s, %d attempts)", ErrContention, bkey, c.layout.MaxAttempts)
}

// Live counts the nonces that are still live at now, for tests and
// diagnostics. It reads every bucket.
func (c *Cache) Live(now time.Time) (int, error) {
	t := now.UnixNano()
	n := 0
	for _, key := range c.keys {
		v, _, err := c.store.Get(key)
		if err != nil {
			return 0, fmt.Errorf("nonce cache: read %s: %w", key, err)
		}
		if err := c.checkBucket(key, v); err != nil {
			return 0, err
		}
		for i := 0; i < c.layout.Slots; i++ {
			s := v[headerSize+i*slotSize : headerSize+(i+1)*slotSize]
			if int64(binary.LittleEndian.Uint64(s[fpSize:])) > t {
				n++
			}
		}
	}
	return n, nil
}
