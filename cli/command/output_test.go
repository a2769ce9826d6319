package command

import (
	"strings"
	"testing"
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
		{"\x1b\x1b", "(unnamed)"},
		{"日本語のサーバー", "日本語のサーバー"},
		{strings.Repeat("a", 100), strings.Repeat("a", MaxNameRunes)},
	}
	for _, c := range cases {
		if got := SanitizeName(c.in); got != c.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
