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
// The package is pure Go with no dependency beyond the standard library's
// encoding helpers, so that it costs the guest little and fuzzes natively.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
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

func recordErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRecord, fmt.Sprintf(format, args...))
}

// Fields calls fn for every field of rec in order, after checking that each
// field's length stays inside rec. The value passed to fn aliases rec.
func Fields(rec []byte, fn func(tag byte, val []byte) error) error {
	if len(rec) > MaxRecordSize {
		return recordErr("record of %d bytes, limit %d", len(rec), MaxRecordSize)
	}
	for off := 0; off < len(rec); {
		if len(rec)-off < HeaderSize {
			return recordErr("truncated field header at offset %d", off)
		}
		tag := rec[off]
		n := binary.LittleEndian.Uint32(rec[off+1:])
		off += HeaderSize
		// Compare in uint64 so that a huge length cannot wrap around.
		if uint64(n) > uint64(len(rec)-off) {
			return recordErr("field %d at offset %d claims %d bytes, %d left", tag, off-HeaderSize, n, len(rec)-off)
		}
		if tag == 0 {
			return recordErr("tag 0 at offset %d", off-HeaderSize)
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
		return 0, recordErr("integer of %d bytes, want 8", len(val))
	}
	return int64(binary.LittleEndian.Uint64(val)), nil
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
	e.Buf = append(e.Buf, tag, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(e.Buf[len(e.Buf)-4:], uint32(n))
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
	e.Buf = binary.LittleEndian.AppendUint64(e.Buf, uint64(v))
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
	binary.LittleEndian.PutUint32(e.Buf[start+1:], uint32(len(e.Buf)-start-HeaderSize))
}

// seen tracks which tags of a record were present, to reject duplicates.
type seen [4]uint64

func (s *seen) mark(tag byte) error {
	bit := uint64(1) << (tag % 64)
	if s[tag/64]&bit != 0 {
		return recordErr("field %d repeated", tag)
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
	return recordErr("%s: unknown field %d", record, tag)
}
