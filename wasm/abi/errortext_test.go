package abi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

// The package builds its errors without fmt (see the package
// documentation); these cases hold them to the formats they replaced.
func TestErrorTextsAsWithFmt(t *testing.T) {
	decode := func(h string) error {
		rec, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeRequest(rec)
		return err
	}
	want := func(format string, args ...any) string {
		return fmt.Errorf("%w: %s", ErrRecord, fmt.Sprintf(format, args...)).Error()
	}
	_, intErr := Int([]byte{1, 2, 3})
	cases := []struct{ got, want error }{
		{decode("01030000"), errors.New(want("truncated field header at offset %d", 0))},
		{decode("0103000000474554" + "0205000000410000"), errors.New(want("field %d at offset %d claims %d bytes, %d left", 2, 8, 5, 3))},
		{decode("01ffffffff474554"), errors.New(want("field %d at offset %d claims %d bytes, %d left", 1, 0, uint32(0xffffffff), 3))},
		{decode("0103000000474554" + "0000000000"), errors.New(want("tag 0 at offset %d", 8))},
		{decode("0103000000474554" + "0103000000474554"), errors.New(want("field %d repeated", 1))},
		{decode("0103000000474554" + "0a00000000"), errors.New(want("%s: unknown field %d", "request", 10))},
		{decode("0103000000474554"), errors.New(want("request without method or target"))},
		{intErr, errors.New(want("integer of %d bytes, want 8", 3))},
		{Fields(make([]byte, MaxRecordSize+1), nil), errors.New(want("record of %d bytes, limit %d", MaxRecordSize+1, MaxRecordSize))},
	}
	for _, c := range cases {
		if c.got == nil || c.got.Error() != c.want.Error() {
			t.Errorf("got  %v\nwant %v", c.got, c.want)
		}
		if !errors.Is(c.got, ErrRecord) {
			t.Errorf("%v does not unwrap to ErrRecord", c.got)
		}
	}
}
