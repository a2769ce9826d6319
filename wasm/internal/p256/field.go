package p256

import "math/bits"

// Arithmetic in GF(p), p = 2^256 - 2^224 + 2^192 + 2^96 - 1, the field
// of P-256's coordinates. None of it runs in constant time: see the
// package documentation.

// element is a field element in Montgomery form, x·R mod p with R = 2^256,
// as four 64-bit limbs, least significant first, always fully reduced
// (below p), so that equal elements have equal limbs.
type element [4]uint64

var (
	// fieldP is p.
	fieldP = [4]uint64{0xffffffffffffffff, 0x00000000ffffffff, 0x0000000000000000, 0xffffffff00000001}
	// elementOne is 1 in Montgomery form, R mod p.
	elementOne = element{0x0000000000000001, 0xffffffff00000000, 0xffffffffffffffff, 0x00000000fffffffe}
	// rSquared is R² mod p: Montgomery multiplication by it takes a plain
	// residue into Montgomery form.
	rSquared = element{0x0000000000000003, 0xfffffffbffffffff, 0xfffffffffffffffe, 0x00000004fffffffd}
	// curveB is the coefficient b of y² = x³ - 3x + b, in Montgomery form.
	curveB = element{0xd89cdf6229c4bddf, 0xacf005cd78843090, 0xe5a220abf7212ed6, 0xdc30061d04874834}
	// pMinus2 is the exponent of inversion (Fermat: x^(p-2) = x⁻¹).
	pMinus2 = [4]uint64{0xfffffffffffffffd, 0x00000000ffffffff, 0x0000000000000000, 0xffffffff00000001}
	// pPlus1Over4 is the exponent of the square root: p ≡ 3 (mod 4), so a
	// square a has the roots ±a^((p+1)/4).
	pPlus1Over4 = [4]uint64{0x0000000000000000, 0x0000000040000000, 0x4000000000000000, 0x3fffffffc0000000}
)

// TestConstants in field_test.go derives every constant above from p and b.

// mulAdd returns a·b + c + d as a 128-bit number (hi, lo), which cannot
// overflow: (2^64-1)² + 2(2^64-1) = 2^128 - 1.
func mulAdd(a, b, c, d uint64) (hi, lo uint64) {
	hi, lo = bits.Mul64(a, b)
	var carry uint64
	lo, carry = bits.Add64(lo, c, 0)
	hi += carry
	lo, carry = bits.Add64(lo, d, 0)
	hi += carry
	return hi, lo
}

// mul sets z = x·y·R⁻¹ mod p, the Montgomery product: Montgomery forms in,
// Montgomery form out. z may alias x or y.
//
// The 512-bit product is schoolbook, one row per limb of x, in local
// variables rather than an array, which reduce takes as arguments: under
// GOARCH=wasm, where this code runs, arrays in memory and extra function
// calls cost about as much as the arithmetic (mul took a third less time
// in wazero once its array and one call were gone).
func (z *element) mul(x, y *element) {
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	y0, y1, y2, y3 := y[0], y[1], y[2], y[3]
	var c, t0, t1, t2, t3, t4, t5, t6, t7 uint64
	c, t0 = mulAdd(x0, y0, 0, 0)
	c, t1 = mulAdd(x0, y1, 0, c)
	c, t2 = mulAdd(x0, y2, 0, c)
	t4, t3 = mulAdd(x0, y3, 0, c)

	c, t1 = mulAdd(x1, y0, t1, 0)
	c, t2 = mulAdd(x1, y1, t2, c)
	c, t3 = mulAdd(x1, y2, t3, c)
	t5, t4 = mulAdd(x1, y3, t4, c)

	c, t2 = mulAdd(x2, y0, t2, 0)
	c, t3 = mulAdd(x2, y1, t3, c)
	c, t4 = mulAdd(x2, y2, t4, c)
	t6, t5 = mulAdd(x2, y3, t5, c)

	c, t3 = mulAdd(x3, y0, t3, 0)
	c, t4 = mulAdd(x3, y1, t4, c)
	c, t5 = mulAdd(x3, y2, t5, c)
	t7, t6 = mulAdd(x3, y3, t6, c)

	z.reduce(t0, t1, t2, t3, t4, t5, t6, t7)
}

