package p256

import (
	"bytes"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/rand"
	"math/big"
	mrand "math/rand/v2"
	"testing"
)

// randomScalar returns a uniformly random number in [1, n-1].
func randomScalar(t testing.TB) *big.Int {
	t.Helper()
	for {
		k, err := rand.Int(rand.Reader, bigN)
		if err != nil {
			t.Fatal(err)
		}
		if k.Sign() != 0 {
			return k
		}
	}
}

// ecdhKey returns k·G as crypto/ecdh computes it, for k in [1, n-1].
func ecdhKey(t testing.TB, k *big.Int) *ecdh.PrivateKey {
	t.Helper()
	priv, err := ecdh.P256().NewPrivateKey(bytes32(k)[:])
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// scalarBaseMult and scalarMult are the two halves of
// DoubleScalarMultVarTime, with the other scalar zero.
func scalarBaseMult(k *big.Int) *Point {
	return NewPoint().DoubleScalarMultVarTime(bytes32(k), new([32]byte), NewPoint())
}

func scalarMult(k *big.Int, q *Point) *Point {
	return NewPoint().DoubleScalarMultVarTime(new([32]byte), bytes32(k), q)
}

func mustBytes(t testing.TB, p *Point) []byte {
	t.Helper()
	b, err := p.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	return b[:]
}

// TestAgainstECDH compares decoding, encoding and both kinds of scalar
// multiplication with crypto/ecdh on random keys: k·G is the public key of
// k, and the x coordinate of k·Q is the shared secret of k and Q.
func TestAgainstECDH(t *testing.T) {
	for i := range 64 {
		a, b := randomScalar(t), randomScalar(t)
		ka, kb := ecdhKey(t, a), ecdhKey(t, b)
		pubA := ka.PublicKey().Bytes()
		if got := mustBytes(t, scalarBaseMult(a)); !bytes.Equal(got, pubA) {
			t.Fatalf("%d: %x·G = %x, crypto/ecdh %x", i, a, got, pubA)
		}
		q, err := NewPoint().SetBytes(pubA)
		if err != nil {
			t.Fatalf("%d: SetBytes(%x): %v", i, pubA, err)
		}
		if got := mustBytes(t, q); !bytes.Equal(got, pubA) {
			t.Fatalf("%d: SetBytes/Bytes round trip: %x, want %x", i, got, pubA)
		}
		x, y := new(big.Int).SetBytes(pubA[1:33]), new(big.Int).SetBytes(pubA[33:])
		qc, err := NewPoint().SetBytes(elliptic.MarshalCompressed(elliptic.P256(), x, y))
		if err != nil || !qc.Equal(q) {
			t.Fatalf("%d: compressed decoding differs: %v", i, err)
		}
		secret, err := kb.ECDH(ka.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		bx, err := scalarMult(b, q).BytesX()
		if err != nil || !bytes.Equal(bx[:], secret) {
			t.Fatalf("%d: x(%x·Q) = %x (%v), crypto/ecdh %x", i, b, bx, err, secret)
		}
		// Both at once: a·G + b·(a·G) = (a + ab)·G.
		sum := new(big.Int).Mul(a, b)
		sum.Add(sum, a).Mod(sum, bigN)
		got := NewPoint().DoubleScalarMultVarTime(bytes32(a), bytes32(b), q)
		if want := scalarBaseMult(sum); !got.Equal(want) {
			t.Fatalf("%d: a·G + b·aG != (a + ab)·G", i)
		}
	}
}

// TestScalarEdges multiplies by the scalars where recodings and the
// group law meet their special cases, against the math/big model.
func TestScalarEdges(t *testing.T) {
	g := refGenerator()
	q := refMul(big.NewInt(0x1234567), g)
	nm := func(d int64) *big.Int { return new(big.Int).Add(bigN, big.NewInt(d)) }
	pow := func(e uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), e) }
	scalars := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(31),
		big.NewInt(32), big.NewInt(63), big.NewInt(64), big.NewInt(65), big.NewInt(127),
		nm(-1), nm(-2), bigN, nm(1), nm(2), new(big.Int).Rsh(bigN, 1),
		pow(255), new(big.Int).Sub(pow(256), big.NewInt(1)), new(big.Int).Sub(pow(255), big.NewInt(1)),
		mustBig("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		mustBig("5555555555555555555555555555555555555555555555555555555555555555"),
		mustBig("f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"),
	}
	for _, k := range scalars {
		if got, want := toRef(scalarBaseMult(k)), refMul(k, g); !refEqual(got, want) {
			t.Errorf("%x·G = %v, want %v", k, got, want)
		}
		if got, want := toRef(scalarMult(k, fromRef(q))), refMul(k, q); !refEqual(got, want) {
			t.Errorf("%x·Q = %v, want %v", k, got, want)
		}
	}
	// n·G, 0·G and anything times the identity are the identity; (n-1)·G
	// is -G.
	if !scalarBaseMult(bigN).IsInfinity() || !scalarBaseMult(big.NewInt(0)).IsInfinity() {
		t.Error("n·G or 0·G is not the identity")
	}
	if !scalarMult(big.NewInt(5), NewPoint()).IsInfinity() {
		t.Error("5·O is not the identity")
	}
	if !scalarBaseMult(nm(-1)).Equal(NewPoint().Negate(Generator())) {
		t.Error("(n-1)·G != -G")
	}
}

