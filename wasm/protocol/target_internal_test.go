package protocol

import (
	"strings"
	"testing"
)

// FuzzPlainPath holds the fast path to the general path parser.
func FuzzPlainPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a/./b", "/a/%2E%2e/b?x#y", "/a?b=c", "/a b", "/a\\b", "/.", "/a/..", "/a%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, q, ok := plainPath(s)
		if !ok {
			return
		}
		p2, q2, err := parsePath(s)
		if err != nil || p != p2 || q != q2 {
			t.Fatalf("%q: fast path %q %+v, general %q %+v (%v)", s, p, q, p2, q2, err)
		}
	})
}

// FuzzPlainQuery holds the query fast path to the general one: parse,
// decode, stable sort by UTF-16, encode.
func FuzzPlainQuery(f *testing.F) {
	for _, q := range []string{"", "b=2&a=1", "a", "a&b=", "=", "&&a=1&", "a=1&a=0&A=2", "a=b=c", "a=%41", "a+b=1",
		"x.y-z_*=1", "é=1", "a=1&" + "b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&p=16&q=17"} {
		f.Add("/p", q)
	}
	f.Fuzz(func(t *testing.T, path, q string) {
		got, ok := joinPlainQuery(path, q)
		if !ok {
			return
		}
		want := path
		if s := sortedQuery(q); s != "" {
			want += "?" + s
		}
		if got != want {
			t.Fatalf("%q %q: fast path %q, general %q", path, q, got, want)
		}
	})
}

func TestParamIndex(t *testing.T) {
	for i, n := range paramNames {
		for _, spelling := range []string{n, strings.ToUpper(n), strings.ToUpper(n[:1]) + n[1:]} {
			if got := paramIndex(spelling); got != i {
				t.Errorf("paramIndex(%q) = %d, want %d", spelling, got, i)
			}
		}
	}
	for _, s := range []string{"", "w", "V1", "i", "ids", "td", "nonc", "nonces", "si", "sigs", "x-id", "iD_", "6", "~"} {
		if got := paramIndex(s); got != -1 {
			t.Errorf("paramIndex(%q) = %d, want -1", s, got)
		}
	}
}
