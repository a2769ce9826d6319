// Command guest is amesh.wasm: the amesh verification core as a WebAssembly
// reactor for hosts that run wasm (wazero in Go servers, JavaScript
// runtimes, browsers).
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o amesh.wasm ./wasm/guest
//
// The host instantiates the module, calls _initialize once, then the
// amesh_* exports. docs/ABI.md specifies every export and import; the
// records they exchange are those of package wasm/abi. The logic lives in
// files without build constraints, so that it is tested and fuzzed natively
// against a fake host; exports_wasip1.go and imports_wasip1.go bind it to
// the wasm exports and imports.
package main

// main is empty: a reactor is driven through its exports, and the Go
// runtime runs package initialisation from _initialize.
func main() {}
