package pairing

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameRunes is the longest friendly name shown or stored, as in the amesh
// command.
const MaxNameRunes = 64

// MaxNameBytes bounds a friendly name on the wire and after sanitising; it
// is the limit of an allow-list entry's name.
const MaxNameBytes = 128

// SanitizeName makes a friendly name, which comes from the peer and so from
// anyone, safe to print and store: control characters, escape sequences,
// bidirectional overrides and other invisible format characters are dropped,
// whitespace runs become one space, and the result is cut to MaxNameRunes
// runes and MaxNameBytes bytes (on a rune boundary). A name that ends up
// empty becomes "(unnamed)". The result is always a valid allow-list name: the
// rules are those of the amesh command's SanitizeName plus the byte limit.
func SanitizeName(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r), r == '\u200b', r == '\ufeff',
			unicode.In(r, unicode.Cf):
			continue
		}
		need := 1
		if space {
			need = 2
		}
		if n+need > MaxNameRunes || b.Len()+need-1+utf8.RuneLen(r) > MaxNameBytes {
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return "(unnamed)"
	}
	return b.String()
}

// wireName is the name a device sends.
func wireName(s string) string { return SanitizeName(s) }
