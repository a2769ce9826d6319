package main

import (
	"errors"
	"strconv"

	"github.com/amesh-go/amesh/wasm/abi"
)

// buffers are the guest memory a host may write into: every buffer
// amesh_alloc returned and amesh_free has not released, by address. A
// pointer and length from the host are accepted only if they name a prefix
// of one of them, so that no host-supplied number can make the guest read
// outside memory it handed out, or memory the Go runtime may reuse.
type buffers struct {
	m    map[uint32][]byte
	addr func([]byte) uint32 // the linear-memory address of a buffer
}

// alloc returns the address of a new buffer of size bytes, or 0 if size is
// above abi.MaxRecordSize.
func (b *buffers) alloc(size uint32) uint32 {
	if size > abi.MaxRecordSize {
		return 0
	}
	// A zero-size allocation would share the runtime's zero-size address
	// with every other one; one spare byte keeps addresses unique.
	buf := make([]byte, max(size, 1))
	p := b.addr(buf)
	b.m[p] = buf
	return p
}

// free releases the buffer at ptr; unknown pointers are ignored.
func (b *buffers) free(ptr uint32) { delete(b.m, ptr) }

// errBadPointer is the answer to a pointer that amesh_alloc did not return.
var errBadPointer = errors.New("abi: pointer was not returned by amesh_alloc, or was freed")

// input returns the n bytes at ptr, which must lie in one live buffer.
func (b *buffers) input(ptr, n uint32) ([]byte, error) {
	buf, ok := b.m[ptr]
	if !ok {
		return nil, errBadPointer
	}
	if uint64(n) > uint64(len(buf)) {
		return nil, errors.New("abi: length " + strconv.FormatUint(uint64(n), 10) + " exceeds the " +
			strconv.Itoa(len(buf)) + "-byte buffer at " + strconv.FormatUint(uint64(ptr), 10))
	}
	return buf[:n:n], nil
}
