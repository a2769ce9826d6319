// Package protocol is the portable core of amesh: the Authorization header
// grammar, the canonical strings of protocol versions 1 and 2, ECDSA P-256
// signatures with the low-S rule, and the verifier's decision.
//
// The package is pure computation. It never reads the wall clock, the file
// system or the network: callers pass the current time, the allow list and the
// nonce store. That is what lets the same code run natively, inside the
// amesh.wasm guest and inside the Envoy filter.
//
// The package keeps amesh.wasm small (docs/ABI.md; issue 5 sets 0.9 MB
// gzip): its wasm build imports neither fmt, which links reflect and
// Unicode tables, nor math/big, which imports fmt, nor crypto/rand, which
// links Go's FIPS 140 random number generator. Errors are built with
// strconv and a small wrapping type that keeps errors.Is and errors.As
// working, scalars mod n have their own arithmetic (scalar.go), signing
// nonces come from WASI's random_get (rand_wasip1.go), and ECDSA runs on
// filippo.io/nistec (ecdsa_nistec.go). A test in wasm/guest fails if any
// of these packages comes back into the guest's dependencies.
//
// docs/PROTOCOL.md in the repository is the normative specification; this
// package implements it.
package protocol
