//go:build wasip1

package protocol

import "syscall"

// readRandom fills b with fresh random bytes from WASI's random_get: the
// nonce of a SignParams without Nonce or Rand.
//
// On wasip1, crypto/rand reads the same random_get, but importing it links
// Go's whole FIPS 140 random number stack (DRBG, AES, GCM, SHA-512 and their
// self-tests) into amesh.wasm and the Envoy filter, for nothing: outside
// FIPS mode it hands the bytes over unchanged. docs/ABI.md requires hosts to
// make random_get cryptographically secure.
func readRandom(b []byte) error { return syscall.RandomGet(b) }
