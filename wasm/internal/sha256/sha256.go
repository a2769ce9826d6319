// Package sha256 is SHA-256 for wasm/protocol and the amesh.wasm guest.
//
// Native builds use crypto/sha256, which has assembly. Builds for
// GOARCH=wasm use this package's own implementation of FIPS 180-4
// (portable.go) instead, because importing crypto/sha256 there links Go's
// FIPS 140 module into amesh.wasm: its self-tests, AES, GCM, SHA-512,
// SHA-3, HMAC and DRBG and, through them, package os. crypto/sha256 has no
// wasm assembly, so the portable code costs no speed there. The build tag
// amesh_nistec selects the portable code natively too, so that
// wasm/protocol's tests can run the whole wasm crypto at native speed.
package sha256

// Size is the length of a SHA-256 digest in bytes.
const Size = 32

// BlockSize is the length of a SHA-256 message block in bytes.
const BlockSize = 64