// TestDoubleScalarMultCancels makes the two halves meet: with Q = c·G,
// u1·G + u2·Q passes through sums where the accumulator equals, or is the
// inverse of, the point being added, and ends at the identity when
// u1 + c·u2 = 0 mod n. Exceptional cases of incomplete formulas hide here.
func TestDoubleScalarMultCancels(t *testing.T) {
	g := Generator()
	tests := []struct {
		name   string
		c, u2  *big.Int
		u1     *big.Int // nil: -c·u2 mod n, a sum at infinity
		result *big.Int // c·u2 + u1 mod n, nil for infinity
	}{
		{"Q = G, u1 = -u2", big.NewInt(1), big.NewInt(12345), nil, nil},
		{"Q = G, u1 = u2", big.NewInt(1), big.NewInt(777), big.NewInt(777), big.NewInt(1554)},
		{"Q = -G, u1 = u2", new(big.Int).Sub(bigN, big.NewInt(1)), big.NewInt(99), big.NewInt(99), nil},
		{"Q = 2G, u1 = -2u2", big.NewInt(2), big.NewInt(5), nil, nil},
		{"Q = 3G, u1 = 1, u2 = 1", big.NewInt(3), big.NewInt(1), big.NewInt(1), big.NewInt(4)},
		{"Q = G, u1 = u2 = n-1", big.NewInt(1), new(big.Int).Sub(bigN, big.NewInt(1)), new(big.Int).Sub(bigN, big.NewInt(1)), new(big.Int).Sub(bigN, big.NewInt(2))},
		{"random, at infinity", randomScalar(t), randomScalar(t), nil, nil},
	}
	for _, tt := range tests {
		q := scalarBaseMult(tt.c)
		u1 := tt.u1
		if u1 == nil {
			u1 = new(big.Int).Mul(tt.c, tt.u2)
			u1.Neg(u1).Mod(u1, bigN)
		}
		got := NewPoint().DoubleScalarMultVarTime(bytes32(u1), bytes32(tt.u2), q)
		want := NewPoint()
		if tt.result != nil {
			want = scalarBaseMult(tt.result)
		} else if tt.u1 != nil {
			w := new(big.Int).Mul(tt.c, tt.u2)
			w.Add(w, u1).Mod(w, bigN)
			want = NewPoint().DoubleScalarMultVarTime(bytes32(w), new([32]byte), g)
		}
		if !got.Equal(want) {
			t.Errorf("%s: wrong sum", tt.name)
		}
		if tt.result == nil && tt.u1 == nil && !got.IsInfinity() {
			t.Errorf("%s: sum is not the identity", tt.name)
		}
	}
}

