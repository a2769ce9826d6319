package p256

import (
	"math/big"
	"testing"
)

// Benchmarks of the operations verification is made of. They matter most
// under GOARCH=wasm, where the package is used:
//
//	GOOS=wasip1 GOARCH=wasm go test -c -o /tmp/p256.wasm ./wasm/internal/p256
//	go run github.com/tetratelabs/wazero/cmd/wazero run /tmp/p256.wasm -test.run '^$' -test.bench .

func BenchmarkField(b *testing.B) {
	x := elementFromBig(mustBig("1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef"))
	y := elementFromBig(bigB)
	b.Run("mul", func(b *testing.B) {
		for b.Loop() {
			x.mul(&x, &y)
		}
	})
	b.Run("square", func(b *testing.B) {
		for b.Loop() {
			x.square(&x)
		}
	})
	b.Run("add", func(b *testing.B) {
		for b.Loop() {
			x.add(&x, &y)
		}
	})
	b.Run("invert", func(b *testing.B) {
		for b.Loop() {
			x.invert(&x)
		}
	})
}

func BenchmarkPoint(b *testing.B) {
	p := scalarBaseMult(big.NewInt(12345))
	q := scalarBaseMult(big.NewInt(67890))
	b.Run("add", func(b *testing.B) {
		for b.Loop() {
			p.Add(p, q)
		}
	})
	b.Run("double", func(b *testing.B) {
		for b.Loop() {
			p.Double(p)
		}
	})
	enc, _ := q.Bytes()
	b.Run("decode uncompressed", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewPoint().SetBytes(enc[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	c := append([]byte{2 + enc[64]&1}, enc[1:33]...)
	b.Run("decode compressed", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewPoint().SetBytes(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	u1 := bytes32(mustBig("8f0a5c3e1d2b4a6978e5f4c3b2a1908f7e6d5c4b3a29180f0e1d2c3b4a596877"))
	u2 := bytes32(mustBig("c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbccddeeff01"))
	// Finished as verification finishes it, with XModNEquals rather than
	// the inversion BytesX takes.
	var r [32]byte
	b.Run("u1·G + u2·Q", func(b *testing.B) {
		for b.Loop() {
			if NewPoint().DoubleScalarMultVarTime(u1, u2, q).XModNEquals(&r) {
				b.Fatal("x mod n is 0")
			}
		}
	})
}
