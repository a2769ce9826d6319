package vectors

import (
	"crypto/elliptic"
	"math/big"
)

// HighS returns the other-S twin of a 64-byte r||s signature: s replaced by
// n - s. Plain ECDSA accepts both; the protocol accepts only the low one,
// which tests check with the twin of a valid signature.
func HighS(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s).FillBytes(out[32:])
	return out
}
