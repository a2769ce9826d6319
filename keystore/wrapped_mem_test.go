package keystore

import "sync"

// memItems is an itemStore in memory. It stands in for the Keychain in tests
// on machines without one; the Keychain itself is exercised on macOS.
type memItems struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *memItems) get(a string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[a]
	if !ok {
		return nil, errItemNotFound
	}
	return clone(v), nil
}

func (m *memItems) put(a string, d []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string][]byte{}
	}
	m.m[a] = clone(d)
	return nil
}

func (m *memItems) remove(a string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, a)
	return nil
}