// square sets z = x²·R⁻¹ mod p. It computes each cross product x[i]·x[j]
// (i < j) once and doubles their sum, which saves 6 of mul's 16
// multiplications.
func (z *element) square(x *element) {
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	var c, t0, t1, t2, t3, t4, t5, t6, t7 uint64
	// Cross products.
	c, t1 = mulAdd(x0, x1, 0, 0)
	c, t2 = mulAdd(x0, x2, 0, c)
	t4, t3 = mulAdd(x0, x3, 0, c)
	c, t3 = mulAdd(x1, x2, t3, 0)
	t5, t4 = mulAdd(x1, x3, t4, c)
	t6, t5 = mulAdd(x2, x3, t5, 0)
	// Doubled: a shift left by one bit across t1..t6.
	t7 = t6 >> 63
	t6 = t6<<1 | t5>>63
	t5 = t5<<1 | t4>>63
	t4 = t4<<1 | t3>>63
	t3 = t3<<1 | t2>>63
	t2 = t2<<1 | t1>>63
	t1 <<= 1
	// Plus the squares on the diagonal.
	var hi, lo uint64
	hi, t0 = bits.Mul64(x0, x0)
	t1, c = bits.Add64(t1, hi, 0)
	hi, lo = bits.Mul64(x1, x1)
	t2, c = bits.Add64(t2, lo, c)
	t3, c = bits.Add64(t3, hi, c)
	hi, lo = bits.Mul64(x2, x2)
	t4, c = bits.Add64(t4, lo, c)
	t5, c = bits.Add64(t5, hi, c)
	hi, lo = bits.Mul64(x3, x3)
	t6, c = bits.Add64(t6, lo, c)
	t7, _ = bits.Add64(t7, hi, c)

	z.reduce(t0, t1, t2, t3, t4, t5, t6, t7)
}

// reduce sets z = t·R⁻¹ mod p for t = t0 + t1·2^64 + … + t7·2^448 < p·R
// (any product of two reduced elements), by word-by-word Montgomery
// reduction.
//
// Each round adds the multiple m·p of p that clears the lowest limb. As
// p ≡ -1 (mod 2^64), m is that limb itself, and p's special form makes
// m·p cheap: m·(2^96 - 1) cancels the lowest limb m and leaves m·2^96, two
// shifts, and only m·p[3] needs a multiplication (p[2] is zero). The four
// rounds are written out.
func (z *element) reduce(t0, t1, t2, t3, t4, t5, t6, t7 uint64) {
	// top carries the bit that overflows limb i+4 in round i; it belongs
	// in limb i+5, which round i+1 writes. hi + top cannot overflow: hi is
	// below p[3] < 2^64 - 1.
	var c, top, hi, lo uint64
	const p3 = 0xffffffff00000001

	t1, c = bits.Add64(t1, t0<<32, 0)
	t2, c = bits.Add64(t2, t0>>32, c)
	hi, lo = bits.Mul64(t0, p3)
	t3, c = bits.Add64(t3, lo, c)
	t4, top = bits.Add64(t4, hi, c)

	t2, c = bits.Add64(t2, t1<<32, 0)
	t3, c = bits.Add64(t3, t1>>32, c)
	hi, lo = bits.Mul64(t1, p3)
	t4, c = bits.Add64(t4, lo, c)
	t5, top = bits.Add64(t5, hi+top, c)

	t3, c = bits.Add64(t3, t2<<32, 0)
	t4, c = bits.Add64(t4, t2>>32, c)
	hi, lo = bits.Mul64(t2, p3)
	t5, c = bits.Add64(t5, lo, c)
	t6, top = bits.Add64(t6, hi+top, c)

	t4, c = bits.Add64(t4, t3<<32, 0)
	t5, c = bits.Add64(t5, t3>>32, c)
	hi, lo = bits.Mul64(t3, p3)
	t6, c = bits.Add64(t6, lo, c)
	t7, top = bits.Add64(t7, hi+top, c)

	// The result, t4..t7 + top·2^256, is below 2p: one subtraction at
	// most makes it canonical, and none is needed when the top limb alone
	// shows it below p (see add).
	if top == 0 && t7 < p3 {
		*z = element{t4, t5, t6, t7}
		return
	}
	z.reduceOnce(&element{t4, t5, t6, t7}, top)
}

