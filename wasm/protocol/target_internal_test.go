package protocol

import "testing"

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
