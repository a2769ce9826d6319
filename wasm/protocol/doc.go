// Package protocol is the portable core of amesh: the Authorization header
// grammar, the canonical strings of protocol versions 1 and 2, ECDSA P-256
// signatures with the low-S rule, and the verifier's decision.
//
// The package is pure computation. It never reads the wall clock, the file
// system or the network: callers pass the current time, the allow list and the
// nonce store. That is what lets the same code run natively, inside the
// amesh.wasm guest and inside the Envoy filter.
//
// The package keeps amesh.wasm small (issue 5 sets 0.9 MB gzip). Its wasm
// build imports neither fmt, which links reflect and its formatting
// machinery, nor math/big, which imports fmt, nor crypto/rand,
// crypto/sha256 or crypto/ecdsa, which link Go's FIPS 140 module (AES,
// GCM, a DRBG, SHA-512, SHA-3, their self-tests) and package os, nor
// filippo.io/nistec, whose 88 KB table of precomputed points gzip cannot
// shrink. Errors are built with strconv and a small wrapping type that
// keeps errors.Is and errors.As working, signing nonces come from WASI's
// random_get (rand_wasip1.go), SHA-256 is wasm/internal/sha256, and ECDSA
// verification, with its arithmetic mod n, runs on wasm/internal/p256
// (ecdsa_p256.go), both written for this project. Natively the package uses the standard library as
// usual. TestWasmDependencies in wasm/guest fails if any of these packages
// comes back into the guest's dependencies.
//
// docs/PROTOCOL.md in the repository is the normative specification; this
// package implements it.
package protocol