// TestGroupLaw checks Add and Double against the math/big model, the
// identity and inverses included, and with aliased outputs.
func TestGroupLaw(t *testing.T) {
	g := refGenerator()
	pts := []refPoint{{inf: true}, g, refNeg(g), refMul(big.NewInt(2), g)}
	for range 12 {
		pts = append(pts, refMul(randomScalar(t), g))
	}
	for i, a := range pts {
		for j, b := range pts {
			pa, pb := fromRef(a), fromRef(b)
			if got, want := toRef(NewPoint().Add(pa, pb)), refAdd(a, b); !refEqual(got, want) {
				t.Fatalf("%d + %d = %v, want %v", i, j, got, want)
			}
			if got, want := toRef(NewPoint().Add(pa, NewPoint().Negate(pa))), (refPoint{inf: true}); !refEqual(got, want) {
				t.Fatalf("%d - %d is not the identity", i, i)
			}
			c := *pa
			c.Add(&c, pb)
			if got, want := toRef(&c), refAdd(a, b); !refEqual(got, want) {
				t.Fatalf("%d + %d aliased = %v, want %v", i, j, got, want)
			}
		}
		if got, want := toRef(NewPoint().Double(fromRef(a))), refAdd(a, a); !refEqual(got, want) {
			t.Fatalf("2·%d = %v, want %v", i, got, want)
		}
		if got, want := toRef(NewPoint().Add(fromRef(a), fromRef(a))), refAdd(a, a); !refEqual(got, want) {
			t.Fatalf("%d + %d (doubling through Add) = %v, want %v", i, i, got, want)
		}
	}
}

// TestSetBytesRejects feeds SetBytes encodings that must fail, each next to
// a valid neighbour so that the test cannot pass by rejecting everything.
func TestSetBytesRejects(t *testing.T) {
	k := ecdhKey(t, big.NewInt(0xabcdef))
	valid := k.PublicKey().Bytes()
	x, y := new(big.Int).SetBytes(valid[1:33]), new(big.Int).SetBytes(valid[33:])
	compressed := elliptic.MarshalCompressed(elliptic.P256(), x, y)
	for _, b := range [][]byte{valid, compressed} {
		if _, err := NewPoint().SetBytes(b); err != nil {
			t.Fatalf("valid encoding %x refused: %v", b, err)
		}
	}
	with := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	// A compressed x that is not on the curve: the smallest x >= 1 whose
	// x³ - 3x + b is not a square.
	var offCurve []byte
	for v := int64(1); offCurve == nil; v++ {
		xv := big.NewInt(v)
		rhs := new(big.Int).Exp(xv, big.NewInt(3), bigP)
		rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), xv)).Add(rhs, bigB).Mod(rhs, bigP)
		if new(big.Int).ModSqrt(rhs, bigP) == nil {
			offCurve = append([]byte{2}, bytes32(xv)[:]...)
		}
	}
	plusP := func(v *big.Int) []byte { return bytes32(new(big.Int).Add(v, bigP))[:] }
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"infinity", []byte{0}},
		{"prefix only", []byte{2}},
		{"uncompressed, wrong prefix", with(valid, func(b []byte) { b[0] = 2 })},
		{"uncompressed, hybrid prefix 6", with(valid, func(b []byte) { b[0] = 6 })},
		{"compressed, prefix 4", with(compressed, func(b []byte) { b[0] = 4 })},
		{"compressed, prefix 0", with(compressed, func(b []byte) { b[0] = 0 })},
		{"uncompressed, truncated", valid[:64]},
		{"uncompressed, extended", append(bytes.Clone(valid), 0)},
		{"compressed, truncated", compressed[:32]},
		{"uncompressed, y flipped", with(valid, func(b []byte) { b[64] ^= 1 })},
		{"uncompressed, x flipped", with(valid, func(b []byte) { b[1] ^= 0x80 })},
		{"uncompressed, zero", append([]byte{4}, make([]byte, 64)...)},
		{"compressed, x = p", append([]byte{2}, bytes32(bigP)[:]...)},
		{"compressed, x = 2^256 - 1", append([]byte{3}, bytes.Repeat([]byte{0xff}, 32)...)},
		{"compressed, x off the curve", offCurve},
		{"uncompressed, y + p", append(append([]byte{4}, valid[1:33]...), plusP(y)...)},
	}
	// x + p only fits in 32 bytes when x < 2^256 - p; use a point whose x
	// is that small if the key above does not have one.
	if x.Cmp(new(big.Int).Sub(bigR, bigP)) < 0 {
		tests = append(tests, struct {
			name string
			b    []byte
		}{"uncompressed, x + p", append(append([]byte{4}, plusP(x)...), valid[33:]...)})
	}
	for _, tt := range tests {
		if p, err := NewPoint().SetBytes(tt.b); err == nil {
			t.Errorf("%s: SetBytes(%x) accepted: %v", tt.name, tt.b, toRef(p))
		}
		if _, err := ecdh.P256().NewPublicKey(tt.b); err == nil && len(tt.b) == UncompressedSize {
			t.Errorf("%s: crypto/ecdh accepts %x: the test is wrong", tt.name, tt.b)
		}
	}
}

