package protocol

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestDecodeBase64(t *testing.T) {
	tests := []struct {
		in   string
		url  bool
		want string // hex-free: the decoded bytes; "!" means rejected
	}{
		{"", true, ""},
		{"QQ", true, "A"},
		{"QR", true, "!"}, // trailing bits set
		{"QUI", true, "AB"},
		{"QUJ", true, "!"},
		{"QUJD", true, "ABC"},
		{"Q", true, "!"}, // no byte string has 1 character
		{"QUJD=", true, "!"},
		{"QQ==", true, "!"}, // padding is not accepted
		{"-_-_", true, "\xfb\xff\xbf"},
		{"-_-_", false, "!"},
		{"+/+/", false, "\xfb\xff\xbf"},
		{"+/+/", true, "!"},
		{"QU\nJD", true, "!"},
		{"QUJ\x80", true, "!"},
	}
	for _, tt := range tests {
		tab := b64Std
		if tt.url {
			tab = b64URL
		}
		n := b64DecodedLen(len(tt.in))
		if n < 0 {
			if tt.want != "!" {
				t.Errorf("%q: length %d refused", tt.in, len(tt.in))
			}
			continue
		}
		dst := make([]byte, n)
		ok := decodeBase64(dst, tt.in, tab)
		switch {
		case tt.want == "!" && ok:
			t.Errorf("%q (url %v): accepted as %q", tt.in, tt.url, dst)
		case tt.want != "!" && (!ok || string(dst) != tt.want):
			t.Errorf("%q (url %v): got %q, %v; want %q", tt.in, tt.url, dst, ok, tt.want)
		}
	}
}

// FuzzDecodeBase64 holds decodeBase64 to encoding/base64's strict raw
// decoders, for both alphabets. Go's decoders skip CR and LF, which no
// header value can contain; those inputs are left out.
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"", "QQ", "QR", "QUJD", "-_-_", "+/+/", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "QQ=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\r\n") {
			return
		}
		for _, c := range []struct {
			tab *[256]byte
			enc *base64.Encoding
		}{{b64Std, base64.RawStdEncoding.Strict()}, {b64URL, base64.RawURLEncoding.Strict()}} {
			want, err := c.enc.DecodeString(s)
			n := b64DecodedLen(len(s))
			var got []byte
			ok := n >= 0
			if ok {
				got = make([]byte, n)
				ok = decodeBase64(got, s, c.tab)
			}
			if ok != (err == nil) || ok && !bytes.Equal(got, want) {
				t.Fatalf("%q: decodeBase64 %x, %v; encoding/base64 %x, %v", s, got, ok, want, err)
			}
		}
	})
}
