package protocol

import (
	"crypto/elliptic"
	"math/big"
	"testing"
)

func TestHalfN(t *testing.T) {
	n := elliptic.P256().Params().N
	if new(big.Int).SetBytes(orderN[:]).Cmp(n) != 0 {
		t.Fatal("orderN is not n")
	}
	if half := new(big.Int).Rsh(n, 1); new(big.Int).SetBytes(halfN[:]).Cmp(half) != 0 {
		t.Fatal("halfN is not n/2")
	}
}

// NormalizeLowS leaves a low s alone and replaces any other by |n - s|,
// around 0, n/2, n and 2^256.
func TestNormalizeLowSAgainstBig(t *testing.T) {
	n := elliptic.P256().Params().N
	one := big.NewInt(1)
	var values []*big.Int
	for _, base := range []*big.Int{new(big.Int), new(big.Int).Rsh(n, 1), n, new(big.Int).Lsh(one, 256)} {
		for d := int64(-2); d <= 2; d++ {
			if v := new(big.Int).Add(base, big.NewInt(d)); v.Sign() >= 0 && v.BitLen() <= 256 {
				values = append(values, v)
			}
		}
	}
	for _, s := range values {
		sig := make([]byte, SignatureSize)
		s.FillBytes(sig[32:])
		want := new(big.Int).Set(s)
		if !IsLowS(sig) {
			want.Sub(n, s).Abs(want)
		}
		if err := NormalizeLowS(sig); err != nil {
			t.Fatal(err)
		}
		if got := new(big.Int).SetBytes(sig[32:]); got.Cmp(want) != 0 {
			t.Fatalf("NormalizeLowS(s=%x) = %x, want %x", s, got, want)
		}
	}
}
