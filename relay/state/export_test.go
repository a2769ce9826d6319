package state

// MemorySize counts the entries a Memory store holds, for tests of its
// sweeping.
func MemorySize(m *Memory) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms) + len(m.codes) + len(m.tombstones) + len(m.limits) + len(m.once) + len(m.boxes) + len(m.buckets)
}
