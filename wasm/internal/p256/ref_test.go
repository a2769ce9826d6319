package p256

import (
	"math/big"
)

// A reference model of P-256 on math/big, in affine coordinates, written
// from the curve's definition and nothing else: slow and obviously
// correct, it is what field and point arithmetic are checked against where
// crypto/ecdh and crypto/ecdsa expose nothing comparable.

var (
	bigP = mustBig("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")
	bigN = mustBig("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
	bigB = mustBig("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b")
	bigR = new(big.Int).Lsh(big.NewInt(1), 256)
)

func mustBig(hex string) *big.Int {
	v, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		panic("bad hex " + hex)
	}
	return v
}

// refPoint is an affine point; inf marks the identity.
type refPoint struct {
	x, y *big.Int
	inf  bool
}

func modP(v *big.Int) *big.Int { return v.Mod(v, bigP) }

// refOnCurve reports whether y² = x³ - 3x + b.
func refOnCurve(x, y *big.Int) bool {
	lhs := modP(new(big.Int).Mul(y, y))
	rhs := new(big.Int).Exp(x, big.NewInt(3), bigP)
	rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), x))
	rhs.Add(rhs, bigB)
	return lhs.Cmp(modP(rhs)) == 0
}

// refAdd is the chord-and-tangent law with every special case spelled out.
func refAdd(a, b refPoint) refPoint {
	switch {
	case a.inf:
		return b
	case b.inf:
		return a
	}
	var lambda *big.Int
	if a.x.Cmp(b.x) == 0 {
		if modP(new(big.Int).Add(a.y, b.y)).Sign() == 0 {
			return refPoint{inf: true} // b = -a, or a = b of order 2
		}
		// Tangent: (3x² - 3) / 2y.
		num := new(big.Int).Mul(a.x, a.x)
		num.Mul(num, big.NewInt(3))
		num.Sub(num, big.NewInt(3))
		den := new(big.Int).Lsh(a.y, 1)
		lambda = num.Mul(num, den.ModInverse(modP(den), bigP))
	} else {
		num := new(big.Int).Sub(b.y, a.y)
		den := modP(new(big.Int).Sub(b.x, a.x))
		lambda = num.Mul(num, den.ModInverse(den, bigP))
	}
	lambda = modP(lambda)
	x := new(big.Int).Mul(lambda, lambda)
	x.Sub(x, a.x)
	x.Sub(x, b.x)
	modP(x)
	y := new(big.Int).Sub(a.x, x)
	y.Mul(y, lambda)
	y.Sub(y, a.y)
	return refPoint{x: x, y: modP(y)}
}

func refNeg(a refPoint) refPoint {
	if a.inf {
		return a
	}
	return refPoint{x: a.x, y: modP(new(big.Int).Neg(a.y))}
}

// refMul is k·a by double-and-add, for any k >= 0.
func refMul(k *big.Int, a refPoint) refPoint {
	r := refPoint{inf: true}
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = refAdd(r, r)
		if k.Bit(i) == 1 {
			r = refAdd(r, a)
		}
	}
	return r
}

func refGenerator() refPoint {
	return refPoint{
		x: mustBig("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
		y: mustBig("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
	}
}

// toRef converts p with the package's own Bytes, which the tests check
// separately against crypto/ecdh.
func toRef(p *Point) refPoint {
	b, err := p.Bytes()
	if err != nil {
		return refPoint{inf: true}
	}
	return refPoint{x: new(big.Int).SetBytes(b[1:33]), y: new(big.Int).SetBytes(b[33:])}
}

// fromRef builds a Point straight from coordinates, bypassing SetBytes.
func fromRef(a refPoint) *Point {
	if a.inf {
		return NewPoint()
	}
	var p Point
	p.x = elementFromBig(a.x)
	p.y = elementFromBig(a.y)
	p.z = elementOne
	return &p
}

func refEqual(a, b refPoint) bool {
	if a.inf || b.inf {
		return a.inf == b.inf
	}
	return a.x.Cmp(b.x) == 0 && a.y.Cmp(b.y) == 0
}

// elementFromBig returns v mod p in Montgomery form, computed with math/big.
func elementFromBig(v *big.Int) element {
	m := new(big.Int).Mod(v, bigP)
	m.Mul(m, bigR)
	m.Mod(m, bigP)
	return limbsOf(m)
}

// bigFromElement undoes elementFromBig, with math/big.
func bigFromElement(e *element) *big.Int {
	v := bigOfLimbs((*[4]uint64)(e))
	rInv := new(big.Int).ModInverse(bigR, bigP)
	v.Mul(v, rInv)
	return v.Mod(v, bigP)
}

func limbsOf(v *big.Int) element {
	var e element
	t := new(big.Int).Set(v)
	mask := new(big.Int).SetUint64(^uint64(0))
	for i := range e {
		e[i] = new(big.Int).And(t, mask).Uint64()
		t.Rsh(t, 64)
	}
	return e
}

func bigOfLimbs(l *[4]uint64) *big.Int {
	v := new(big.Int)
	for i := 3; i >= 0; i-- {
		v.Lsh(v, 64)
		v.Or(v, new(big.Int).SetUint64(l[i]))
	}
	return v
}

func bytes32(v *big.Int) *[32]byte {
	var b [32]byte
	new(big.Int).Mod(v, bigR).FillBytes(b[:])
	return &b
}
