package p256

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestConstants derives every constant of field.go and point.go from p, n
// and b.
func TestConstants(t *testing.T) {
	two := big.NewInt(2)
	tests := []struct {
		name string
		got  [4]uint64
		want *big.Int
	}{
		{"p", fieldP, bigP},
		{"one", elementOne, new(big.Int).Mod(bigR, bigP)},
		{"R²", rSquared, new(big.Int).Exp(bigR, two, bigP)},
		{"b", curveB, new(big.Int).Mod(new(big.Int).Mul(bigB, bigR), bigP)},
		{"p-2", pMinus2, new(big.Int).Sub(bigP, two)},
		{"(p+1)/4", pPlus1Over4, new(big.Int).Rsh(new(big.Int).Add(bigP, big.NewInt(1)), 2)},
		{"n", orderN, bigN},
		{"p-n", pMinusN, new(big.Int).Sub(bigP, bigN)},
	}
	for _, tt := range tests {
		if got := bigOfLimbs(&tt.got); got.Cmp(tt.want) != 0 {
			t.Errorf("%s = %x, want %x", tt.name, got, tt.want)
		}
	}
	if new(big.Int).Mod(bigP, big.NewInt(4)).Int64() != 3 {
		t.Error("p is not 3 mod 4: sqrt's exponent is wrong")
	}
}

// fieldEdges are values where carries, borrows and the reduction are most
// likely to go wrong.
func fieldEdges() []*big.Int {
	pm := func(d int64) *big.Int { return new(big.Int).Add(bigP, big.NewInt(d)) }
	pow := func(e uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), e) }
	vals := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3),
		pm(-1), pm(-2), pm(-3), new(big.Int).Rsh(bigP, 1), pm(1).Rsh(pm(1), 1),
		pow(64), pow(96), pow(128), pow(192), pow(224), pow(255),
		new(big.Int).Sub(pow(64), big.NewInt(1)), new(big.Int).Sub(pow(192), big.NewInt(1)),
		new(big.Int).Sub(pow(224), big.NewInt(1)), bigB,
	}
	return vals
}

func randomBelowP(rng *rand.Rand) *big.Int {
	var b [32]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return new(big.Int).Mod(new(big.Int).SetBytes(b[:]), bigP)
}

// TestFieldAgainstBig checks every field operation against math/big on
// edge values and random ones.
func TestFieldAgainstBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := fieldEdges()
	for range 200 {
		vals = append(vals, randomBelowP(rng))
	}
	for i, a := range vals {
		b := vals[(i*7+3)%len(vals)]
		checkField(t, a, b)
		checkField(t, a, a)
	}
	for _, a := range fieldEdges() {
		for _, b := range fieldEdges() {
			checkField(t, a, b)
		}
	}
}

func checkField(t *testing.T, a, b *big.Int) {
	t.Helper()
	ea, eb := elementFromBig(a), elementFromBig(b)
	var z element
	check := func(op string, want *big.Int) {
		t.Helper()
		if got := bigFromElement(&z); got.Cmp(want) != 0 {
			t.Fatalf("%s(%x, %x) = %x, want %x", op, a, b, got, want)
		}
		if bigOfLimbs((*[4]uint64)(&z)).Cmp(bigP) >= 0 {
			t.Fatalf("%s(%x, %x) is not fully reduced", op, a, b)
		}
	}
	z.mul(&ea, &eb)
	check("mul", modP(new(big.Int).Mul(a, b)))
	z.square(&ea)
	check("square", modP(new(big.Int).Mul(a, a)))
	z.add(&ea, &eb)
	check("add", modP(new(big.Int).Add(a, b)))
	z.sub(&ea, &eb)
	check("sub", modP(new(big.Int).Sub(a, b)))
	// Aliasing: the output is one of the inputs.
	z = ea
	z.mul(&z, &z)
	check("mul aliased", modP(new(big.Int).Mul(a, a)))
	z.invert(&ea)
	if a.Sign() == 0 {
		check("invert", big.NewInt(0))
	} else {
		check("invert", new(big.Int).ModInverse(a, bigP))
	}
	z = element{}
	ok := z.sqrt(&ea)
	if want := new(big.Int).ModSqrt(a, bigP); want == nil {
		if ok {
			t.Fatalf("sqrt(%x) succeeded on a non-square", a)
		}
	} else {
		if !ok {
			t.Fatalf("sqrt(%x) failed on a square", a)
		}
		got := bigFromElement(&z)
		if got.Cmp(want) != 0 && got.Cmp(modP(new(big.Int).Neg(want))) != 0 {
			t.Fatalf("sqrt(%x) = %x, want ±%x", a, got, want)
		}
	}
	var buf [32]byte
	ea.bytes(&buf)
	if got := new(big.Int).SetBytes(buf[:]); got.Cmp(a) != 0 {
		t.Fatalf("bytes(%x) = %x", a, got)
	}
	if ea.isOdd() != (a.Bit(0) == 1) {
		t.Fatalf("isOdd(%x) wrong", a)
	}
	var back element
	if !back.setBytes(&buf) || back != ea {
		t.Fatalf("setBytes(bytes(%x)) does not round-trip", a)
	}
}

// TestSetBytesRange makes sure coordinates at or above p are refused, not
// reduced: accepting x + p for x would give one point two encodings.
func TestSetBytesRange(t *testing.T) {
	tests := []struct {
		name string
		v    *big.Int
		ok   bool
	}{
		{"p - 1", new(big.Int).Sub(bigP, big.NewInt(1)), true},
		{"p", bigP, false},
		{"p + 1", new(big.Int).Add(bigP, big.NewInt(1)), false},
		{"2^256 - 1", new(big.Int).Sub(bigR, big.NewInt(1)), false},
		{"zero", big.NewInt(0), true},
	}
	for _, tt := range tests {
		var e element
		if got := e.setBytes(bytes32(tt.v)); got != tt.ok {
			t.Errorf("setBytes(%s) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// FuzzField holds multiplication, squaring, addition, subtraction and the
// byte conversions to math/big on arbitrary 256-bit inputs.
func FuzzField(f *testing.F) {
	for _, a := range fieldEdges() {
		f.Add(bytes32(a)[:], bytes32(new(big.Int).Sub(bigP, a))[:])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) != 32 || len(b) != 32 {
			return
		}
		x, y := new(big.Int).SetBytes(a), new(big.Int).SetBytes(b)
		var e element
		if ok := e.setBytes((*[32]byte)(a)); ok != (x.Cmp(bigP) < 0) {
			t.Fatalf("setBytes(%x) = %v", a, ok)
		}
		checkField(t, modP(x), modP(y))
	})
}
