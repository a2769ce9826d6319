package p256

import (
	"errors"
	"math/bits"
)

// Point is a point of the P-256 group, y² = x³ - 3x + b over GF(p), or the
// point at infinity (the identity). The zero value is the identity.
//
// Points are in Jacobian coordinates (X:Y:Z), x = X/Z² and y = Y/Z³, with
// Z = 0 for the identity. Jacobian doubling with a = -3 costs 4
// multiplications and 4 squarings, about a third of the complete
// projective formulas, and scalar multiplication is mostly doublings. The
// price is that addition has special cases (equal or opposite points, the
// identity), which Add detects and handles by branching: fine for public
// inputs, which are all this package is for.
type Point struct {
	x, y, z element
}

// Encoded lengths of a point: SEC 1 compressed (a 0x02 or 0x03 byte for
// the parity of y, then x) and uncompressed (0x04, x, y).
const (
	CompressedSize   = 33
	UncompressedSize = 65
)

// NewPoint returns the point at infinity.
func NewPoint() *Point {
	return &Point{x: elementOne, y: elementOne}
}

// errNotOnCurve and errEncoding are what SetBytes returns; the messages
// are generic on purpose, callers add their own context.
var (
	errEncoding   = errors.New("p256: invalid point encoding")
	errNotOnCurve = errors.New("p256: point is not on the curve")
)

// SetBytes sets p to the point with the SEC 1 encoding b, compressed (33
// bytes) or uncompressed (65 bytes), and returns p. It fails, leaving p
// unchanged, when b has another length or prefix, when a coordinate is not
// below p, and when the point is not on the curve. It never yields the
// point at infinity: its one-byte encoding is refused like any other
// length, because no public key may be the identity.
func (p *Point) SetBytes(b []byte) (*Point, error) {
	switch {
	case len(b) == CompressedSize && (b[0] == 2 || b[0] == 3):
		var x, y element
		if !x.setBytes((*[32]byte)(b[1:33])) {
			return nil, errNotOnCurve
		}
		rhs := curveRHS(&x)
		if !y.sqrt(&rhs) {
			return nil, errNotOnCurve
		}
		// y and p - y are the two roots; take the one whose parity the
		// prefix names. y is never 0 (P-256 has no point of order 2), so
		// the two differ in parity.
		if y.isOdd() != (b[0] == 3) {
			y.sub(&element{}, &y)
		}
		p.x, p.y, p.z = x, y, elementOne
		return p, nil
	case len(b) == UncompressedSize && b[0] == 4:
		var x, y element
		if !x.setBytes((*[32]byte)(b[1:33])) || !y.setBytes((*[32]byte)(b[33:65])) {
			return nil, errNotOnCurve
		}
		var lhs element
		lhs.square(&y)
		if rhs := curveRHS(&x); lhs != rhs {
			return nil, errNotOnCurve
		}
		p.x, p.y, p.z = x, y, elementOne
		return p, nil
	}
	return nil, errEncoding
}

// curveRHS returns x³ - 3x + b.
func curveRHS(x *element) element {
	var r, threeX element
	r.square(x)
	r.mul(&r, x)
	threeX.add(x, x)
	threeX.add(&threeX, x)
	r.sub(&r, &threeX)
	r.add(&r, &curveB)
	return r
}

// errInfinity is returned when the point at infinity, which has no affine
// coordinates, is asked for them.
var errInfinity = errors.New("p256: point at infinity")

// affine returns p's affine coordinates, out of Montgomery form, as
// big-endian bytes, or fails for the point at infinity.
func (p *Point) affine(x, y *[32]byte) error {
	if p.z.isZero() {
		return errInfinity
	}
	if p.z == elementOne {
		// Affine already (a decoded key): no inversion, which is an
		// exponentiation and most of the cost of decoding a key.
		p.x.bytes(x)
		p.y.bytes(y)
		return nil
	}
	var zInv, zInv2, t element
	zInv.invert(&p.z)
	zInv2.square(&zInv)
	t.mul(&p.x, &zInv2)
	t.bytes(x)
	t.mul(&p.y, &zInv2)
	t.mul(&t, &zInv)
	t.bytes(y)
	return nil
}

