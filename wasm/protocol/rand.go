//go:build !wasip1

package protocol

import "crypto/rand"

// readRandom fills b with fresh random bytes from crypto/rand: the nonce of
// a SignParams without Nonce or Rand. wasip1 builds use rand_wasip1.go.
func readRandom(b []byte) error {
	_, err := rand.Read(b)
	return err
}
