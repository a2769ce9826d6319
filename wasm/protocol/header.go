package protocol

import (
	"errors"
	"strconv"
	"strings"
)

// Scheme is the authentication scheme name of the Authorization header.
const Scheme = "AuthMesh"

// MaxHeaderBytes is the longest Authorization value the parser accepts.
const MaxHeaderBytes = 1024

// Nonce length limits, in decoded bytes. Clients send 16 random bytes; the
// lower bound stays at 8 because the existing protocol documentation's own
// example ("dGVzdG5vbmNl", 9 bytes) must parse. A short nonce only hurts its
// signer: the verifier's security does not depend on nonce entropy.
const (
	MinNonceBytes = 8
	MaxNonceBytes = 48
)

// Protocol versions.
const (
	Version1 = "1" // AMv1: what existing clients sign
	Version2 = "2" // AMv2: AMv1 plus the audience (authority)
)

// Header is a parsed Authorization header. The string fields hold the
// parameter values exactly as they were sent (they are signed as such); the
// other fields are their decoded forms.
type Header struct {
	V     string // "1" or "2"
	ID    string // the public key as sent
	TS    string // the timestamp as sent
	Nonce string // the nonce as sent
	Sig   string // the signature as sent

	Key       [PublicKeySize]byte
	Timestamp int64
	Signature [SignatureSize]byte

	// The decoded nonce, in an array rather than a slice of one: a Header
	// holding no pointer into itself can live on the verifier's stack.
	nonce    [MaxNonceBytes]byte
	nonceLen int
}

// NonceBytes returns the decoded nonce.
func (h *Header) NonceBytes() []byte { return h.nonce[:h.nonceLen] }

// ParseAuthorization parses the Authorization header of a request given all
// its values: none is missing_header, more than one is malformed_header.
func ParseAuthorization(values []string) (*Header, error) {
	h := new(Header)
	if err := parseAuthorization(h, values); err != nil {
		return nil, err
	}
	// The decision path defers the curve check to keep verification cheap;
	// standalone parsing does the full check.
	if _, err := ParsePublicKey(h.Key[:]); err != nil {
		return nil, malformed("id: " + err.Error())
	}
	return h, nil
}

// ParseHeader parses one Authorization header value. An empty value is
// missing_header.
func ParseHeader(value string) (*Header, error) {
	if value == "" {
		return nil, ErrMissingHeader
	}
	return ParseAuthorization([]string{value})
}

// parseAuthorization parses into h, which the caller allocates: the
// verifier keeps it inside its Check, one allocation less per request.
func parseAuthorization(h *Header, values []string) error {
	switch len(values) {
	case 0:
		return ErrMissingHeader
	case 1:
	default:
		return malformed(strconv.Itoa(len(values)) + " Authorization headers, want exactly one")
	}
	return parseValue(h, values[0])
}

// The parameters, in the order of the bit that marks each as seen.
var paramNames = [...]string{"v", "id", "ts", "nonce", "sig"}

// paramIndex returns the index in paramNames of name, matched without
// regard to case, or -1. (Names are tokens: c|0x20 lower-cases a letter, and
// no other token byte becomes a letter by it.)
func paramIndex(name string) int {
	switch len(name) {
	case 1:
		if name[0]|0x20 == 'v' {
			return 0
		}
	case 2:
		switch string([]byte{name[0] | 0x20, name[1] | 0x20}) {
		case "id":
			return 1
		case "ts":
			return 2
		}
	case 5:
		if strings.EqualFold(name, "nonce") {
			return 3
		}
	case 3:
		if strings.EqualFold(name, "sig") {
			return 4
		}
	}
	return -1
}

