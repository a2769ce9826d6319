//go:build wasm || amesh_nistec

package sha256

// Sum256 returns the SHA-256 digest of data.
func Sum256(data []byte) [Size]byte { return sum(data) }
