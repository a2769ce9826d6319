package noncecache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/envoyhost"
	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
	"github.com/amesh-go/amesh/wasm/protocol"
)

var t0 = time.Unix(1743160800, 0)

// worker returns a cache as one Envoy worker would have it: its own Cache
// value on the process-wide shared data.
func worker(t testing.TB, store noncecache.Store, l noncecache.Layout) *noncecache.Cache {
	t.Helper()
	c, err := noncecache.New(store, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRecordAndReplay(t *testing.T) {
	c := worker(t, envoyhost.NewSharedData(), noncecache.Layout{Buckets: 8})
	ctx := context.Background()
	fresh, err := c.Record(ctx, "key-a", t0, time.Minute)
	if err != nil || !fresh {
		t.Fatalf("first use: fresh=%v err=%v", fresh, err)
	}
	fresh, err = c.Record(ctx, "key-a", t0.Add(59*time.Second), time.Minute)
	if err != nil || fresh {
		t.Fatalf("replay within TTL: fresh=%v err=%v, want a replay", fresh, err)
	}
	fresh, err = c.Record(ctx, "key-b", t0, time.Minute)
	if err != nil || !fresh {
		t.Fatalf("other key: fresh=%v err=%v", fresh, err)
	}
	// After the TTL the entry is gone and its slot reusable.
	fresh, err = c.Record(ctx, "key-a", t0.Add(61*time.Second), time.Minute)
	if err != nil || !fresh {
		t.Fatalf("after TTL: fresh=%v err=%v", fresh, err)
	}
}

// TestManyWorkersOneNonce replays one nonce from many goroutines, each with
// its own Cache (as each Envoy worker has its own VM) on one shared map with
// Envoy's CAS rules: exactly one must win.
func TestManyWorkersOneNonce(t *testing.T) {
	for round := range 20 {
		store := envoyhost.NewSharedData()
		const workers = 32
		caches := make([]*noncecache.Cache, workers)
		for i := range caches {
			caches[i] = worker(t, store, noncecache.Layout{Buckets: 4, MaxAttempts: 64})
		}
		var accepted, replays atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				fresh, err := caches[i].Record(context.Background(), "the-nonce", t0, time.Minute)
				switch {
				case err != nil:
					t.Errorf("round %d worker %d: %v", round, i, err)
				case fresh:
					accepted.Add(1)
				default:
					replays.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if accepted.Load() != 1 || replays.Load() != workers-1 {
			t.Fatalf("round %d: %d accepted, %d replays; want exactly 1 and %d", round, accepted.Load(), replays.Load(), workers-1)
		}
	}
}

// TestConcurrentDistinctNoncesNoLostUpdate has many workers record distinct
// nonces into few buckets. A write lost to a race would let its nonce be
// accepted again; every nonce recorded as fresh must be a replay afterwards.
func TestConcurrentDistinctNoncesNoLostUpdate(t *testing.T) {
	store := envoyhost.NewSharedData()
	l := noncecache.Layout{Buckets: 2, Slots: 256, MaxAttempts: 64}
	const workers, per = 16, 24
	var wg sync.WaitGroup
	recorded := make([][]string, workers)
	for w := range workers {
		c := worker(t, store, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				key := fmt.Sprintf("w%d-n%d", w, i)
				fresh, err := c.Record(context.Background(), key, t0, time.Minute)
				if errors.Is(err, noncecache.ErrContention) {
					continue // fail closed is allowed; acceptance is not
				}
				if err != nil || !fresh {
					t.Errorf("%s: fresh=%v err=%v", key, fresh, err)
					continue
				}
				recorded[w] = append(recorded[w], key)
			}
		}()
	}
	wg.Wait()
	check := worker(t, store, l)
	n := 0
	for _, keys := range recorded {
		for _, key := range keys {
			n++
			fresh, err := check.Record(context.Background(), key, t0.Add(time.Second), time.Minute)
			if err != nil || fresh {
				t.Errorf("%s was recorded but is not a replay now (fresh=%v err=%v)", key, fresh, err)
			}
		}
	}
	live, err := check.Live(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if live != n {
		t.Errorf("%d live entries, %d nonces recorded", live, n)
	}
	t.Logf("%d nonces recorded by %d workers, %d CAS conflicts retried", n, workers, store.Conflicts())
}

// interferingStore lets another worker write the bucket between every Get
// and Set of the cache under test, the worst case of contention.
type interferingStore struct {
	*envoyhost.SharedData
	gets int
}

func (s *interferingStore) Get(key string) ([]byte, uint32, error) {
	v, cas, err := s.SharedData.Get(key)
	if err == nil {
		s.gets++
		// Another worker's write moves the token on.
		if err := s.SharedData.Set(key, v, cas); err != nil {
			return nil, 0, err
		}
	}
	return v, cas, err
}

func TestRepeatedConflictsFailClosed(t *testing.T) {
	store := &interferingStore{SharedData: envoyhost.NewSharedData()}
	c := worker(t, store, noncecache.Layout{Buckets: 1, MaxAttempts: 5})
	store.gets = 0
	fresh, err := c.Record(context.Background(), "k", t0, time.Minute)
	if fresh || !errors.Is(err, noncecache.ErrContention) {
		t.Fatalf("fresh=%v err=%v, want ErrContention", fresh, err)
	}
	if store.gets != 5 {
		t.Errorf("%d attempts, want 5", store.gets)
	}
}

func TestFullBucketsFailClosedAndExpiryReclaims(t *testing.T) {
	c := worker(t, envoyhost.NewSharedData(), noncecache.Layout{Buckets: 1, Slots: 4})
	ctx := context.Background()
	for i := range 4 {
		if fresh, err := c.Record(ctx, fmt.Sprint("n", i), t0.Add(time.Duration(i)*time.Second), time.Minute); err != nil || !fresh {
			t.Fatalf("nonce %d: fresh=%v err=%v", i, fresh, err)
		}
	}
	fresh, err := c.Record(ctx, "n4", t0.Add(10*time.Second), time.Minute)
	if fresh || !errors.Is(err, protocol.ErrNonceStoreFull) {
		t.Fatalf("full cache: fresh=%v err=%v, want ErrNonceStoreFull", fresh, err)
	}
	// A replay of a recorded nonce is still recognised when the cache is
	// full: it must never be accepted.
	if fresh, err := c.Record(ctx, "n0", t0.Add(10*time.Second), time.Minute); fresh || err != nil {
		t.Fatalf("replay in a full cache: fresh=%v err=%v, want a replay", fresh, err)
	}
	// n0 expires at t0+60s: its slot is taken again.
	if fresh, err := c.Record(ctx, "n4", t0.Add(60*time.Second), time.Minute); err != nil || !fresh {
		t.Fatalf("after n0 expired: fresh=%v err=%v", fresh, err)
	}
	live, err := c.Live(t0.Add(60 * time.Second))
	if err != nil || live != 4 {
		t.Fatalf("live=%d err=%v, want 4", live, err)
	}
	live, err = c.Live(t0.Add(time.Hour))
	if err != nil || live != 0 {
		t.Fatalf("an hour later live=%d err=%v, want 0", live, err)
	}
}

func TestInitKeepsExistingBuckets(t *testing.T) {
	store := envoyhost.NewSharedData()
	l := noncecache.Layout{Buckets: 16}
	a := worker(t, store, l)
	if fresh, err := a.Record(context.Background(), "k", t0, time.Minute); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	// A second worker starting (or a configuration reload) must not wipe
	// what the first one recorded.
	b := worker(t, store, l)
	if fresh, err := b.Record(context.Background(), "k", t0, time.Minute); err != nil || fresh {
		t.Fatalf("after a second Init: fresh=%v err=%v, want a replay", fresh, err)
	}
	// Concurrent starts of many workers create every bucket exactly once.
	store2 := envoyhost.NewSharedData()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := noncecache.New(store2, l)
			if err == nil {
				err = c.Init()
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if store2.Keys() != 16 {
		t.Errorf("%d keys, want 16", store2.Keys())
	}
}

func TestInitRejectsForeignData(t *testing.T) {
	store := envoyhost.NewSharedData()
	if err := store.Set("amesh.nonce.v1.32.3", []byte("not a bucket"), 0); err != nil {
		t.Fatal(err)
	}
	c, err := noncecache.New(store, noncecache.Layout{Buckets: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(); err == nil {
		t.Fatal("Init accepted a corrupt bucket")
	}
}

func TestLayoutLimits(t *testing.T) {
	bad := []noncecache.Layout{
		{Buckets: -1}, {Buckets: noncecache.MaxBuckets + 1}, {Slots: -1}, {Slots: noncecache.MaxSlots + 1},
		{MaxAttempts: -1}, {MaxAttempts: noncecache.MaxAttemptsLimit + 1},
		{Buckets: noncecache.MaxBuckets, Slots: noncecache.MaxSlots}, // over MaxBytes
	}
	for _, l := range bad {
		if _, err := noncecache.New(envoyhost.NewSharedData(), l); err == nil {
			t.Errorf("layout %+v accepted", l)
		}
	}
	l := noncecache.Layout{}.WithDefaults()
	if l.Capacity() != noncecache.DefaultBuckets*noncecache.DefaultSlots {
		t.Errorf("default capacity %d", l.Capacity())
	}
}
