package protocol

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// NonceStore remembers nonces for replay protection.
//
// Record atomically checks whether key is already recorded and, if not,
// records it until now+ttl. It returns fresh == false for a replay. Any error
// makes the verifier reject the request (fail closed).
type NonceStore interface {
	Record(ctx context.Context, key string, now time.Time, ttl time.Duration) (fresh bool, err error)
}

// DefaultNonceCapacity is the capacity of NewMemoryNonceStore(0): enough for
// about 8,700 requests per second at the default 60 s TTL.
const DefaultNonceCapacity = 1 << 19

const nonceShards = 32

// MemoryNonceStore is a bounded in-memory NonceStore, safe for concurrent
// use. Expired entries are reclaimed as new ones arrive, so it needs no
// background goroutine. When it is full of live entries it refuses to record
// (ErrNonceStoreFull), which makes the verifier reject: a full store must not
// turn into accepted replays.
//
// It holds each key as a 64-bit hash keyed with a random seed of its own
// (hash/maphash), not as a string: entries are 16 bytes with no pointer for
// the garbage collector to scan, whatever the store's size. Equal keys hash
// equal, so a replay is always caught; two different keys that collide make
// the second a false replay, an error on the safe side whose chance is
// below 10⁻⁸ at the default capacity full, and which nobody can aim for
// without the seed.
type MemoryNonceStore struct {
	seed   maphash.Seed
	shards [nonceShards]nonceShard
}

type nonceShard struct {
	mu    sync.Mutex
	cap   int
	m     map[uint64]int64 // key hash -> expiry, Unix nanoseconds
	queue []nonceEntry     // in insertion order, for reclaiming
	head  int
}

type nonceEntry struct {
	key uint64
	exp int64
}

// NewMemoryNonceStore returns a store that holds at most capacity live
// nonces; capacity <= 0 means DefaultNonceCapacity.
func NewMemoryNonceStore(capacity int) *MemoryNonceStore {
	if capacity <= 0 {
		capacity = DefaultNonceCapacity
	}
	s := &MemoryNonceStore{seed: maphash.MakeSeed()}
	per := (capacity + nonceShards - 1) / nonceShards
	for i := range s.shards {
		s.shards[i].cap = per
		s.shards[i].m = make(map[uint64]int64)
	}
	return s
}

// Record implements NonceStore.
func (s *MemoryNonceStore) Record(_ context.Context, key string, now time.Time, ttl time.Duration) (bool, error) {
	h := maphash.String(s.seed, key)
	sh := &s.shards[h%nonceShards]
	t := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.reclaim(t)
	if exp, ok := sh.m[h]; ok && exp > t {
		return false, nil
	}
	if len(sh.m) >= sh.cap {
		return false, ErrNonceStoreFull
	}
	exp := t + int64(ttl)
	sh.m[h] = exp
	sh.queue = append(sh.queue, nonceEntry{h, exp})
	return true, nil
}

// Len returns the number of entries held, expired ones not yet reclaimed
// included.
func (s *MemoryNonceStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// reclaim drops expired entries from the front of the queue. Entries expire
// in insertion order when the TTL is fixed and time moves forward, which is
// the case the store is built for; otherwise an entry waits until those
// before it have expired, still bounded by the capacity.
func (sh *nonceShard) reclaim(now int64) {
	for sh.head < len(sh.queue) && sh.queue[sh.head].exp <= now {
		e := sh.queue[sh.head]
		if exp, ok := sh.m[e.key]; ok && exp == e.exp {
			delete(sh.m, e.key)
		}
		sh.head++
	}
	if sh.head > 64 && sh.head*2 >= len(sh.queue) {
		n := copy(sh.queue, sh.queue[sh.head:])
		sh.queue = sh.queue[:n]
		sh.head = 0
	}
}