// reduceOnce sets z = x + carry·2^256 mod p, for a value below 2p.
func (z *element) reduceOnce(x *element, carry uint64) {
	var d element
	var b uint64
	d[0], b = bits.Sub64(x[0], fieldP[0], 0)
	d[1], b = bits.Sub64(x[1], fieldP[1], b)
	d[2], b = bits.Sub64(x[2], fieldP[2], b)
	d[3], b = bits.Sub64(x[3], fieldP[3], b)
	// x - p is the answer unless it borrowed from a number that had no
	// carry bit to lend, that is unless x + carry·2^256 < p.
	if carry == 1 || b == 0 {
		*z = d
	} else {
		*z = *x
	}
}

// add sets z = x + y mod p.
func (z *element) add(x, y *element) {
	s0, c := bits.Add64(x[0], y[0], 0)
	s1, c := bits.Add64(x[1], y[1], c)
	s2, c := bits.Add64(x[2], y[2], c)
	s3, c := bits.Add64(x[3], y[3], c)
	if c == 0 && s3 < fieldP[3] {
		// Below p without a look at the lower limbs: s3 < p[3] means
		// s < p[3]·2^192 <= p. This is the answer nearly always.
		*z = element{s0, s1, s2, s3}
		return
	}
	z.reduceOnce(&element{s0, s1, s2, s3}, c)
}

// sub sets z = x - y mod p.
func (z *element) sub(x, y *element) {
	d0, b := bits.Sub64(x[0], y[0], 0)
	d1, b := bits.Sub64(x[1], y[1], b)
	d2, b := bits.Sub64(x[2], y[2], b)
	d3, b := bits.Sub64(x[3], y[3], b)
	if b != 0 {
		// x - y + 2^256 went negative: adding p brings it into [0, p),
		// and the carry out cancels the 2^256.
		var c uint64
		d0, c = bits.Add64(d0, fieldP[0], 0)
		d1, c = bits.Add64(d1, fieldP[1], c)
		d2, c = bits.Add64(d2, fieldP[2], c)
		d3, _ = bits.Add64(d3, fieldP[3], c)
	}
	*z = element{d0, d1, d2, d3}
}

// isZero reports whether x = 0.
func (x *element) isZero() bool { return x[0]|x[1]|x[2]|x[3] == 0 }

// pow sets z = x^e for a plain 256-bit exponent e, by left-to-right
// square-and-multiply. The exponents used are public constants.
func (z *element) pow(x *element, e *[4]uint64) {
	r := elementOne
	for i := 255; i >= 0; i-- {
		r.square(&r)
		if e[i/64]>>(i%64)&1 == 1 {
			r.mul(&r, x)
		}
	}
	*z = r
}

// invert sets z = x⁻¹, or 0 when x = 0.
func (z *element) invert(x *element) { z.pow(x, &pMinus2) }

// sqrt sets z to a square root of x and reports whether x is a square;
// when it is not, z is unchanged.
func (z *element) sqrt(x *element) bool {
	var r, check element
	r.pow(x, &pPlus1Over4)
	check.square(&r)
	if check != *x {
		return false
	}
	*z = r
	return true
}

// setBytes sets z to the big-endian number b and reports whether it is
// below p; when it is not, z is unchanged.
func (z *element) setBytes(b *[32]byte) bool {
	x := element(limbsBE(b))
	var b0 uint64
	_, b0 = bits.Sub64(x[0], fieldP[0], 0)
	_, b0 = bits.Sub64(x[1], fieldP[1], b0)
	_, b0 = bits.Sub64(x[2], fieldP[2], b0)
	_, b0 = bits.Sub64(x[3], fieldP[3], b0)
	if b0 == 0 {
		return false // x >= p
	}
	z.mul(&x, &rSquared)
	return true
}

// bytes writes x, out of Montgomery form, as a 32-byte big-endian number.
func (x *element) bytes(out *[32]byte) {
	var v element
	v.reduce(x[0], x[1], x[2], x[3], 0, 0, 0, 0)
	for i, w := range v {
		o := 24 - 8*i
		for j := range 8 {
			out[o+j] = byte(w >> (56 - 8*j))
		}
	}
}

// isOdd reports whether x, out of Montgomery form, is odd.
func (x *element) isOdd() bool {
	var v element
	v.reduce(x[0], x[1], x[2], x[3], 0, 0, 0, 0)
	return v[0]&1 == 1
}
