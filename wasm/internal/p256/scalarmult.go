package p256

import "sync"

// Window widths of the width-w non-adjacent forms (wNAF) of the two
// scalars of DoubleScalarMultVarTime. A width-w form has one nonzero digit
// in about w+1 on average and needs a table of 2^(w-2) odd multiples of
// its point. The generator's table is built once per process and kept, so
// it can be wider than the table of q, which every call builds.
const (
	generatorWindow = 7 // 32 points, about 3 KB, built at first use
	pointWindow     = 5 // 8 points, 7 additions per call
)

// generatorBytes is the uncompressed encoding of P-256's base point G
// (SEC 2, section 2.4.2; FIPS 186-4, D.1.2.3).
var generatorBytes = [UncompressedSize]byte{
	0x04,
	0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
	0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
	0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
	0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
}

// Generator returns the base point G.
func Generator() *Point {
	p, err := new(Point).SetBytes(generatorBytes[:])
	if err != nil {
		panic("p256: the generator does not decode: " + err.Error())
	}
	return p
}

var (
	generatorTableOnce sync.Once
	generatorTable     [1 << (generatorWindow - 2)]Point
)

// generatorMultiples returns G, 3G, 5G … 63G, computed at first use rather
// than stored in the binary: a precomputed table would cost amesh.wasm
// kilobytes that gzip cannot shrink, and 31 additions once per process
// cost less than a verification.
func generatorMultiples() *[1 << (generatorWindow - 2)]Point {
	generatorTableOnce.Do(func() { oddMultiples(generatorTable[:], Generator()) })
	return &generatorTable
}

// oddMultiples fills table with q, 3q, 5q …
func oddMultiples(table []Point, q *Point) {
	var twice Point
	twice.Double(q)
	table[0] = *q
	for i := 1; i < len(table); i++ {
		table[i].Add(&table[i-1], &twice)
	}
}

// DoubleScalarMultVarTime sets p = u1·G + u2·q and returns p, where G is the
// base point and u1 and u2 are 256-bit big-endian numbers (not necessarily
// reduced mod n); p may alias q.
//
// It is Straus's method ("Shamir's trick"): one chain of doublings shared
// by both products, adding a multiple of G or q wherever the wNAF digit of
// u1 or u2 is not zero. Its running time and memory accesses depend on the
// scalars and the points, so it must only ever see public values, as in
// ECDSA signature verification. Never use it with a private key or a
// signing nonce.
func (p *Point) DoubleScalarMultVarTime(u1, u2 *[32]byte, q *Point) *Point {
	var d1, d2 wnaf
	d1.recode(u1, generatorWindow)
	d2.recode(u2, pointWindow)
	g := generatorMultiples()
	var qTable [1 << (pointWindow - 2)]Point
	oddMultiples(qTable[:], q)

	top := len(d1) - 1
	for top >= 0 && d1[top] == 0 && d2[top] == 0 {
		top--
	}
	acc := NewPoint()
	for i := top; i >= 0; i-- {
		acc.Double(acc)
		acc.addMultiple(g[:], d1[i])
		acc.addMultiple(qTable[:], d2[i])
	}
	*p = *acc
	return p
}

// addMultiple adds digit·P to p, where odd holds P, 3P, 5P … and digit is
// a wNAF digit: zero, or odd and within the table, negative digits taking
// the negated entry.
func (p *Point) addMultiple(odd []Point, digit int8) {
	switch {
	case digit > 0:
		p.Add(p, &odd[digit/2])
	case digit < 0:
		var neg Point
		p.Add(p, neg.Negate(&odd[-digit/2]))
	}
}

// wnaf is the width-w non-adjacent form of a 256-bit number k: digits
// d[i], each zero or odd with |d[i]| < 2^(w-1), such that k = Σ d[i]·2^i
// and at most one digit in any w consecutive ones is not zero. The carry
// of a negative digit can make it one digit longer than k.
type wnaf [257]int8

// recode sets d to the width-w NAF of the big-endian k, for 2 <= w <= 8.
//
// It scans k from the least significant bit, with a pending carry of 0 or
// 1 from the digits already taken. Where bit i plus the carry is even the
// digit is 0 and the carry stays. Where it is odd, the w bits from i up
// plus the carry form an odd window v in [1, 2^w]: the digit is v, or
// v - 2^w with a carry of 1 when v is above 2^(w-1), and the next w-1
// digits are 0.
func (d *wnaf) recode(k *[32]byte, w uint) {
	// Little-endian limbs, with a fifth, zero, for windows that run past
	// bit 255.
	l := limbsBE(k)
	x := [5]uint64{l[0], l[1], l[2], l[3]}
	window := func(i uint) uint64 {
		v := x[i/64] >> (i % 64)
		if i%64+w > 64 {
			v |= x[i/64+1] << (64 - i%64)
		}
		return v & (1<<w - 1)
	}
	*d = wnaf{}
	var carry uint64
	for i := uint(0); i < uint(len(d)); {
		if x[i/64]>>(i%64)&1 == carry {
			i++
			continue
		}
		v := window(i) + carry
		if v > 1<<(w-1) {
			d[i] = int8(int64(v) - 1<<w)
			carry = 1
		} else {
			d[i] = int8(v)
			carry = 0
		}
		i += w
	}
}
