//go:build wasip1

package main

import (
	"syscall"
	"unsafe"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// The imports of module "amesh"; docs/ABI.md describes each. Pointers
// passed to the host point into Go memory that stays referenced for the
// whole call (the arguments of the wasmHost methods), and the host runs
// synchronously, so the collector cannot reclaim it meanwhile.

//go:wasmimport amesh now_ms
func importNowMs() int64

//go:wasmimport amesh ecdsa_verify
func importECDSAVerify(point unsafe.Pointer, msg unsafe.Pointer, msgLen uint32, digest unsafe.Pointer, sig unsafe.Pointer) int32

//go:wasmimport amesh nonce_record
func importNonceRecord(key unsafe.Pointer, keyLen uint32, nowMs int64, ttlMs int64) int32

//go:wasmimport amesh sign_digest
func importSignDigest(key unsafe.Pointer, digest unsafe.Pointer, out unsafe.Pointer) int32

//go:wasmimport amesh log
func importLog(level int32, msg unsafe.Pointer, msgLen uint32)

// wasmHost implements Host with the imports.
type wasmHost struct{}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func (wasmHost) NowMs() int64 { return importNowMs() }

// VerifyECDSA passes fixed-size buffers without lengths; the guest checks
// the sizes, so the host can read exactly 65, 32 and 64 bytes. A nil
// digest is passed as address 0, which Go never allocates: the host hashes
// the message (abi.CryptoHostMessage).
func (wasmHost) VerifyECDSA(point, msg, digest, sig []byte) int32 {
	if len(point) != protocol.UncompressedKeySize || (digest != nil && len(digest) != 32) || len(sig) != protocol.SignatureSize {
		return 2 // abi.SigUnsupported: verify in the guest
	}
	var d unsafe.Pointer
	if digest != nil {
		d = ptr(digest)
	}
	return importECDSAVerify(ptr(point), ptr(msg), uint32(len(msg)), d, ptr(sig))
}

func (wasmHost) RecordNonce(key []byte, nowMs, ttlMs int64) int32 {
	return importNonceRecord(ptr(key), uint32(len(key)), nowMs, ttlMs)
}

func (wasmHost) SignDigest(key, digest []byte, out *[protocol.SignatureSize]byte) int32 {
	if len(key) != protocol.PublicKeySize || len(digest) != 32 {
		return 1 // abi.SignFailed
	}
	return importSignDigest(ptr(key), ptr(digest), unsafe.Pointer(out))
}

func (wasmHost) Log(level int32, msg string) {
	importLog(level, unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

// Random reads WASI's random_get, which docs/ABI.md requires to be
// cryptographically secure. crypto/rand reads the same source on wasip1 but
// would link Go's FIPS 140 random number stack into amesh.wasm.
func (wasmHost) Random(b []byte) error { return syscall.RandomGet(b) }
