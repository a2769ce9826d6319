package protocol

import (
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// This file rebuilds the TARGET line of the canonical string the way
// existing clients compute it in JavaScript: new URL(url).pathname +
// new URL(url).search, then URLSearchParams parsing, a stable sort by UTF-16
// code units and re-serialisation. Both steps follow the WHATWG URL Standard
// (https://url.spec.whatwg.org/), restricted to http(s) URLs.

// errNotHTTP is returned for absolute URLs whose scheme is not http or https.
var errNotHTTP = errors.New("amesh: target is not an http(s) URL or a path")

// CanonicalTarget returns the TARGET line for the verifying side, from the
// request-target exactly as it arrived on the wire: origin-form ("/p?q") or
// absolute-form ("https://host/p?q").
//
// Origin-form is always read as a path, even when it starts with "//", which
// a URL parser would take for a scheme-relative reference.
func CanonicalTarget(requestTarget string) (string, error) {
	path, query, err := splitTarget(requestTarget, true)
	if err != nil {
		return "", err
	}
	return joinTarget(path, query), nil
}

// ClientCanonicalTarget returns the TARGET line for the signing side, from
// what a client was given: an absolute http(s) URL or a reference resolved
// against "https://host/" (a path, "?query", a relative path, "//host/path").
// For every input, it equals CanonicalTarget(RequestTarget(input)).
func ClientCanonicalTarget(input string) (string, error) {
	path, query, err := splitTarget(input, false)
	if err != nil {
		return "", err
	}
	return joinTarget(path, query), nil
}

// RequestTarget returns the request-target a WHATWG client (fetch) sends on
// the wire for input: the serialised path, then "?" and the serialised query
// when there is one. The fragment is dropped.
func RequestTarget(input string) (string, error) {
	path, query, err := splitTarget(input, false)
	if err != nil {
		return "", err
	}
	if query.present {
		return path + "?" + encodeQuery(query.raw), nil
	}
	return path, nil
}

type rawQuery struct {
	raw     string
	present bool
}

func joinTarget(path string, q rawQuery) string {
	if !q.present {
		return path
	}
	if t, ok := joinPlainQuery(path, q.raw); ok {
		return t
	}
	sorted := sortedQuery(q.raw)
	if sorted == "" {
		return path
	}
	return path + "?" + sorted
}

// splitTarget runs the parts of the URL parser that matter for the path and
// the query. wire selects the verifying side's reading of origin-form.
func splitTarget(input string, wire bool) (path string, q rawQuery, err error) {
	s := cleanInput(input, !wire)
	if wire && (strings.HasPrefix(s, "/") || strings.HasPrefix(s, `\`)) {
		return parsePathAndQuery(s)
	}
	if scheme, rest, ok := cutScheme(s); ok {
		switch scheme {
		case "https":
			// The base's own scheme: "https:x" is a reference relative to it.
			return relative(rest)
		case "http", "ws", "wss":
			return authorityThenPath(rest)
		default:
			return "", rawQuery{}, errNotHTTP
		}
	}
	// Anything else, "*" included, resolves as a client would resolve it.
	return relative(s)
}

// cleanInput applies the URL parser's pre-processing: strip leading and
// trailing C0 controls and spaces, remove tabs and newlines. Client input is
// text, so invalid UTF-8 in it is replaced first, as JavaScript would have.
func cleanInput(s string, text bool) string {
	if text && !utf8.ValidString(s) {
		s = decodeUTF8(s)
	}
	i, j := 0, len(s)
	for i < j && s[i] <= 0x20 {
		i++
	}
	for j > i && s[j-1] <= 0x20 {
		j--
	}
	s = s[i:j]
	if hasTabOrNewline(s) {
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, s)
	}
	return s
}

// hasTabOrNewline is strings.ContainsAny(s, "\t\n\r") without the set
// that ContainsAny builds on every call: it runs on every request.
func hasTabOrNewline(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\t' || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// cutScheme recognises "scheme:" at the start of s, lower-casing it.
func cutScheme(s string) (scheme, rest string, ok bool) {
	if s == "" || !isAlpha(s[0]) {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c), c >= '0' && c <= '9', c == '+', c == '-', c == '.':
		case c == ':':
			return strings.ToLower(s[:i]), s[i+1:], true
		default:
			return "", "", false
		}
	}
	return "", "", false
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// authorityThenPath skips the slashes and the authority of a special URL and
// parses what follows as its path.
func authorityThenPath(s string) (string, rawQuery, error) {
	for s != "" && (s[0] == '/' || s[0] == '\\') {
		s = s[1:]
	}
	end := strings.IndexAny(s, `/\?#`)
	if end < 0 {
		end = len(s)
	}
	authority, rest := s[:end], s[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = authority[at+1:]
	}
	if authority == "" || strings.HasPrefix(authority, ":") {
		return "", rawQuery{}, errors.New("amesh: target URL has no host")
	}
	return parsePathAndQuery(rest)
}

// relative resolves s against the base "https://host/", whose path is "/".
func relative(s string) (string, rawQuery, error) {
	switch {
	case s == "":
		return "/", rawQuery{}, nil
	case s[0] == '/' || s[0] == '\\':
		if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
			return authorityThenPath(s)
		}
		return parsePathAndQuery(s)
	case s[0] == '?':
		return "/", rawQuery{raw: cutFragment(s[1:]), present: true}, nil
	case s[0] == '#':
		return "/", rawQuery{}, nil
	}
	// A relative path replaces the base's last (empty) segment.
	return parsePathAndQuery(s)
}

func cutFragment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// parsePathAndQuery runs the path state of the URL parser over s (which
// starts at the path, with or without its leading slash) and returns the
// serialised path and the raw query.
func parsePathAndQuery(s string) (string, rawQuery, error) {
	if p, q, ok := plainPath(s); ok {
		return p, q, nil
	}
	return parsePath(s)
}

// parsePath is the general path state of the URL parser.
func parsePath(s string) (string, rawQuery, error) {
	if s != "" && (s[0] == '/' || s[0] == '\\') {
		s = s[1:]
	}
	var segs []string
	var buf []byte
	var q rawQuery
	i := 0
	for {
		c := byte(0)
		end := i >= len(s)
		if !end {
			c = s[i]
		}
		if end || c == '/' || c == '\\' || c == '?' || c == '#' {
			slash := !end && (c == '/' || c == '\\')
			seg := string(buf)
			switch {
			case isDoubleDot(seg):
				if len(segs) > 0 {
					segs = segs[:len(segs)-1]
				}
				if !slash {
					segs = append(segs, "")
				}
			case isSingleDot(seg):
				if !slash {
					segs = append(segs, "")
				}
			default:
				segs = append(segs, seg)
			}
			buf = buf[:0]
			if end || c == '#' {
				break
			}
			if c == '?' {
				q = rawQuery{raw: cutFragment(s[i+1:]), present: true}
				break
			}
			i++
			continue
		}
		buf = appendPathByte(buf, c)
		i++
	}
	var b strings.Builder
	for _, seg := range segs {
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return "/", q, nil
	}
	return b.String(), q, nil
}

// plainPath is the fast path of parsePathAndQuery for the common case: a
// path starting with "/" that needs no encoding and has no dot segment, so
// that it serialises to itself.
func plainPath(s string) (string, rawQuery, bool) {
	if s == "" || s[0] != '/' {
		return "", rawQuery{}, false
	}
	end := len(s)
	segStart := 1
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '?' || c == '#' {
			end = i
			break
		}
		if c == '/' {
			if isDotSegment(s[segStart:i]) {
				return "", rawQuery{}, false
			}
			segStart = i + 1
			continue
		}
		if charClass[c]&classPlainPath == 0 {
			return "", rawQuery{}, false
		}
	}
	if isDotSegment(s[segStart:end]) {
		return "", rawQuery{}, false
	}
	var q rawQuery
	if end < len(s) && s[end] == '?' {
		q = rawQuery{raw: cutFragment(s[end+1:]), present: true}
	}
	return s[:end], q, true
}

// isDotSegment reports whether seg is "." or "..", in any of their
// percent-encoded spellings. Most segments fail the first test.
func isDotSegment(seg string) bool {
	if seg == "" || len(seg) > 6 || seg[0] != '.' && seg[0] != '%' {
		return false
	}
	return isSingleDot(seg) || isDoubleDot(seg)
}

func isSingleDot(s string) bool { return s == "." || strings.EqualFold(s, "%2e") }

func isDoubleDot(s string) bool {
	switch len(s) {
	case 2:
		return s == ".."
	case 4:
		return strings.EqualFold(s, ".%2e") || strings.EqualFold(s, "%2e.")
	case 6:
		return strings.EqualFold(s, "%2e%2e")
	}
	return false
}

const hexUpper = "0123456789ABCDEF"

// appendPathByte appends c, percent-encoded if it is in the path
// percent-encode set. Bytes of multi-byte UTF-8 sequences are all >= 0x80, so
// encoding byte by byte equals the standard's UTF-8 percent-encoding.
// The set is the one Node.js and browsers apply: "^" and "|" stay as they are.
func appendPathByte(buf []byte, c byte) []byte {
	if c <= 0x20 || c >= 0x7f || strings.IndexByte("\"#<>?`{}", c) >= 0 {
		return append(buf, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return append(buf, c)
}

// encodeQuery percent-encodes a raw query with the special-query set, as a
// WHATWG client does before sending it.
func encodeQuery(q string) string {
	var b []byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '#' || c == '<' || c == '>' || c == '\'' {
			b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

type queryPair struct{ name, value string }

// maxPlainPairs bounds the pairs joinPlainQuery handles; they live on the
// stack.
const maxPlainPairs = 16

// joinPlainQuery is the fast path of joinTarget for the common query whose
// names and values need no decoding and no encoding: every byte is one the
// form serializer keeps as it is, or a separator, and no piece holds more
// than one "=". Then sorting the pieces by name and joining them gives what
// sortedQuery would, with one allocation. It reports false for any other
// query, which takes the general path.
func joinPlainQuery(path, q string) (string, bool) {
	var names, pieces [maxPlainPairs]string
	n, size := 0, len(path)
	for q != "" {
		piece, rest, _ := strings.Cut(q, "&")
		q = rest
		if piece == "" {
			continue
		}
		eq := -1
		for i := 0; i < len(piece); i++ {
			c := piece[i]
			if c == '=' && eq < 0 {
				eq = i
			} else if charClass[c]&classFormPlain == 0 {
				return "", false
			}
		}
		if n == maxPlainPairs {
			return "", false
		}
		name := piece
		size += 1 + len(piece) // the "?" or "&" before it
		if eq >= 0 {
			name = piece[:eq]
		} else {
			size++ // a bare name is serialised with "="
		}
		// Insertion sort, stable: an ASCII name's byte order is its UTF-16
		// order.
		j := n
		for ; j > 0 && names[j-1] > name; j-- {
			names[j], pieces[j] = names[j-1], pieces[j-1]
		}
		names[j], pieces[j] = name, piece
		n++
	}
	if n == 0 {
		return path, true
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(path)
	for i := range n {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(pieces[i])
		if len(pieces[i]) == len(names[i]) {
			b.WriteByte('=')
		}
	}
	return b.String(), true
}

// sortedQuery parses q as application/x-www-form-urlencoded, sorts the pairs
// stably by name in UTF-16 code unit order and serialises them again.
func sortedQuery(q string) string {
	if q == "" {
		return ""
	}
	var pairs []queryPair
	for q != "" {
		var piece string
		piece, q, _ = strings.Cut(q, "&")
		if piece == "" {
			continue
		}
		name, value, _ := strings.Cut(piece, "=")
		pairs = append(pairs, queryPair{formDecode(name), formDecode(value)})
	}
	// Stable: pairs with equal names keep their order.
	slices.SortStableFunc(pairs, func(a, b queryPair) int {
		switch {
		case lessUTF16(a.name, b.name):
			return -1
		case lessUTF16(b.name, a.name):
			return 1
		}
		return 0
	})
	var b []byte
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = appendFormEncoded(b, p.name)
		b = append(b, '=')
		b = appendFormEncoded(b, p.value)
	}
	return string(b)
}

// formDecode turns "+" into space, percent-decodes bytes (leaving malformed
// escapes as they are) and decodes the result as UTF-8 with replacement.
func formDecode(s string) string {
	if !strings.ContainsAny(s, "+%") && utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return decodeUTF8(string(b))
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// appendFormEncoded is the application/x-www-form-urlencoded serializer for
// one name or value: space becomes "+", ASCII alphanumerics and "*-._" stay,
// every other byte is %XX with upper-case hex.
func appendFormEncoded(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b = append(b, '+')
		case isAlpha(c), c >= '0' && c <= '9', c == '*', c == '-', c == '.', c == '_':
			b = append(b, c)
		default:
			b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return b
}

// decodeUTF8 is the Encoding Standard's "UTF-8 decode without BOM" with
// replacement: each maximal ill-formed subpart becomes one U+FFFD. Go's own
// decoder replaces byte by byte, which differs (E2 82 41 is "\uFFFDA" here).
func decodeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(s); i++ {
		b := s[i]
		if needed == 0 {
			switch {
			case b <= 0x7f:
				out = append(out, b)
			case b >= 0xc2 && b <= 0xdf:
				needed, cp = 1, rune(b&0x1f)
			case b >= 0xe0 && b <= 0xef:
				if b == 0xe0 {
					lower = 0xa0
				} else if b == 0xed {
					upper = 0x9f
				}
				needed, cp = 2, rune(b&0xf)
			case b >= 0xf0 && b <= 0xf4:
				if b == 0xf0 {
					lower = 0x90
				} else if b == 0xf4 {
					upper = 0x8f
				}
				needed, cp = 3, rune(b&0x7)
			default:
				out = utf8.AppendRune(out, utf8.RuneError)
			}
			continue
		}
		if b < lower || b > upper {
			cp, needed, seen = 0, 0, 0
			lower, upper = 0x80, 0xbf
			out = utf8.AppendRune(out, utf8.RuneError)
			i-- // the byte starts over
			continue
		}
		lower, upper = 0x80, 0xbf
		cp = cp<<6 | rune(b&0x3f)
		seen++
		if seen == needed {
			out = utf8.AppendRune(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return string(out)
}

// lessUTF16 compares two valid UTF-8 strings by their UTF-16 code units, as
// JavaScript's sort does: supplementary characters (surrogate pairs, starting
// at 0xD800) sort before U+E000..U+FFFF, unlike in code point order.
func lessUTF16(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return utf16Key(ra) < utf16Key(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b != ""
}

// utf16Key maps a rune to a number whose order is the order of its UTF-16
// encoding: the first code unit, then the second.
func utf16Key(r rune) uint32 {
	if r < 0x10000 {
		return uint32(r) << 16
	}
	r -= 0x10000
	return uint32(0xd800+(r>>10))<<16 | uint32(0xdc00+(r&0x3ff))
}
