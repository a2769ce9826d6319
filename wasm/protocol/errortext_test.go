package protocol_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// The package builds its errors without fmt (see doc.go). These cases hold
// the texts to the fmt formats they replaced, quoting included, since logs
// and tests outside the package see them, and check that wrapped errors
// still unwrap.

// errText returns err's text, or "<nil>".
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestErrorTextsAsWithFmt(t *testing.T) {
	f := newFixture(t, nil)
	h, err := protocol.ParseAuthorization(f.sign(t, protocol.SignParams{}).Authorization)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(values ...string) error { _, err := protocol.ParseAuthorization(values); return err }
	malformed := func(format string, args ...any) string {
		return "amesh: malformed_header: " + fmt.Sprintf(format, args...)
	}
	// An x coordinate that is not on the curve, for ParseAuthorization's
	// full key check.
	var offCurve string
	var offCurveErr error
	for x := byte(1); offCurveErr == nil; x++ {
		k := make([]byte, 33)
		k[0], k[32] = 2, x
		offCurve = base64.StdEncoding.EncodeToString(k)
		_, offCurveErr = protocol.DecodePublicKey(offCurve)
	}

	cases := []struct{ name, got, want string }{
		{"headers", errText(parse("a", "b")), malformed("%d Authorization headers, want exactly one", 2)},
		{"long", errText(parse("AuthMesh " + strings.Repeat("x", 1100))), malformed("header is %d bytes, limit %d", 1109, 1024)},
		{"scheme", errText(parse("Bearer x")), malformed("scheme is not %s", "AuthMesh")},
		{"no value", errText(parse(`AuthMesh v`)), malformed("parameter %q has no value", "v")},
		{"bad value", errText(parse(`AuthMesh v="1`)), malformed("parameter %q: bad value", "v")},
		{"unknown", errText(parse(`AuthMesh v="1",it's=1`)), malformed("unknown parameter %q", "it's")},
		{"duplicate", errText(parse(`AuthMesh v="1",V="1"`)), malformed("duplicate parameter %q", "V")},
		{"unexpected ASCII", errText(parse(`AuthMesh v="1";`)), malformed("unexpected %q after parameter %q", byte(';'), "v")},
		{"unexpected byte", errText(parse("AuthMesh v=\"1\"\xff")), malformed("unexpected %q after parameter %q", byte(0xff), "v")},
		{"unexpected control", errText(parse("AuthMesh v=1\x01")), malformed("unexpected %q after parameter %q", byte(1), "v")},
		{"missing", errText(parse(`AuthMesh v="1",id="x"`)), malformed("no %s parameter", "ts")},
		{"version", errText(parse("AuthMesh v=\"3\u00e9\"")), "amesh: unsupported_version: v=" + fmt.Sprintf("%q", "3\u00e9")},
		{"ts", errText(parse(protocol.FormatHeader(h.V, h.ID, "x1", h.Nonce, h.Sig))), malformed("ts: %v", "not 1 to 18 decimal digits")},
		{"nonce", errText(parse(protocol.FormatHeader(h.V, h.ID, h.TS, "AAAA", h.Sig))), malformed("nonce is %d bytes, want %d to %d", 3, 8, 48)},
		{"sig", errText(parse(protocol.FormatHeader(h.V, h.ID, h.TS, h.Nonce, h.Sig[:84]))), malformed("sig is %d characters, want 86", 84)},
		{"id", errText(parse(protocol.FormatHeader(h.V, offCurve, h.TS, h.Nonce, h.Sig))), malformed("id: %v", offCurveErr)},
	}

	_, keyLen := protocol.ParsePublicKey(make([]byte, 5))
	_, keyChars := protocol.DecodePublicKey("abc")
	_, keyB64 := protocol.DecodePublicKey(strings.Repeat("!", 44))
	_, method := (&protocol.Message{Version: "1", Method: "GE\u00e9T"}).Bytes()
	_, version := (&protocol.Message{Version: "3\n", Method: "GET"}).Bytes()
	_, hostChar := protocol.Authority("a\xffb", "https")
	_, hostSpace := protocol.Authority("a b", "https")
	_, skew := protocol.NewVerifier(protocol.Config{AllowList: protocol.StaticAllowList{}, Nonces: protocol.NewMemoryNonceStore(1), ClockSkew: 500 * time.Millisecond})
	_, authority := protocol.NewVerifier(protocol.Config{AllowList: protocol.StaticAllowList{}, Nonces: protocol.NewMemoryNonceStore(1), Authorities: []string{"a b"}})
	sigLen := f.key.Public().VerifyDigest(make([]byte, 32), make([]byte, 3))
	lowS := protocol.NormalizeLowS(make([]byte, 3))
	_, nonceLen := protocol.SignRequest(f.key, protocol.SignParams{Method: "GET", Target: "/", Time: t0, Nonce: make([]byte, 4)})
	_, short := protocol.SignRequest(shortSigner{f.key}, protocol.SignParams{Method: "GET", Target: "/", Time: t0})
	_, failing := protocol.SignRequest(failingSigner{f.key}, protocol.SignParams{Method: "GET", Target: "/", Time: t0})
	_, badKey := protocol.SignRequest(badKeySigner{f.key}, protocol.SignParams{Method: "GET", Target: "/", Time: t0})
	_, noRand := protocol.SignRequest(f.key, protocol.SignParams{Method: "GET", Target: "/", Time: t0, Rand: strings.NewReader("")})
	cases = append(cases, []struct{ name, got, want string }{
		{"key length", errText(keyLen), fmt.Sprintf("amesh: public key is %d bytes, want %d (compressed P-256 point)", 5, 33)},
		{"key chars", errText(keyChars), fmt.Sprintf("amesh: public key is %d characters, want 44", 3)},
		{"key base64", errText(keyB64), fmt.Sprintf("amesh: public key is not base64: %v", base64.CorruptInputError(0))},
		{"method", errText(method), fmt.Sprintf("amesh: method %q is not a token", "GE\u00e9T")},
		{"version", errText(version), fmt.Sprintf("amesh: unsupported version %q", "3\n")},
		{"host byte", errText(hostChar), fmt.Sprintf("amesh: authority: character %q not allowed in a host", byte(0xff))},
		{"host space", errText(hostSpace), fmt.Sprintf("amesh: authority: character %q not allowed in a host", byte(' '))},
		{"skew", errText(skew), fmt.Sprintf("amesh: clock skew %v is below one second", 500*time.Millisecond)},
		{"authority", errText(authority), fmt.Sprintf("amesh: configured authority %q: %v", "a b", errText(hostSpace))},
		{"sig length", errText(sigLen), fmt.Sprintf("signature is %d bytes, want %d", 3, 64)},
		{"low-S length", errText(lowS), fmt.Sprintf("amesh: signature is %d bytes, want %d", 3, 64)},
		{"nonce length", errText(nonceLen), fmt.Sprintf("amesh: nonce of %d bytes, want %d to %d", 4, 8, 48)},
		{"signer short", errText(short), fmt.Sprintf("amesh: signer returned %d bytes, want %d", 63, 64)},
		{"signer fails", errText(failing), fmt.Sprintf("amesh: sign request: %v", errSigner)},
		{"signer key", errText(badKey), fmt.Sprintf("amesh: signer: %v", errText(keyLen))},
		{"nonce source", errText(noRand), "amesh: nonce: EOF"},
	}...)
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, c.got, c.want)
		}
	}

	// Wrapped errors unwrap, as with %w.
	var corrupt base64.CorruptInputError
	if !errors.As(keyB64, &corrupt) || !errors.Is(failing, errSigner) || !errors.Is(parse("x"), protocol.ErrMalformedHeader) {
		t.Error("wrapped errors do not unwrap")
	}
}

