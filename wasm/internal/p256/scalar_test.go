package p256

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"
)

// scalar.go replaces math/big in ECDSA verification; these tests hold it
// to math/big on edge values, random values and fuzzed ones.

func bigOf(x *scalar) *big.Int { b := x.bytes(); return new(big.Int).SetBytes(b[:]) }

func scalarOf(t testing.TB, v *big.Int) scalar {
	t.Helper()
	if v.Sign() < 0 || v.BitLen() > 256 {
		t.Fatalf("%v does not fit in a scalar", v)
	}
	var b [32]byte
	v.FillBytes(b[:])
	return scalar(limbsBE(&b))
}

func TestScalarConstants(t *testing.T) {
	if bigOf(&scalarN).Cmp(bigN) != 0 {
		t.Fatalf("scalarN is %x, want n", scalarN)
	}
	if scalarNInv*scalarN[0] != 1<<64-1 {
		t.Fatal("scalarNInv is not -n⁻¹ mod 2^64")
	}
	rr := new(big.Int).Lsh(big.NewInt(1), 512)
	if rr.Mod(rr, bigN); bigOf(&scalarRR).Cmp(rr) != 0 {
		t.Fatal("scalarRR is not 2^512 mod n")
	}
}

// edgeScalars are values around the limb boundaries, 0, n and 2^256.
func edgeScalars() []*big.Int {
	one := big.NewInt(1)
	top := new(big.Int).Lsh(one, 256)
	vs := []*big.Int{big.NewInt(0), one, big.NewInt(2), big.NewInt(3)}
	for _, base := range []*big.Int{bigN, new(big.Int).Rsh(bigN, 1), top} {
		for d := int64(-2); d <= 2; d++ {
			vs = append(vs, new(big.Int).Add(base, big.NewInt(d)))
		}
	}
	for i := range 4 {
		w := new(big.Int).Lsh(one, uint(64*i))
		vs = append(vs, w, new(big.Int).Sub(w, one), new(big.Int).Lsh(new(big.Int).Sub(w, one), 64))
	}
	var out []*big.Int
	for _, v := range vs {
		if v.Sign() >= 0 && v.BitLen() <= 256 {
			out = append(out, v)
		}
	}
	return out
}

// checkScalarOps compares every operation of scalar.go with math/big on x
// and y, any 256-bit values.
func checkScalarOps(t *testing.T, x, y *big.Int) {
	t.Helper()
	sx, sy := scalarOf(t, x), scalarOf(t, y)
	if got, want := bigOf(new(sx.reduceOnce())), new(big.Int).Mod(x, bigN); got.Cmp(want) != 0 {
		t.Fatalf("reduceOnce(%x) = %x, want %x", x, got, want)
	}
	if got := sx.lessThanN(); got != (x.Cmp(bigN) < 0) {
		t.Fatalf("lessThanN(%x) = %v", x, got)
	}
	if x.Cmp(bigN) >= 0 || y.Cmp(bigN) >= 0 {
		return // the modular operations take residues
	}
	if got, want := bigOf(new(mulMod(&sx, &sy))), new(big.Int).Mod(new(big.Int).Mul(x, y), bigN); got.Cmp(want) != 0 {
		t.Fatalf("mulMod(%x, %x) = %x, want %x", x, y, got, want)
	}
	if got, want := bigOf(new(subMod(&sx, &sy))), new(big.Int).Mod(new(big.Int).Sub(x, y), bigN); got.Cmp(want) != 0 {
		t.Fatalf("subMod(%x, %x) = %x, want %x", x, y, got, want)
	}
	for _, k := range []uint{1, 2, 31, 63} {
		h := sx
		h.divPow2Mod(k)
		inv := new(big.Int).ModInverse(new(big.Int).Lsh(big.NewInt(1), k), bigN)
		if got, want := bigOf(&h), new(big.Int).Mod(new(big.Int).Mul(x, inv), bigN); got.Cmp(want) != 0 {
			t.Fatalf("divPow2Mod(%x, %d) = %x, want %x", x, k, got, want)
		}
	}
	want := new(big.Int).ModInverse(x, bigN)
	if want == nil {
		want = new(big.Int)
	}
	if got := bigOf(new(invMod(&sx))); got.Cmp(want) != 0 {
		t.Fatalf("invMod(%x) = %x, want %x", x, got, want)
	}
}

func TestScalarAgainstBig(t *testing.T) {
	edges := edgeScalars()
	for _, x := range edges {
		for _, y := range edges {
			checkScalarOps(t, x, y)
		}
	}
	max := new(big.Int).Lsh(big.NewInt(1), 256)
	for range 2000 {
		x, _ := rand.Int(rand.Reader, max)
		y, _ := rand.Int(rand.Reader, bigN)
		checkScalarOps(t, x, y)
		checkScalarOps(t, y, x)
	}
	// invMod of values outside [1, n-1] is 0, not a hang.
	for _, v := range []scalar{{}, scalarN, {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}} {
		if inv := invMod(&v); !inv.isZero() {
			t.Fatalf("invMod(%x) = %x", v, inv)
		}
	}
}

func TestOrderMinusAgainstBig(t *testing.T) {
	for _, v := range edgeScalars() {
		var b [32]byte
		v.FillBytes(b[:])
		want := new(big.Int).Sub(bigN, v)
		if got := OrderMinus(&b); new(big.Int).SetBytes(got[:]).Cmp(want.Abs(want)) != 0 {
			t.Fatalf("OrderMinus(%x) = %x, want %x", v, got, want)
		}
	}
}

// FuzzScalar holds scalar.go to math/big on arbitrary 32-byte values.
func FuzzScalar(f *testing.F) {
	n, half := bigN.Bytes(), new(big.Int).Rsh(bigN, 1).Bytes()
	f.Add(n, half)
	f.Add(bytes.Repeat([]byte{0xff}, 32), []byte{1})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) > 32 || len(b) > 32 {
			return
		}
		checkScalarOps(t, new(big.Int).SetBytes(a), new(big.Int).SetBytes(b))
	})
}