// Bytes returns the uncompressed SEC 1 encoding of p, or fails for the
// point at infinity.
func (p *Point) Bytes() ([UncompressedSize]byte, error) {
	var out [UncompressedSize]byte
	if err := p.affine((*[32]byte)(out[1:33]), (*[32]byte)(out[33:])); err != nil {
		return out, err
	}
	out[0] = 4
	return out, nil
}

// BytesX returns the affine x coordinate of p as 32 big-endian bytes, or
// fails for the point at infinity.
func (p *Point) BytesX() ([32]byte, error) {
	var x, y [32]byte
	err := p.affine(&x, &y)
	return x, err
}

// orderN is the group order n, and pMinusN is p - n, as plain 256-bit
// numbers (limbs least significant first).
var (
	orderN  = [4]uint64{0xf3b9cac2fc632551, 0xbce6faada7179e84, 0xffffffffffffffff, 0xffffffff00000000}
	pMinusN = [4]uint64{0x0c46353d039cdaae, 0x4319055358e8617b, 0x0000000000000000, 0x0000000000000000}
)

// XModNEquals reports whether p is not the point at infinity and its affine
// x coordinate, reduced mod the group order n, equals r (32 big-endian
// bytes), which must be below n. That is the final test of ECDSA
// verification (SEC 1, 4.1.4, step 7).
//
// It compares in projective form, r·Z² = X, which spares the field
// inversion BytesX needs. Because n < p < 2n, x mod n = r means x = r or
// x = r + n, and the second is possible only when r < p - n.
func (p *Point) XModNEquals(r *[32]byte) bool {
	if p.z.isZero() {
		return false
	}
	var rr element
	if !rr.setBytes(r) {
		return false // r >= p > n: not a valid r
	}
	var z2, t element
	z2.square(&p.z)
	t.mul(&rr, &z2)
	if t == p.x {
		return true
	}
	// r < p - n, as plain numbers? Then try r + n, which is below p.
	plain := limbsBE(r)
	var b uint64
	_, b = bits.Sub64(plain[0], pMinusN[0], 0)
	_, b = bits.Sub64(plain[1], pMinusN[1], b)
	_, b = bits.Sub64(plain[2], pMinusN[2], b)
	_, b = bits.Sub64(plain[3], pMinusN[3], b)
	if b == 0 {
		return false
	}
	var sum [4]uint64
	var c uint64
	sum[0], c = bits.Add64(plain[0], orderN[0], 0)
	sum[1], c = bits.Add64(plain[1], orderN[1], c)
	sum[2], c = bits.Add64(plain[2], orderN[2], c)
	sum[3], _ = bits.Add64(plain[3], orderN[3], c)
	rr.mul((*element)(&sum), &rSquared)
	t.mul(&rr, &z2)
	return t == p.x
}

// IsInfinity reports whether p is the point at infinity.
func (p *Point) IsInfinity() bool { return p.z.isZero() }

// Equal reports whether p and q are the same point: both the identity, or
// X1·Z2² = X2·Z1² and Y1·Z2³ = Y2·Z1³.
func (p *Point) Equal(q *Point) bool {
	if p.z.isZero() || q.z.isZero() {
		return p.z.isZero() == q.z.isZero()
	}
	var pz2, qz2, a, b element
	pz2.square(&p.z)
	qz2.square(&q.z)
	a.mul(&p.x, &qz2)
	b.mul(&q.x, &pz2)
	if a != b {
		return false
	}
	a.mul(&p.y, &qz2)
	a.mul(&a, &q.z)
	b.mul(&q.y, &pz2)
	b.mul(&b, &p.z)
	return a == b
}

// Negate sets p = -q, (X : -Y : Z), and returns p.
func (p *Point) Negate(q *Point) *Point {
	p.x = q.x
	p.y.sub(&element{}, &q.y)
	p.z = q.z
	return p
}