func TestDecisionTextsAsWithFmt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *protocol.Config) { c.Authorities = []string{"api.example.test"} })
	other, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger := &fixture{key: other}
	unknown := stranger.sign(t, protocol.SignParams{})
	old := f.sign(t, protocol.SignParams{Time: t0.Add(-time.Hour)})
	wrongHost := f.sign(t, protocol.SignParams{Version: "2", Authority: "other.test"})
	replay := f.sign(t, protocol.SignParams{})
	big := f.sign(t, protocol.SignParams{})
	big.Body = make([]byte, protocol.DefaultMaxBodyBytes+1)
	f.v.Verify(ctx, replay, t0)
	hdr, err := protocol.ParseAuthorization(unknown.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	replayHdr, err := protocol.ParseAuthorization(replay.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		req  *protocol.Request
		want string
	}{
		{unknown, fmt.Sprintf("key %s (%s) is not in the allow list", hdr.ID, other.Public().DeviceID())},
		{old, fmt.Sprintf("ts %d is %ds from now, allowed ±%ds", t0.Unix()-3600, 3600, 30)},
		{wrongHost, fmt.Sprintf("authority %q is not one this verifier answers for", "other.test")},
		{replay, fmt.Sprintf("nonce %s already used", replayHdr.Nonce)},
		{big, fmt.Sprintf("body of %d bytes, limit %d", protocol.DefaultMaxBodyBytes+1, protocol.DefaultMaxBodyBytes)},
	}
	for _, c := range cases {
		if got := errText(f.v.Verify(ctx, c.req, t0).Err); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}

	// A target device that signs.
	list, err := protocol.NewStaticAllowList(&protocol.Device{Name: "tv", Role: protocol.RoleTarget, Key: other.Public()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := protocol.NewVerifier(protocol.Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(0)})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("device %s has role %q, not controller", other.Public().DeviceID(), "target")
	if got := errText(v.Verify(ctx, unknown, t0).Err); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

var errSigner = errors.New("the TPM said no")

type shortSigner struct{ *protocol.PrivateKey }

func (shortSigner) SignDigest([]byte) ([]byte, error) { return make([]byte, 63), nil }

type failingSigner struct{ *protocol.PrivateKey }

func (failingSigner) SignDigest([]byte) ([]byte, error) { return nil, errSigner }

type badKeySigner struct{ *protocol.PrivateKey }

func (badKeySigner) PublicKey() []byte { return make([]byte, 5) }