func parseValue(h *Header, value string) error {
	if len(value) > MaxHeaderBytes {
		return malformed("header is " + strconv.Itoa(len(value)) + " bytes, limit " + strconv.Itoa(MaxHeaderBytes))
	}
	s := trimOWS(value)
	if s == "" {
		return ErrMissingHeader
	}
	if len(s) < len(Scheme) || !strings.EqualFold(s[:len(Scheme)], Scheme) {
		return malformed("scheme is not " + Scheme)
	}
	s = s[len(Scheme):]
	if s == "" || s[0] != ' ' {
		return malformed("no parameters after the scheme")
	}
	for s != "" && s[0] == ' ' {
		s = s[1:]
	}

	var vals [len(paramNames)]string
	var seen uint
	for {
		name, rest, ok := cutToken(s)
		if !ok {
			return malformed("expected a parameter name")
		}
		rest = trimLeftOWS(rest)
		if rest == "" || rest[0] != '=' {
			return malformed("parameter " + strconv.Quote(name) + " has no value")
		}
		rest = trimLeftOWS(rest[1:])
		var val string
		if val, rest, ok = cutValue(rest); !ok {
			return malformed("parameter " + strconv.Quote(name) + ": bad value")
		}
		idx := paramIndex(name)
		if idx < 0 {
			return malformed("unknown parameter " + strconv.Quote(name))
		}
		if seen&(1<<idx) != 0 {
			return malformed("duplicate parameter " + strconv.Quote(name))
		}
		seen |= 1 << idx
		vals[idx] = val

		rest = trimLeftOWS(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return malformed("unexpected " + strconv.QuoteRune(rune(rest[0])) + " after parameter " + strconv.Quote(name))
		}
		s = trimLeftOWS(rest[1:])
	}

	if seen&1 == 0 {
		return malformed("no v parameter")
	}
	*h = Header{V: vals[0], ID: vals[1], TS: vals[2], Nonce: vals[3], Sig: vals[4]}
	// The version is judged before the other parameters, whose syntax may
	// differ in a version this parser does not know.
	if h.V != Version1 && h.V != Version2 {
		return &HeaderError{Code: CodeUnsupportedVersion, Detail: "v=" + strconv.Quote(h.V)}
	}
	for i, n := range paramNames {
		if seen&(1<<i) == 0 {
			return malformed("no " + n + " parameter")
		}
	}

	// The id is either spelling of the key, as decodeKeyString accepts.
	alphabet := b64Std
	if isURLKeySpelling(h.ID) {
		alphabet = b64URL
	}
	if len(h.ID) != 44 || !decodeBase64(h.Key[:], h.ID, alphabet) || !plausibleCompressed(h.Key[:]) {
		return malformed("id is not a base64 compressed P-256 public key")
	}

	var err error
	if h.Timestamp, err = parseDigits(h.TS); err != nil {
		return malformed("ts: " + err.Error())
	}

	n := b64DecodedLen(len(h.Nonce))
	var dst []byte
	switch {
	case n >= 0 && n <= MaxNonceBytes:
		dst = h.nonce[:n]
	case n > MaxNonceBytes: // refused below, after the base64 check
		dst = make([]byte, n)
	}
	if n < 0 || !decodeBase64(dst, h.Nonce, b64URL) {
		return malformed("nonce is not unpadded base64url")
	}
	if n < MinNonceBytes || n > MaxNonceBytes {
		return malformed("nonce is " + strconv.Itoa(n) + " bytes, want " + strconv.Itoa(MinNonceBytes) + " to " + strconv.Itoa(MaxNonceBytes))
	}

	if h.Signature, err = DecodeSignatureText(h.Sig); err != nil {
		return malformed(err.Error())
	}
	h.nonceLen = n
	return nil
}

// DecodeSignatureText decodes a signature as a header's sig carries it:
// exactly 86 characters of unpadded base64url, nothing around them (no
// line break, which encoding/base64 would skip).
func DecodeSignatureText(s string) ([SignatureSize]byte, error) {
	var sig [SignatureSize]byte
	if len(s) != 86 {
		return sig, errors.New("sig is " + strconv.Itoa(len(s)) + " characters, want 86")
	}
	if !decodeBase64(sig[:], s, b64URL) {
		return sig, errors.New("sig is not unpadded base64url")
	}
	return sig, nil
}

