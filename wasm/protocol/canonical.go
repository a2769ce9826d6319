package protocol

import (
	"errors"
	"strconv"
	"strings"

	"github.com/amesh-go/amesh/wasm/internal/sha256"
)

// EmptyBodyHash is the BODYHASH line for an empty body.
const EmptyBodyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// BodyHash returns the lower-case hex SHA-256 of body.
func BodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	var buf [2 * sha256.Size]byte
	return string(appendLowerHex(buf[:0], sum[:]))
}

const hexLower = "0123456789abcdef"

// appendLowerHex appends the lower-case hex form of b: encoding/hex's
// AppendEncode, whose package imports fmt (see doc.go).
func appendLowerHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexLower[c>>4], hexLower[c&15])
	}
	return dst
}

// Message holds the inputs of a canonical string. Target is the TARGET line,
// already canonical (see CanonicalTarget and ClientCanonicalTarget);
// Authority is used by version 2 only and must be normalised (see Authority).
type Message struct {
	Version   string
	Method    string
	Authority string
	Target    string
	TS        string
	Nonce     string
	BodyHash  string
}

// Bytes returns the canonical string: "AMv1" or "AMv2" and the other lines
// joined by "\n", with no trailing newline.
func (m *Message) Bytes() ([]byte, error) {
	method, err := canonicalMethod(m.Method)
	if err != nil {
		return nil, err
	}
	for _, f := range [...]string{m.Target, m.TS, m.Nonce, m.BodyHash, m.Authority} {
		if strings.ContainsAny(f, "\n\r") {
			return nil, errors.New("amesh: canonical field contains a line break")
		}
	}
	switch m.Version {
	case Version1:
	case Version2:
		if m.Authority == "" {
			return nil, errors.New("amesh: version 2 needs an authority")
		}
	default:
		return nil, errors.New("amesh: unsupported version " + strconv.Quote(m.Version))
	}
	n := messageHeadLen(m.Version, method, m.Authority, m.Target, m.TS, m.Nonce) + len(m.BodyHash)
	b := appendMessageHead(make([]byte, 0, n), m.Version, method, m.Authority, m.Target, m.TS, m.Nonce)
	return append(b, m.BodyHash...), nil
}

// messageHeadLen is the length of the canonical string up to its BODYHASH
// line.
func messageHeadLen(version, method, authority, target, ts, nonce string) int {
	n := 5 + len(method) + 1 + len(target) + 1 + len(ts) + 1 + len(nonce) + 1
	if version == Version2 {
		n += len(authority) + 1
	}
	return n
}

// appendMessageHead appends the canonical string up to its BODYHASH line.
// The fields are already checked: version is Version1 or Version2, and no
// field holds a line break.
func appendMessageHead(b []byte, version, method, authority, target, ts, nonce string) []byte {
	b = append(b, "AMv"...)
	b = append(b, version...)
	b = append(b, '\n')
	b = append(b, method...)
	if version == Version2 {
		b = append(b, '\n')
		b = append(b, authority...)
	}
	b = append(b, '\n')
	b = append(b, target...)
	b = append(b, '\n')
	b = append(b, ts...)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	return b
}

// canonicalMethod upper-cases an HTTP method (ASCII only) and checks that it
// is a token, so that no method can smuggle a line into the canonical string.
func canonicalMethod(m string) (string, error) {
	if m == "" {
		return "", errors.New("amesh: empty method")
	}
	upper := true
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !isTchar(c) {
			return "", errors.New("amesh: method " + strconv.Quote(m) + " is not a token")
		}
		if c >= 'a' && c <= 'z' {
			upper = false
		}
	}
	if upper {
		return m, nil
	}
	return strings.ToUpper(m), nil
}

// CanonicalV1 builds the version 1 canonical string from a method, a target
// as the client was given it, ts, nonce and body: the signing side of the
// existing clients.
func CanonicalV1(method, clientTarget, ts, nonce string, body []byte) (string, error) {
	t, err := ClientCanonicalTarget(clientTarget)
	if err != nil {
		return "", err
	}
	m := Message{Version: Version1, Method: method, Target: t, TS: ts, Nonce: nonce, BodyHash: BodyHash(body)}
	b, err := m.Bytes()
	return string(b), err
}

// Authority normalises a request's authority for version 2: the Host header
// (or :authority) lower-cased, with the scheme's default port (80 for http,
// 443 for https) removed and the port written without leading zeros. The host
// must be ASCII (IDNs travel in their punycode form); IPv6 literals keep their
// brackets.
func Authority(hostport, scheme string) (string, error) {
	if hostport == "" {
		return "", errors.New("amesh: empty authority")
	}
	if len(hostport) > 255+6 {
		return "", errors.New("amesh: authority too long")
	}
	host, port := hostport, ""
	upper := true // unknown: an IPv6 literal's hex digits may be upper case
	if hostport[0] == '[' {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", errors.New("amesh: authority: unterminated IPv6 literal")
		}
		host, port = hostport[:end+1], hostport[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", errors.New("amesh: authority: junk after IPv6 literal")
			}
			port = port[1:]
		}
		for i := 1; i < len(host)-1; i++ {
			c := host[i]
			if !isHex(c) && c != ':' && c != '.' {
				return "", errors.New("amesh: authority: bad IPv6 literal")
			}
		}
	} else {
		if i := strings.IndexByte(hostport, ':'); i >= 0 {
			host, port = hostport[:i], hostport[i+1:]
		}
		if host == "" {
			return "", errors.New("amesh: authority has no host")
		}
		upper = false
		for i := 0; i < len(host); i++ {
			c := host[i]
			if charClass[c]&classHost == 0 {
				return "", errors.New("amesh: authority: character " + strconv.QuoteRune(rune(c)) + " not allowed in a host")
			}
			upper = upper || c >= 'A' && c <= 'Z'
		}
	}
	if upper {
		host = strings.ToLower(host)
	}
	if port == "" {
		return host, nil
	}
	if len(port) > 5 {
		return "", errors.New("amesh: authority: bad port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port[0] == '+' {
		return "", errors.New("amesh: authority: bad port")
	}
	switch {
	case p == 80 && strings.EqualFold(scheme, "http"),
		p == 443 && strings.EqualFold(scheme, "https"):
		return host, nil
	}
	return host + ":" + strconv.FormatUint(p, 10), nil
}
