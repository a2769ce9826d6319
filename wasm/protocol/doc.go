// Package protocol is the portable core of amesh: the Authorization header
// grammar, the canonical strings of protocol versions 1 and 2, ECDSA P-256
// signatures with the low-S rule, and the verifier's decision.
//
// The package is pure computation. It never reads the wall clock, the file
// system or the network: callers pass the current time, the allow list and the
// nonce store. That is what lets the same code run natively, inside the
// amesh.wasm guest and inside the Envoy filter.
//
// docs/PROTOCOL.md in the repository is the normative specification; this
// package implements it.
package protocol
