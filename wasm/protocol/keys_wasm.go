//go:build wasm

package protocol

// ecdsaKey is empty in wasm builds, which do not link crypto/ecdsa; see
// keys_ecdsa.go.
type ecdsaKey = struct{}
