//go:build !wasm

package protocol_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdasn1 "encoding/asn1"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// p256Order is n: r and s of a signature lie in [1, n-1].
var p256Order = elliptic.P256().Params().N

func derForTest(r, s *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.BytesOrPanic()
}

func TestSignatureFromDER(t *testing.T) {
	n := new(big.Int).Set(p256Order)
	half := new(big.Int).Rsh(n, 1)
	one, two := big.NewInt(1), big.NewInt(2)
	nMinus1 := new(big.Int).Sub(n, one)
	nPlus1 := new(big.Int).Add(n, one)
	for _, tc := range []struct {
		name string
		der  []byte
		r, s *big.Int // the expected signature; nil r means an error
	}{
		{"small", derForTest(one, two), one, two},
		{"s = n/2 stays", derForTest(one, half), one, half},
		{"s = n/2 + 1 is negated", derForTest(one, new(big.Int).Add(half, one)), one, half},
		{"s = n - 1 is negated", derForTest(nMinus1, nMinus1), nMinus1, one},
		{"r = 0", derForTest(new(big.Int), one), nil, nil},
		{"s = 0", derForTest(one, new(big.Int)), nil, nil},
		{"r = n", derForTest(n, one), nil, nil},
		{"s = n", derForTest(one, n), nil, nil},
		// Negating n + 1 modulo 2^256 would give a small, in-range s.
		{"s = n + 1", derForTest(one, nPlus1), nil, nil},
		{"r = 2^256", derForTest(new(big.Int).Lsh(one, 256), one), nil, nil},
		{"negative r", derForTest(big.NewInt(-1), one), nil, nil},
		{"empty", nil, nil, nil},
		{"non-minimal integer", mustHex("3007020200010201 02"), nil, nil},
		{"non-minimal length", mustHex("30 8106 020101 020102"), nil, nil},
		{"indefinite length", mustHex("3080 020101 020102 0000"), nil, nil},
		{"SET instead of SEQUENCE", mustHex("3106 020101 020102"), nil, nil},
		{"trailing data", append(derForTest(one, two), 0), nil, nil},
		{"third integer", mustHex("3009 020101 020102 020103"), nil, nil},
		{"one integer", mustHex("3003 020101"), nil, nil},
		{"empty integer", mustHex("3005 0200 020102"), nil, nil},
		{"truncated", derForTest(one, two)[:7], nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := protocol.SignatureFromDER(tc.der)
			if tc.r == nil {
				if err == nil {
					t.Fatalf("accepted: %x", sig)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 64)
			tc.r.FillBytes(want[:32])
			tc.s.FillBytes(want[32:])
			if !bytes.Equal(sig, want) {
				t.Fatalf("got %x, want %x", sig, want)
			}
		})
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzSignatureFromDER checks the conversion against its definition: an
// accepted input is exactly the DER encoding of two integers in [1, n-1],
// and the result is those integers with s replaced by n - s when high.
func FuzzSignatureFromDER(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := ecdsa.SignASN1(rand.Reader, k, make([]byte, 32))
	f.Add(der)
	f.Add(derForTest(big.NewInt(1), new(big.Int).Sub(p256Order, big.NewInt(1))))
	f.Add(mustHex("3006 020101 020102"))
	f.Fuzz(func(t *testing.T, der []byte) {
		sig, err := protocol.SignatureFromDER(der)
		if err != nil {
			return
		}
		if err := protocol.CheckScalars(sig); err != nil {
			t.Fatalf("accepted %x as %x: %v", der, sig, err)
		}
		var seq cryptobyte.String
		r, s := new(big.Int), new(big.Int)
		in := cryptobyte.String(der)
		if !in.ReadASN1(&seq, asn1.SEQUENCE) || !seq.ReadASN1Integer(r) || !seq.ReadASN1Integer(s) {
			t.Fatalf("accepted %x, which is not two DER integers", der)
		}
		if !bytes.Equal(derForTest(r, s), der) {
			t.Fatalf("accepted %x, which is not canonical DER", der)
		}
		if r.Cmp(new(big.Int).SetBytes(sig[:32])) != 0 {
			t.Fatalf("r changed: %x -> %x", der, sig)
		}
		got := new(big.Int).SetBytes(sig[32:])
		if got.Cmp(s) != 0 && new(big.Int).Add(got, s).Cmp(p256Order) != 0 {
			t.Fatalf("s is neither kept nor negated: %x -> %x", der, sig)
		}
	})
}

// DERSignature writes what encoding/asn1 writes for the same r and s,
// including the leading zero of an integer whose top bit is set.
func TestDERSignatureMatchesASN1(t *testing.T) {
	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := k.SignDigest(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	topBit := append(make([]byte, 31), 1) // r = 1
	topBit = append(topBit, 0x80)         // s with its top bit set
	topBit = append(topBit, make([]byte, 30)...)
	topBit = append(topBit, 1)
	for _, raw := range [][]byte{topBit, signed, make([]byte, 64)} {
		der, err := protocol.DERSignature(raw)
		if err != nil {
			t.Fatal(err)
		}
		want, err := stdasn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(der, want) {
			t.Errorf("DER %x, want %x", der, want)
		}
	}
	if _, err := protocol.DERSignature(make([]byte, 63)); err == nil {
		t.Error("63-byte signature accepted")
	}
}
