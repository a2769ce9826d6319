package keystore

import (
	"fmt"
	"sync"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// The memory backend keeps keys in this process only, one per directory,
// so that tests and demos can create, close and reopen a device without any
// storage. Nothing survives the process.
var memoryKeys struct {
	sync.Mutex
	m map[string]*memoryState
}

type memoryState struct {
	key    *protocol.PrivateKey
	secret []byte
	mu     sync.Mutex
	gen    uint64
}

type memoryStore struct {
	st     *memoryState
	closed bool
	mu     sync.Mutex
}

// NewMemory returns a memory-backed store that belongs to no directory, for
// tests and demos that need a key and nothing else.
func NewMemory() (Store, error) {
	st, err := newMemoryState()
	if err != nil {
		return nil, err
	}
	return &memoryStore{st: st}, nil
}

func newMemoryState() (*memoryState, error) {
	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("keystore: memory key: %w", err)
	}
	s, err := newSecret()
	if err != nil {
		return nil, err
	}
	return &memoryState{key: k, secret: s}, nil
}

func createMemory(opts Options) (Store, error) {
	dir := absDir(opts.Dir)
	memoryKeys.Lock()
	defer memoryKeys.Unlock()
	if _, ok := memoryKeys.m[dir]; ok {
		return nil, fmt.Errorf("%w: a memory key for %s exists in this process", ErrExists, dir)
	}
	st, err := newMemoryState()
	if err != nil {
		return nil, err
	}
	if memoryKeys.m == nil {
		memoryKeys.m = map[string]*memoryState{}
	}
	memoryKeys.m[dir] = st
	return &memoryStore{st: st}, nil
}

func openMemory(opts Options) (Store, error) {
	dir := absDir(opts.Dir)
	memoryKeys.Lock()
	defer memoryKeys.Unlock()
	st, ok := memoryKeys.m[dir]
	if !ok {
		return nil, fmt.Errorf("keystore: %w: the memory backend keeps keys only inside the process that created them, and this one has none for %s; create the device with another backend to keep it", ErrNotFound, dir)
	}
	return &memoryStore{st: st}, nil
}

func removeMemory(opts Options) error {
	memoryKeys.Lock()
	defer memoryKeys.Unlock()
	delete(memoryKeys.m, absDir(opts.Dir))
	return nil
}

func (m *memoryStore) PublicKey() []byte { return m.st.key.PublicKey() }
func (m *memoryStore) Backend() string   { return BackendMemory }

func (m *memoryStore) SignDigest(d []byte) ([]byte, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	return signSoftware(m.st.key, d)
}

func (m *memoryStore) SealingSecret() ([]byte, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	return clone(m.st.secret), nil
}

func (m *memoryStore) Generation() (uint64, error) {
	if m.isClosed() {
		return 0, ErrClosed
	}
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	return m.st.gen, nil
}

func (m *memoryStore) CommitGeneration(g uint64) error {
	if m.isClosed() {
		return ErrClosed
	}
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	m.st.gen = max(m.st.gen, g)
	return nil
}

func (m *memoryStore) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *memoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
