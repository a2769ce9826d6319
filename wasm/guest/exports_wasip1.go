//go:build wasip1

package main

import (
	"unsafe"

	"github.com/amesh-go/amesh/wasm/abi"
)

// The exports of amesh.wasm; docs/ABI.md describes each. Every export that
// returns a record returns the address of a 4-byte little-endian length
// followed by the record, valid until the next call into the instance.

var (
	g    = newGuest(wasmHost{})
	bufs = &buffers{m: make(map[uint32][]byte), addr: address}
)

// address is the linear-memory address of b's first byte. Go's collector
// does not move objects, so the address stays valid while b is referenced.
func address(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// result returns the address of the result record the guest just built.
func result(out []byte) uint32 { return address(out) }

// withInput runs work on the host's input, or returns an error record.
func withInput(ptr, n uint32, work func(in []byte, res *abi.Result) error) uint32 {
	return result(g.call(func(res *abi.Result) error {
		in, err := bufs.input(ptr, n)
		if err != nil {
			return err
		}
		return work(in, res)
	}))
}

//go:wasmexport amesh_abi_version
func ameshABIVersion() int32 { return abi.Version }

//go:wasmexport amesh_alloc
func ameshAlloc(size uint32) uint32 { return bufs.alloc(size) }

//go:wasmexport amesh_free
func ameshFree(ptr uint32) { bufs.free(ptr) }

//go:wasmexport amesh_configure
func ameshConfigure(ptr, n uint32) uint32 {
	return withInput(ptr, n, func(in []byte, _ *abi.Result) error { return g.configure(in) })
}

//go:wasmexport amesh_verify
func ameshVerify(ptr, n uint32) uint32 { return withInput(ptr, n, g.verify) }

//go:wasmexport amesh_prepare
func ameshPrepare(ptr, n uint32) uint32 { return withInput(ptr, n, g.prepare) }

//go:wasmexport amesh_commit
func ameshCommit(handle uint32, sigStatus, nonceStatus int32) uint32 {
	return result(g.call(func(res *abi.Result) error {
		return g.commit(int64(handle), sigStatus, nonceStatus, res)
	}))
}

//go:wasmexport amesh_release
func ameshRelease(handle uint32) { g.release(int64(handle)) }

//go:wasmexport amesh_verify_signature
func ameshVerifySignature(ptr, n uint32) uint32 { return withInput(ptr, n, g.verifySignatureRecord) }

//go:wasmexport amesh_sign
func ameshSign(ptr, n uint32) uint32 { return withInput(ptr, n, g.sign) }

//go:wasmexport amesh_sign_prepare
func ameshSignPrepare(ptr, n uint32) uint32 { return withInput(ptr, n, g.signPrepare) }

//go:wasmexport amesh_sign_finish
func ameshSignFinish(handle, ptr, n uint32) uint32 {
	return withInput(ptr, n, func(sig []byte, res *abi.Result) error {
		return g.signFinish(int64(handle), sig, res)
	})
}
