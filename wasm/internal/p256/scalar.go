package p256

import "math/bits"

// Arithmetic modulo the P-256 group order n, for ECDSA verification
// (VerifyECDSA) and low-S normalisation (OrderMinus), without math/big:
// math/big imports fmt, and with it reflect, which would add a few hundred
// KB to amesh.wasm.
// Every input is public (signatures, digests, keys), so none of this needs
// to run in constant time.

// scalar is a 256-bit integer as four 64-bit limbs, least significant
// first. Depending on the function it holds a plain value below 2^256, a
// residue below n, or a residue in Montgomery form (x·2^256 mod n).
type scalar [4]uint64

// scalarN is the group order n.
var scalarN = scalar(orderN)

const (
	// scalarNInv is -n⁻¹ mod 2^64, the Montgomery reduction constant.
	scalarNInv = 0xccd1c8aaee00bc4f
)

// scalarRR is 2^512 mod n: montMul by it takes a residue into Montgomery form.
var scalarRR = scalar{0x83244c95be79eea2, 0x4699799c49bd6fa6, 0x2845b2392b6bec59, 0x66e12d94f3d95620}

// bytes writes x as a 32-byte big-endian number.
func (x *scalar) bytes() [32]byte {
	var b [32]byte
	for i, v := range x {
		o := 24 - 8*i
		for j := range 8 {
			b[o+j] = byte(v >> (56 - 8*j))
		}
	}
	return b
}

func (x *scalar) isZero() bool { return x[0]|x[1]|x[2]|x[3] == 0 }

// sub returns x - y and the borrow out (1 when y > x).
func (x *scalar) sub(y *scalar) (scalar, uint64) {
	var z scalar
	var b uint64
	z[0], b = bits.Sub64(x[0], y[0], 0)
	z[1], b = bits.Sub64(x[1], y[1], b)
	z[2], b = bits.Sub64(x[2], y[2], b)
	z[3], b = bits.Sub64(x[3], y[3], b)
	return z, b
}

// add returns x + y and the carry out.
func (x *scalar) add(y *scalar) (scalar, uint64) {
	var z scalar
	var c uint64
	z[0], c = bits.Add64(x[0], y[0], 0)
	z[1], c = bits.Add64(x[1], y[1], c)
	z[2], c = bits.Add64(x[2], y[2], c)
	z[3], c = bits.Add64(x[3], y[3], c)
	return z, c
}

// lessThanN reports whether x < n.
func (x *scalar) lessThanN() bool {
	_, b := x.sub(&scalarN)
	return b == 1
}

// reduceOnce returns x mod n for x < 2n, which holds for any 256-bit x
// (n > 2^255).
func (x *scalar) reduceOnce() scalar {
	if d, b := x.sub(&scalarN); b == 0 {
		return d
	}
	return *x
}

// montMul returns x·y·2^-256 mod n for x, y < n: Montgomery multiplication,
// coarsely integrated operand scanning (CIOS).
func montMul(x, y *scalar) scalar {
	var t [6]uint64
	for i := range 4 {
		// t += x·y[i]
		var c uint64
		for j := range 4 {
			hi, lo := bits.Mul64(x[j], y[i])
			var k uint64
			lo, k = bits.Add64(lo, t[j], 0)
			hi += k
			lo, k = bits.Add64(lo, c, 0)
			hi += k
			t[j], c = lo, hi
		}
		t[4], c = bits.Add64(t[4], c, 0)
		t[5] = c
		// t = (t + m·n) / 2^64, with m chosen to make the low limb zero.
		m := t[0] * scalarNInv
		hi, lo := bits.Mul64(m, scalarN[0])
		_, k := bits.Add64(lo, t[0], 0)
		c = hi + k
		for j := 1; j < 4; j++ {
			hi, lo = bits.Mul64(m, scalarN[j])
			lo, k = bits.Add64(lo, t[j], 0)
			hi += k
			lo, k = bits.Add64(lo, c, 0)
			hi += k
			t[j-1], c = lo, hi
		}
		t[3], k = bits.Add64(t[4], c, 0)
		t[4] = t[5] + k
	}
	// t < 2n: one subtraction brings it below n.
	z := scalar{t[0], t[1], t[2], t[3]}
	if d, b := z.sub(&scalarN); t[4] != 0 || b == 0 {
		return d
	}
	return z
}

// mulMod returns x·y mod n for x, y < n.
func mulMod(x, y *scalar) scalar {
	t := montMul(x, y) // x·y/R
	return montMul(&t, &scalarRR)
}

