package command

import (
	"strings"
	"testing"

	"github.com/amesh-go/amesh/relay/pairing"
)

func TestSanitizeName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"laptop", "laptop"},
		{"  my   laptop  ", "my laptop"},
		{"evil\x1b[31mred\x1b[0m", "evil[31mred[0m"},
		{"bell\a\x00nul", "bellnul"},
		{"line\nbreak", "line break"},
		{"rtl\u202eoverride\u2066", "rtloverride"},
		{"zero\u200bwidth", "zerowidth"},
		{"c1\u009bcsi", "c1csi"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"", "(unnamed)"},
		{strings.Repeat("a", 63) + "  b", strings.Repeat("a", 63)},
		{"\x1b\x1b", "(unnamed)"},
		{"日本語のサーバー", "日本語のサーバー"},
		{strings.Repeat("a", 100), strings.Repeat("a", pairing.MaxNameRunes)},
	}
	for _, c := range cases {
		if got := SanitizeName(c.in); got != c.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
