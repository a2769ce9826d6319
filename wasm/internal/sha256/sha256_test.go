package sha256

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// The tests hold the portable code (sum) to crypto/sha256 natively, whatever
// the build tags; Sum256 is whichever of the two the build selected.

// TestKnownAnswers checks the examples NIST publishes for SHA-256, plus the
// empty message.
func TestKnownAnswers(t *testing.T) {
	tests := []struct {
		name, msg, want string
	}{
		{"empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"one block", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"two blocks, 448 bits",
			"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
			"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
		{"two blocks, 896 bits",
			"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
			"cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
		{"a million a", strings.Repeat("a", 1_000_000),
			"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for impl, f := range implementations {
				got := f([]byte(tt.msg))
				if h := hex.EncodeToString(got[:]); h != tt.want {
					t.Errorf("%s: got %s, want %s", impl, h, tt.want)
				}
			}
		})
	}
}

// implementations are the functions under test; crypto/sha256 is the
// reference they are compared with.
var implementations = map[string]func([]byte) [Size]byte{
	"portable": sum,
	"Sum256":   Sum256,
}

// TestPaddingBoundaries covers the lengths where the padding changes
// shape: 55 bytes is the longest message that fits its padding into one
// block, 56 to 63 need a second one, 64 fills a block exactly, and the
// same again one block later. Every length up to three blocks is checked
// as well.
func TestPaddingBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name string
		n    int
	}{
		{"empty", 0}, {"one byte", 1}, {"last with one-block padding", 55},
		{"first with two-block padding", 56}, {"one block less one", 63},
		{"one block", 64}, {"one block plus one", 65},
		{"second block, last one-block padding", 119},
		{"second block, first two-block padding", 120},
		{"two blocks less one", 127}, {"two blocks", 128},
		{"one MiB", 1 << 20}, {"one MiB less one", 1<<20 - 1},
	}
	for n := range 3*BlockSize + 1 {
		tests = append(tests, struct {
			name string
			n    int
		}{"length " + strconv.Itoa(n), n})
	}
	for _, tt := range tests {
		msg := data[:tt.n]
		want := sha256.Sum256(msg)
		for impl, f := range implementations {
			if got := f(msg); got != want {
				t.Errorf("%s (%d bytes), %s: got %x, want %x", tt.name, tt.n, impl, got, want)
			}
		}
	}
}

// TestInputUnchanged makes sure hashing does not write to its input, which
// the portable code reads in place.
func TestInputUnchanged(t *testing.T) {
	msg := bytes.Repeat([]byte{0x5a}, 3*BlockSize+7)
	orig := bytes.Clone(msg)
	sum(msg[:2*BlockSize+3])
	if !bytes.Equal(msg, orig) {
		t.Fatal("sum wrote to its input")
	}
}

// TestConstants derives H(0) and K from the primes, as FIPS 180-4 defines
// them, so that a mistyped constant cannot hide behind a test that happens
// to miss the round it is used in.
func TestConstants(t *testing.T) {
	var primes []int64
	for n := int64(2); len(primes) < 64; n++ {
		if big.NewInt(n).ProbablyPrime(0) {
			primes = append(primes, n)
		}
	}
	for i, want := range initial {
		// floor(sqrt(p)·2^32) mod 2^32 = floor(sqrt(p·2^64)) mod 2^32.
		v := new(big.Int).Lsh(big.NewInt(primes[i]), 64)
		if got := uint32(v.Sqrt(v).Uint64()); got != want {
			t.Errorf("H(0)[%d] = %#08x, derived %#08x", i, want, got)
		}
	}
	for i, want := range roundConstants {
		// floor(cbrt(p)·2^32) mod 2^32 = floor(cbrt(p·2^96)) mod 2^32.
		v := new(big.Int).Lsh(big.NewInt(primes[i]), 96)
		if got := uint32(cbrt(v).Uint64()); got != want {
			t.Errorf("K[%d] = %#08x, derived %#08x", i, want, got)
		}
	}
}

// cbrt is the integer cube root of v > 0, by bisection.
func cbrt(v *big.Int) *big.Int {
	lo, hi := big.NewInt(0), new(big.Int).Lsh(big.NewInt(1), uint(v.BitLen()/3+1))
	one := big.NewInt(1)
	for new(big.Int).Sub(hi, lo).Cmp(one) > 0 {
		mid := new(big.Int).Add(lo, hi)
		mid.Rsh(mid, 1)
		if c := new(big.Int).Exp(mid, big.NewInt(3), nil); c.Cmp(v) <= 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// FuzzSum holds the portable code to crypto/sha256 on arbitrary input.
func FuzzSum(f *testing.F) {
	for _, n := range []int{0, 1, 55, 56, 63, 64, 119, 120, 200} {
		f.Add(bytes.Repeat([]byte{byte(n)}, n))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if got, want := sum(msg), sha256.Sum256(msg); got != want {
			t.Fatalf("sum(%x) = %x, crypto/sha256 %x", msg, got, want)
		}
	})
}

// BenchmarkSum compares the portable code with crypto/sha256 on a request
// body of typical size.
func BenchmarkSum(b *testing.B) {
	msg := bytes.Repeat([]byte{1}, 1024)
	b.Run("portable", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			sum(msg)
		}
	})
	b.Run("crypto/sha256", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			sha256.Sum256(msg)
		}
	})
}