// TestSmallX decodes points with x below 2^256 - p, the only ones for which
// x + p also fits in 32 bytes, and makes sure x + p is refused.
func TestSmallX(t *testing.T) {
	limit := new(big.Int).Sub(bigR, bigP)
	found := 0
	for v := int64(0); found < 3; v++ {
		xv := big.NewInt(v)
		rhs := new(big.Int).Exp(xv, big.NewInt(3), bigP)
		rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), xv)).Add(rhs, bigB).Mod(rhs, bigP)
		yv := new(big.Int).ModSqrt(rhs, bigP)
		if yv == nil || xv.Cmp(limit) >= 0 {
			continue
		}
		found++
		for _, prefix := range []byte{2, 3} {
			c := append([]byte{prefix}, bytes32(xv)[:]...)
			p, err := NewPoint().SetBytes(c)
			if err != nil {
				t.Fatalf("x = %d: %v", v, err)
			}
			got := toRef(p)
			if got.x.Cmp(xv) != 0 || got.y.Bit(0) != uint(prefix&1) || !refOnCurve(got.x, got.y) {
				t.Fatalf("x = %d, prefix %d: decoded %v", v, prefix, got)
			}
			c = append([]byte{prefix}, bytes32(new(big.Int).Add(xv, bigP))[:]...)
			if _, err := NewPoint().SetBytes(c); err == nil {
				t.Fatalf("x = %d + p accepted", v)
			}
			u := mustBytes(t, p)
			if _, err := ecdh.P256().NewPublicKey(u); err != nil {
				t.Fatalf("crypto/ecdh refuses %x: %v", u, err)
			}
		}
	}
}

// TestInfinityHasNoEncoding makes sure the identity cannot leave the
// package as coordinates.
func TestInfinityHasNoEncoding(t *testing.T) {
	o := NewPoint()
	if _, err := o.Bytes(); err == nil {
		t.Error("Bytes of the identity succeeded")
	}
	if _, err := o.BytesX(); err == nil {
		t.Error("BytesX of the identity succeeded")
	}
	if !o.Equal(NewPoint().Add(Generator(), NewPoint().Negate(Generator()))) {
		t.Error("G - G is not the identity")
	}
}

// TestRecode checks the wNAF digits: their sum is the scalar, each is odd
// or zero and below 2^(w-1) in magnitude, and no two nonzero digits are
// closer than w.
func TestRecode(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	scalars := []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(bigR, big.NewInt(1)), bigN}
	for range 300 {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		scalars = append(scalars, new(big.Int).SetBytes(b[:]))
	}
	for _, k := range scalars {
		for w := uint(2); w <= 8; w++ {
			var d wnaf
			d.recode(bytes32(k), w)
			sum, last := new(big.Int), -1
			for i := len(d) - 1; i >= 0; i-- {
				sum.Lsh(sum, 1).Add(sum, big.NewInt(int64(d[i])))
			}
			for i, v := range d {
				if v == 0 {
					continue
				}
				if m := int(v); m%2 == 0 || m >= 1<<(w-1) || m <= -(1<<(w-1)) {
					t.Fatalf("k = %x, w = %d: digit %d is %d", k, w, i, v)
				}
				if last >= 0 && i-last < int(w) {
					t.Fatalf("k = %x, w = %d: nonzero digits at %d and %d", k, w, last, i)
				}
				last = i
			}
			if sum.Cmp(k) != 0 {
				t.Fatalf("k = %x, w = %d: digits sum to %x", k, w, sum)
			}
		}
	}
}
