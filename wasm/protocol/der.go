package protocol

import (
	"errors"
	"strconv"
)

// DERSignature encodes a raw 64-byte r||s signature as the ASN.1
// ECDSA-Sig-Value that crypto/ecdsa and BoringSSL verify. For r and s below
// 2^256 every length fits in one byte.
func DERSignature(raw []byte) ([]byte, error) {
	if len(raw) != SignatureSize {
		return nil, errors.New("amesh: signature of " + strconv.Itoa(len(raw)) + " bytes, want " + strconv.Itoa(SignatureSize))
	}
	out := make([]byte, 2, 72)
	out[0] = 0x30
	out = appendDERInt(out, raw[:32])
	out = appendDERInt(out, raw[32:])
	out[1] = byte(len(out) - 2)
	return out, nil
}

func appendDERInt(out, v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	out = append(out, 0x02)
	if v[0]&0x80 != 0 {
		out = append(out, byte(len(v)+1), 0)
	} else {
		out = append(out, byte(len(v)))
	}
	return append(out, v...)
}
