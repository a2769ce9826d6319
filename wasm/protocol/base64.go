package protocol

// A strict unpadded base64 decoder for the header's fixed-size fields. In
// amesh.wasm, encoding/base64 (which also allocates the []byte of every
// string it decodes) was the largest part of header parsing; this one
// decodes straight into the header's arrays. It accepts exactly what
// encoding/base64's Raw*Encoding.Strict() accepts for strings without CR
// or LF (which no header value can hold): FuzzDecodeBase64 holds it to that.

const b64Invalid = 0xff

// b64Std and b64URL map a character to its 6-bit value, or b64Invalid.
var b64Std, b64URL = b64Table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
	b64Table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

func b64Table(alphabet string) *[256]byte {
	var t [256]byte
	for i := range t {
		t[i] = b64Invalid
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return &t
}

// b64DecodedLen is the length of the bytes that n unpadded characters
// encode, or -1 when no byte string encodes to n characters.
func b64DecodedLen(n int) int {
	if n%4 == 1 {
		return -1
	}
	return n/4*3 + n%4*3/4
}

// decodeBase64 decodes the unpadded s into dst, which must be exactly
// b64DecodedLen(len(s)) bytes. It reports false on a character outside the
// alphabet, a wrong length, or non-zero trailing bits.
func decodeBase64(dst []byte, s string, t *[256]byte) bool {
	n := len(s)
	if b64DecodedLen(n) != len(dst) {
		return false
	}
	// Eight characters, six bytes at a time while they last; slicing as
	// we go lets the compiler drop the bounds checks.
	for len(s) >= 8 && len(dst) >= 6 {
		a, b, c, d := t[s[0]], t[s[1]], t[s[2]], t[s[3]]
		e, f, g, h := t[s[4]], t[s[5]], t[s[6]], t[s[7]]
		if (a|b|c|d|e|f|g|h)&0x80 != 0 {
			return false
		}
		v := uint64(a)<<42 | uint64(b)<<36 | uint64(c)<<30 | uint64(d)<<24 |
			uint64(e)<<18 | uint64(f)<<12 | uint64(g)<<6 | uint64(h)
		dst[0], dst[1], dst[2], dst[3], dst[4], dst[5] =
			byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		s, dst = s[8:], dst[6:]
	}
	if len(s) >= 4 && len(dst) >= 3 {
		a, b, c, d := t[s[0]], t[s[1]], t[s[2]], t[s[3]]
		if (a|b|c|d)&0x80 != 0 {
			return false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[0], dst[1], dst[2] = byte(v>>16), byte(v>>8), byte(v)
		s, dst = s[4:], dst[3:]
	}
	switch {
	case len(s) == 2 && len(dst) == 1:
		a, b := t[s[0]], t[s[1]]
		if (a|b)&0x80 != 0 || b&0x0f != 0 {
			return false
		}
		dst[0] = a<<2 | b>>4
	case len(s) == 3 && len(dst) == 2:
		a, b, c := t[s[0]], t[s[1]], t[s[2]]
		if (a|b|c)&0x80 != 0 || c&0x03 != 0 {
			return false
		}
		v := uint32(a)<<12 | uint32(b)<<6 | uint32(c)
		dst[0], dst[1] = byte(v>>10), byte(v>>2)
	}
	return true
}
