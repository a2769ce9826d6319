package device

import (
	"bytes"
	"testing"
)

// fuzzKey is the HMAC key the seed corpus was sealed with, so that the
// fuzzer starts from authentic files and mutates past the seal too.
var fuzzKey = bytes.Repeat([]byte{0x42}, 32)

// FuzzOpenList feeds arbitrary bytes to the allow-list reader: it must
// return an integrity error or a valid list, never panic, and whatever it
// accepts must seal back to a list it accepts again.
func FuzzOpenList(f *testing.F) {
	f.Add([]byte(`{"version":1,"list":{},"hmac":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := openList("allow_list.json", fuzzKey, data)
		if err != nil {
			if _, ok := err.(*IntegrityError); !ok {
				t.Fatalf("error is not an IntegrityError: %v", err)
			}
			return
		}
		if err := checkEntries(body.Devices); err != nil {
			t.Fatalf("accepted invalid entries: %v", err)
		}
		again, err := sealList(fuzzKey, body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := openList("allow_list.json", fuzzKey, again); err != nil {
			t.Fatalf("resealed list rejected: %v", err)
		}
	})
}

// FuzzParseIdentity checks the identity.json reader the same way.
func FuzzParseIdentity(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := parseIdentity(data)
		if err != nil {
			return
		}
		if _, err := parseIdentity(id.marshal()); err != nil {
			t.Fatalf("re-encoded identity rejected: %v", err)
		}
	})
}
