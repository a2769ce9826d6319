// Package abi is the wire format between amesh.wasm and its hosts: the
// records that travel through the guest's linear memory, and the numbers
// the exports and imports exchange. docs/ABI.md is the normative
// description; this package implements it for the Go guest (wasm/guest) and
// the Go host (host/wasmhost), and a JavaScript host implements the same
// few rules by hand.
//
// A record is a sequence of fields. A field is a one-byte tag, a four-byte
// little-endian length and that many bytes of value:
//
//	tag:u8  len:u32le  value[len]
//
// Values are byte strings (UTF-8 text for strings), 8-byte little-endian
// two's-complement integers, one-byte booleans (0 or 1) or nested records.
// Tags 1 to 127 must be understood: a decoder rejects a record carrying one
// it does not know. Tags 128 to 255 are optional: a decoder skips those it
// does not know, so that a newer host can pass hints to an older guest.
// A field appears at most once unless the record's description says it
// repeats.
//
// The package is pure Go with no dependency beyond errors and strconv, so
// that it costs the guest little and fuzzes natively. In particular it
// avoids fmt and encoding/binary, which link reflect into amesh.wasm (see
// the package documentation of wasm/protocol).
package abi

import (
	"errors"
	"strconv"
)

// Version is the ABI version, returned by the guest's amesh_abi_version
// export. It changes only when an existing export, import or field changes
// meaning; new optional fields and new exports keep it.
const Version = 1

// HeaderSize is the size of a field header: tag and length.
const HeaderSize = 5

// MaxRecordSize is the largest record either side accepts: a 1 MiB body
// limit plus headers fits many times over, and no length computed from a
// record can overflow 32 bits.
const MaxRecordSize = 64 << 20

// ErrRecord is wrapped by every decoding error.
var ErrRecord = errors.New("abi: malformed record")

// recordError is a decoding error: ErrRecord's text, a colon and the
// detail. It unwraps to ErrRecord.
type recordError struct{ detail string }

func (e *recordError) Error() string { return ErrRecord.Error() + ": " + e.detail }
func (e *recordError) Unwrap() error { return ErrRecord }

func recordErr(detail string) error { return &recordError{detail} }

// itoa formats a length, offset or tag (never negative) for an error.
func itoa[T ~int | ~uint32 | ~uint8](v T) string { return strconv.FormatUint(uint64(v), 10) }

// uint32LE and putUint32LE are encoding/binary's LittleEndian.Uint32 and
// PutUint32: that package imports reflect.
func uint32LE(b []byte) uint32 {
	_ = b[3] // one bounds check
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putUint32LE(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// Fields calls fn for every field of rec in order, after checking that each
// field's length stays inside rec. The value passed to fn aliases rec.
func Fields(rec []byte, fn func(tag byte, val []byte) error) error {
	if len(rec) > MaxRecordSize {
		return recordErr("record of " + itoa(len(rec)) + " bytes, limit " + itoa(MaxRecordSize))
	}
	for off := 0; off < len(rec); {
		if len(rec)-off < HeaderSize {
			return recordErr("truncated field header at offset " + itoa(off))
		}
		tag := rec[off]
		n := uint32LE(rec[off+1:])
		off += HeaderSize
		// Compare in uint64 so that a huge length cannot wrap around.
		if uint64(n) > uint64(len(rec)-off) {
			return recordErr("field " + itoa(tag) + " at offset " + itoa(off-HeaderSize) + " claims " + itoa(n) +
				" bytes, " + itoa(len(rec)-off) + " left")
		}
		if tag == 0 {
			return recordErr("tag 0 at offset " + itoa(off-HeaderSize))
		}
		if err := fn(tag, rec[off:off+int(n)]); err != nil {
			return err
		}
		off += int(n)
	}
	return nil
}

// Int decodes an integer field value.
func Int(val []byte) (int64, error) {
	if len(val) != 8 {
		return 0, recordErr("integer of " + itoa(len(val)) + " bytes, want 8")
	}
	return int64(uint32LE(val)) | int64(uint32LE(val[4:]))<<32, nil
}

// Bool decodes a boolean field value.
func Bool(val []byte) (bool, error) {
	if len(val) != 1 || val[0] > 1 {
		return false, recordErr("boolean is not one byte 0 or 1")
	}
	return val[0] == 1, nil
}

// Encoder appends fields to a record.
type Encoder struct {
	// Buf is the record built so far; reset it with Buf = Buf[:0] to reuse
	// the memory.
	Buf []byte
}

func (e *Encoder) header(tag byte, n int) {
	e.Buf = append(e.Buf, tag, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
}

// Bytes appends a byte-string field.
func (e *Encoder) Bytes(tag byte, v []byte) {
	e.header(tag, len(v))
	e.Buf = append(e.Buf, v...)
}

// String appends a text field.
func (e *Encoder) String(tag byte, v string) {
	e.header(tag, len(v))
	e.Buf = append(e.Buf, v...)
}

// Int appends an integer field.
func (e *Encoder) Int(tag byte, v int64) {
	e.header(tag, 8)
	e.Buf = append(e.Buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

// Bool appends a boolean field.
func (e *Encoder) Bool(tag byte, v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	e.header(tag, 1)
	e.Buf = append(e.Buf, b)
}

// Record appends a nested record built by fill.
func (e *Encoder) Record(tag byte, fill func(*Encoder)) {
	start := len(e.Buf)
	e.header(tag, 0)
	fill(e)
	putUint32LE(e.Buf[start+1:], uint32(len(e.Buf)-start-HeaderSize))
}

// seen tracks which tags of a record were present, to reject duplicates.
type seen [4]uint64

func (s *seen) mark(tag byte) error {
	bit := uint64(1) << (tag % 64)
	if s[tag/64]&bit != 0 {
		return recordErr("field " + itoa(tag) + " repeated")
	}
	s[tag/64] |= bit
	return nil
}

func (s *seen) has(tag byte) bool { return s[tag/64]&(uint64(1)<<(tag%64)) != 0 }

// unknown is the answer of a record decoder for a tag it does not know.
func unknown(record string, tag byte) error {
	if tag >= 128 {
		return nil
	}
	return recordErr(record + ": unknown field " + itoa(tag))
}
