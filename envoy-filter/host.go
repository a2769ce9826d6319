package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// sharedData is Envoy's shared data as a noncecache.Store.
type sharedData struct{}

// Get implements noncecache.Store.
func (sharedData) Get(key string) ([]byte, uint32, error) {
	v, cas, err := proxywasm.GetSharedData(key)
	if errors.Is(err, types.ErrorStatusNotFound) {
		return nil, 0, noncecache.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get shared data %q: %w", key, err)
	}
	return v, cas, nil
}

// Set implements noncecache.Store.
func (sharedData) Set(key string, value []byte, cas uint32) error {
	err := proxywasm.SetSharedData(key, value, cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return noncecache.ErrCASMismatch
	}
	if err != nil {
		return fmt.Errorf("set shared data %q: %w", key, err)
	}
	return nil
}

// requestTimePath is the Envoy attribute holding the time the first byte of
// the request was received. The filter takes "now" from it rather than from
// the guest's clock, which hosts are not obliged to make real.
var requestTimePath = []string{"request", "time"}

// requestTime reads request.time: Envoy serialises timestamps as 8 bytes,
// little-endian nanoseconds since the Unix epoch.
func requestTime() (time.Time, error) {
	b, err := proxywasm.GetProperty(requestTimePath)
	if err != nil {
		return time.Time{}, fmt.Errorf("read property request.time: %w", err)
	}
	if len(b) != 8 {
		return time.Time{}, fmt.Errorf("property request.time is %d bytes, want 8", len(b))
	}
	ns := int64(binary.LittleEndian.Uint64(b))
	if ns <= 0 {
		return time.Time{}, fmt.Errorf("property request.time is %d", ns)
	}
	return time.Unix(0, ns), nil
}

// callForeign calls a host foreign function.
func callForeign(name string, param []byte) ([]byte, error) {
	return proxywasm.CallForeignFunction(name, param)
}