// Double sets p = 2q and returns p; p may alias q.
//
// With δ = Z², γ = Y², β = X·γ and α = 3·(X - δ)·(X + δ), which is
// 3x² + a scaled by Z⁴ for a = -3, the tangent rule becomes
// X3 = α² - 8β, Y3 = α·(4β - X3) - 8γ², Z3 = 2·Y·Z: 4 multiplications and
// 4 squarings. The identity (Z = 0) doubles to Z3 = 0, the identity; no
// point of P-256 has Y = 0.
func (p *Point) Double(q *Point) *Point {
	var delta, gamma, beta, alpha, t, x3, y3, z3 element
	delta.square(&q.z)
	gamma.square(&q.y)
	beta.mul(&q.x, &gamma)
	alpha.sub(&q.x, &delta)
	t.add(&q.x, &delta)
	alpha.mul(&alpha, &t)
	t.add(&alpha, &alpha)
	alpha.add(&alpha, &t)
	// beta becomes 4β, t becomes 8β.
	beta.add(&beta, &beta)
	beta.add(&beta, &beta)
	t.add(&beta, &beta)
	x3.square(&alpha)
	x3.sub(&x3, &t)
	z3.mul(&q.y, &q.z)
	z3.add(&z3, &z3)
	// gamma becomes 8γ².
	gamma.square(&gamma)
	gamma.add(&gamma, &gamma)
	gamma.add(&gamma, &gamma)
	gamma.add(&gamma, &gamma)
	y3.sub(&beta, &x3)
	y3.mul(&y3, &alpha)
	y3.sub(&y3, &gamma)
	p.x, p.y, p.z = x3, y3, z3
	return p
}

// Add sets p = q + r and returns p; p may alias q or r.
//
// With U1 = X1·Z2², U2 = X2·Z1², S1 = Y1·Z2³, S2 = Y2·Z1³, H = U2 - U1 and
// R = S2 - S1, the chord rule becomes X3 = R² - H³ - 2·U1·H²,
// Y3 = R·(U1·H² - X3) - S1·H³, Z3 = Z1·Z2·H: 12 multiplications and 4
// squarings, 4 fewer when r has Z = 1 (a decoded point). H = 0 means equal
// x coordinates: then the points are equal (R = 0, double instead) or
// opposite (the sum is the identity). Additions with the identity return
// the other point.
func (p *Point) Add(q, r *Point) *Point {
	switch {
	case q.z.isZero():
		*p = *r
		return p
	case r.z.isZero():
		*p = *q
		return p
	}
	var z1z1, u1, u2, s1, s2, h, rr element
	z1z1.square(&q.z)
	if r.z == elementOne {
		u1, s1 = q.x, q.y
	} else {
		var z2z2 element
		z2z2.square(&r.z)
		u1.mul(&q.x, &z2z2)
		s1.mul(&q.y, &r.z)
		s1.mul(&s1, &z2z2)
	}
	u2.mul(&r.x, &z1z1)
	s2.mul(&r.y, &q.z)
	s2.mul(&s2, &z1z1)
	h.sub(&u2, &u1)
	rr.sub(&s2, &s1)
	if h.isZero() {
		if rr.isZero() {
			return p.Double(q)
		}
		*p = Point{x: elementOne, y: elementOne}
		return p
	}
	var hh, hhh, v, x3, y3, z3 element
	hh.square(&h)
	hhh.mul(&h, &hh)
	v.mul(&u1, &hh)
	x3.square(&rr)
	x3.sub(&x3, &hhh)
	x3.sub(&x3, &v)
	x3.sub(&x3, &v)
	y3.sub(&v, &x3)
	y3.mul(&y3, &rr)
	s1.mul(&s1, &hhh)
	y3.sub(&y3, &s1)
	z3.mul(&q.z, &h)
	if r.z != elementOne {
		z3.mul(&z3, &r.z)
	}
	p.x, p.y, p.z = x3, y3, z3
	return p
}

// limbsBE reads 32 big-endian bytes as four little-endian 64-bit limbs.
func limbsBE(b *[32]byte) [4]uint64 {
	var x [4]uint64
	for i := range x {
		o := 24 - 8*i
		x[i] = uint64(b[o])<<56 | uint64(b[o+1])<<48 | uint64(b[o+2])<<40 | uint64(b[o+3])<<32 |
			uint64(b[o+4])<<24 | uint64(b[o+5])<<16 | uint64(b[o+6])<<8 | uint64(b[o+7])
	}
	return x
}
