package wasmhost

import _ "embed" // for the embedded amesh.wasm

// The committed amesh.wasm is rebuilt, with its stamp amesh.wasm.json, by
//
//	go generate ./host/wasmhost
//
// TestEmbeddedModuleUpToDate fails when it no longer matches its sources.
//go:generate go run ./internal/genwasm

//go:embed amesh.wasm
var embedded []byte

// Module returns the embedded amesh.wasm. The slice is shared: do not
// modify it.
func Module() []byte { return embedded }
