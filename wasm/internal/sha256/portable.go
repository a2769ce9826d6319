package sha256

import "math/bits"

// SHA-256 as FIPS 180-4 specifies it (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3
// and 6.2), written for this package. It is compiled in every build so
// that the tests can hold it to crypto/sha256 natively; only wasm builds
// (and the amesh_nistec tag) make Sum256 use it. The input is never
// secret here (request bodies and canonical strings), but nothing in it
// depends on the data's values anyway.

// initial is H(0), section 5.3.3: the first 32 bits of the fractional
// parts of the square roots of the first eight primes.
var initial = [8]uint32{
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
}

// roundConstants is K, section 4.2.2: the first 32 bits of the fractional
// parts of the cube roots of the first 64 primes. TestConstants derives
// both tables from the primes.
var roundConstants = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

// sum is the whole computation: the complete blocks of data straight from
// the caller's slice, then the last partial block with the padding of
// section 5.1.1 (a one bit, zeros, the length in bits as 64 bits), which
// needs a second block when fewer than 9 bytes are left in the first.
func sum(data []byte) [Size]byte {
	h := initial
	whole := len(data) &^ (BlockSize - 1)
	compress(&h, data[:whole])

	var tail [2 * BlockSize]byte
	n := copy(tail[:], data[whole:])
	tail[n] = 0x80
	end := BlockSize
	if n >= BlockSize-8 {
		end = 2 * BlockSize
	}
	putUint64(tail[end-8:end], uint64(len(data))<<3)
	compress(&h, tail[:end])

	var out [Size]byte
	for i, v := range h {
		putUint32(out[4*i:4*i+4], v)
	}
	return out
}

// compress runs the hash computation of section 6.2.2 over every 64-byte
// block of p, updating the hash value h. The message schedule W is kept
// as a ring of its last 16 words: W[t] depends only on W[t-2], W[t-7],
// W[t-15] and W[t-16], and W[t-16] is the slot W[t] replaces.
func compress(h *[8]uint32, p []byte) {
	var w [16]uint32
	for ; len(p) >= BlockSize; p = p[BlockSize:] {
		for t := range w {
			w[t] = uint32(p[4*t])<<24 | uint32(p[4*t+1])<<16 | uint32(p[4*t+2])<<8 | uint32(p[4*t+3])
		}
		a, b, c, d, e, f, g, hh := h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
		for t := range 64 {
			if t >= 16 {
				w2, w15 := w[(t-2)&15], w[(t-15)&15]
				sigma1 := bits.RotateLeft32(w2, -17) ^ bits.RotateLeft32(w2, -19) ^ w2>>10
				sigma0 := bits.RotateLeft32(w15, -7) ^ bits.RotateLeft32(w15, -18) ^ w15>>3
				w[t&15] += sigma1 + w[(t-7)&15] + sigma0
			}
			bigSigma1 := bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)
			choose := e&f ^ ^e&g
			t1 := hh + bigSigma1 + choose + roundConstants[t] + w[t&15]
			bigSigma0 := bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)
			majority := a&b ^ a&c ^ b&c
			t2 := bigSigma0 + majority
			hh, g, f, e, d, c, b, a = g, f, e, d+t1, c, b, a, t1+t2
		}
		h[0] += a
		h[1] += b
		h[2] += c
		h[3] += d
		h[4] += e
		h[5] += f
		h[6] += g
		h[7] += hh
	}
}

// putUint32 and putUint64 write big-endian words; encoding/binary would
// bring reflect into amesh.wasm.
func putUint32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

func putUint64(b []byte, v uint64) {
	putUint32(b[:4], uint32(v>>32))
	putUint32(b[4:], uint32(v))
}
