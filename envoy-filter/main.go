// Command amesh-envoy is the amesh proxy-wasm HTTP filter for Envoy (1.33 or
// later) and Istio: it verifies every request's AuthMesh signature against an
// allow list before the request reaches a service, with the same decision,
// status codes and JSON bodies as the Go middleware, because it runs the same
// core (wasm/protocol).
//
// Build it with standard Go as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o build/amesh-envoy.wasm ./envoy-filter
//
// Configuration, deployment and limits are described in docs/envoy.md. On
// other platforms the package builds too, so that its tests can run the
// filter natively inside the SDK's host emulator.
package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// main stays empty: a reactor is driven by the host through its exports,
// after _initialize has run init.
func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}