// maxTimestamp is the largest ts a header can carry (18 digits).
const maxTimestamp = 999_999_999_999_999_999

// parseDigits parses a non-empty decimal string with no sign, no spaces and
// no other characters.
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, errBadTimestamp
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errBadTimestamp
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

type timestampError struct{}

func (timestampError) Error() string { return "not 1 to 18 decimal digits" }

var errBadTimestamp error = timestampError{}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimLeftOWS(s string) string {
	for s != "" && isOWS(s[0]) {
		s = s[1:]
	}
	return s
}

func trimOWS(s string) string {
	s = trimLeftOWS(s)
	for s != "" && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool { return charClass[c]&classTchar != 0 }

// Character classes of RFC 9110 and of the URL serialisers, looked up in a
// table: the header parser and the target's fast paths test every byte, and
// in amesh.wasm the comparisons cost several times the load.
const (
	classTchar = 1 << iota
	classQdtext
	classQuotedPair
	classPlainPath // a path byte that serialises as itself and ends no segment
	classFormPlain // a byte the form serializer keeps as it is
	classHost      // a byte of a reg-name host, percent included
)

var charClass = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			t[c] |= classTchar
		}
		if b == '\t' || b == ' ' || b == 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e) || b >= 0x80 {
			t[c] |= classQdtext
		}
		if b == '\t' || b == ' ' || (b >= 0x21 && b <= 0x7e) || b >= 0x80 {
			t[c] |= classQuotedPair
		}
		// The path percent-encode set, and the bytes plainPath stops at.
		if b > 0x20 && b < 0x7f && strings.IndexByte("\"#<>?`{}/\\", b) < 0 {
			t[c] |= classPlainPath
		}
		if isAlpha(b) || b >= '0' && b <= '9' || b == '*' || b == '-' || b == '.' || b == '_' {
			t[c] |= classFormPlain
		}
		if isAlpha(b) || b >= '0' && b <= '9' || strings.IndexByte("-._~!$&'()*+,;=%", b) >= 0 {
			t[c] |= classHost
		}
	}
	return t
}()

func cutToken(s string) (tok, rest string, ok bool) {
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	return s[:i], s[i:], i > 0
}

// cutValue reads an auth-param value: a token or a quoted-string (RFC 9110
// §11.2, §5.6.4), returning it unquoted.
func cutValue(s string) (val, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	if s[0] != '"' {
		return cutToken(s)
	}
	// Fast path: no quoted-pair, the value is a substring. qdtext holds
	// neither '"' nor '\\', so one test per byte finds the end.
	i := 1
	for i < len(s) && isQdtext(s[i]) {
		i++
	}
	if i == len(s) || s[i] != '"' && s[i] != '\\' {
		return "", "", false
	}
	if s[i] == '"' {
		return s[1:i], s[i+1:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], true
		case c == '\\':
			i++
			if i == len(s) || !isQuotedPairChar(s[i]) {
				return "", "", false
			}
			b.WriteByte(s[i])
		case isQdtext(c):
			b.WriteByte(c)
		default:
			return "", "", false
		}
	}
	return "", "", false
}

func isQdtext(c byte) bool { return charClass[c]&classQdtext != 0 }

func isQuotedPairChar(c byte) bool { return charClass[c]&classQuotedPair != 0 }

// String formats h as an Authorization header value.
func (h *Header) String() string {
	return FormatHeader(h.V, h.ID, h.TS, h.Nonce, h.Sig)
}

// FormatHeader builds an Authorization value from its five parameters, in the
// order and quoting existing clients use.
func FormatHeader(v, id, ts, nonce, sig string) string {
	return Scheme + ` v="` + v + `",id="` + id + `",ts="` + ts + `",nonce="` + nonce + `",sig="` + sig + `"`
}