// invMod returns x⁻¹ mod n for 0 < x < n, by the binary extended Euclidean
// algorithm (Menezes et al., Handbook of Applied Cryptography, 14.61,
// for an odd prime modulus), shifting out runs of zero bits at once. It
// runs in variable time. Any other x has no inverse and gives 0.
func invMod(x *scalar) scalar {
	if x.isZero() || !x.lessThanN() {
		return scalar{} // and the loop below would not end
	}
	u, v := *x, scalarN
	a, c := scalar{1}, scalar{} // invariants: a·x ≡ u, c·x ≡ v (mod n)
	one := scalar{1}
	for u != one && v != one {
		for u[0]&1 == 0 {
			k := uint(min(bits.TrailingZeros64(u[0]), 63))
			u.shiftRight(k, 0)
			a.divPow2Mod(k)
		}
		for v[0]&1 == 0 {
			k := uint(min(bits.TrailingZeros64(v[0]), 63))
			v.shiftRight(k, 0)
			c.divPow2Mod(k)
		}
		if d, b := u.sub(&v); b == 0 {
			u = d
			a = subMod(&a, &c)
		} else {
			v, _ = v.sub(&u)
			c = subMod(&c, &a)
		}
	}
	if u == one {
		return a
	}
	return c
}

// shiftRight shifts x right by k bits, 0 < k < 64, shifting in the low k
// bits of top as the new most significant bits.
func (x *scalar) shiftRight(k uint, top uint64) {
	x[0] = x[0]>>k | x[1]<<(64-k)
	x[1] = x[1]>>k | x[2]<<(64-k)
	x[2] = x[2]>>k | x[3]<<(64-k)
	x[3] = x[3]>>k | top<<(64-k)
}

// divPow2Mod sets x to x/2^k mod n for x < n and 0 < k < 64: it adds the
// multiple m·n (m < 2^k) of n that makes the low k bits zero, as a
// Montgomery reduction step does, and shifts them out. The sum is below
// 2^k·n, so the result is below n.
func (x *scalar) divPow2Mod(k uint) {
	m := x[0] * scalarNInv & (1<<k - 1)
	var t scalar
	var c, top uint64
	for j := range 4 {
		hi, lo := bits.Mul64(m, scalarN[j])
		var k1, k2 uint64
		lo, k1 = bits.Add64(lo, x[j], 0)
		lo, k2 = bits.Add64(lo, c, 0)
		t[j], c = lo, hi+k1+k2
	}
	top = c
	t.shiftRight(k, top)
	*x = t
}

// subMod returns x - y mod n for x, y < n.
func subMod(x, y *scalar) scalar {
	d, b := x.sub(y)
	if b == 1 {
		d, _ = d.add(&scalarN)
	}
	return d
}

// OrderMinus returns |n - s| for the 32-byte big-endian s: the other-S
// twin of a valid s, and for an s >= n (no valid signature either way)
// something that stays out of range.
func OrderMinus(s *[32]byte) [32]byte {
	x := scalar(limbsBE(s))
	d, borrow := scalarN.sub(&x)
	if borrow == 1 {
		d, _ = x.sub(&scalarN)
	}
	return d.bytes()
}

// VerifyECDSA is ECDSA verification (SEC 1, version 2.0, section 4.1.4) of
// the raw r||s signature sig over digest with the public key q. r and s
// must be in [1, n-1]; callers check that with the protocol's other rules
// (low-S), and it is checked again here because a wrong answer would be a
// forgery. Every input is public, so it runs in variable time.
func VerifyECDSA(q *Point, digest []byte, sig *[64]byte) bool {
	r := scalar(limbsBE((*[32]byte)(sig[:32])))
	s := scalar(limbsBE((*[32]byte)(sig[32:])))
	if r.isZero() || s.isZero() || !r.lessThanN() || !s.lessThanN() {
		return false
	}
	// e is the leftmost 256 bits of the digest, as crypto/ecdsa takes them
	// (the bit length of n is a whole number of bytes, so no shift is
	// needed), reduced mod n.
	var eb [32]byte
	if len(digest) > 32 {
		digest = digest[:32]
	}
	copy(eb[32-len(digest):], digest)
	e := scalar(limbsBE(&eb))
	e = e.reduceOnce()
	w := invMod(&s)
	u1, u2 := mulMod(&e, &w), mulMod(&r, &w)
	b1, b2 := u1.bytes(), u2.bytes()
	// XModNEquals compares x(u1·G + u2·Q) mod n with r without the field
	// inversion that converting the point to affine coordinates would
	// take; it is false for the point at infinity.
	return NewPoint().DoubleScalarMultVarTime(&b1, &b2, q).XModNEquals((*[32]byte)(sig[:32]))
}
