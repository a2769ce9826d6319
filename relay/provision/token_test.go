package provision

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/wasm/protocol"
)

const testRelay = "ws://127.0.0.1:1/ws"

func newKey(t testing.TB) *protocol.PrivateKey {
	t.Helper()
	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t testing.TB, k *protocol.PrivateKey, opts IssueOptions) *Token {
	t.Helper()
	if opts.RelayURL == "" {
		opts.RelayURL = testRelay
	}
	if opts.ControllerName == "" {
		opts.ControllerName = "laptop"
	}
	tok, err := Issue(k, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestIssueParseRoundTrip(t *testing.T) {
	k := newKey(t)
	now := time.Unix(1_800_000_000, 700_000_000)
	tok := issue(t, k, IssueOptions{TTL: 90 * time.Minute, ControllerName: " alice's\tlaptop ", TargetName: "api-1\x1b[31m",
		Now: func() time.Time { return now }})
	s := tok.Encode()
	if !strings.HasPrefix(s, Prefix) || len(s) > 400 {
		t.Fatalf("encoded token %q: wrong prefix or too long for an environment variable", s)
	}
	got, err := Parse("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"ID", got.ID(), tok.ID()},
		{"issued", got.IssuedAt(), time.Unix(1_800_000_000, 0)},
		{"expires", got.Expires(), time.Unix(1_800_000_000+90*60, 0)},
		{"relay", got.RelayURL(), testRelay},
		{"target name", got.TargetName(), "api-1[31m"},
		{"controller name", got.Controller().Name, "alice's laptop"},
		{"controller ID", got.Controller().DeviceID, k.Public().DeviceID()},
		{"role", got.Controller().Role, pairing.RoleController},
		{"token ID in controller", got.Controller().TokenID, tok.ID()},
		{"issued by", got.IssuedBy(k.Public()), true},
		{"re-encoded", got.Encode(), s},
		{"secret", got.secret, tok.secret},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if !strings.HasPrefix(tok.ID(), "bt_") || len(tok.ID()) != 25 {
		t.Errorf("ID %q", tok.ID())
	}
	if other := issue(t, k, IssueOptions{}); other.ID() == tok.ID() || other.secret == tok.secret {
		t.Error("two tokens share an ID or a secret")
	}
}

func TestIssueRefuses(t *testing.T) {
	k := newKey(t)
	tests := []struct {
		name string
		opts IssueOptions
	}{
		{"lifetime over 24 h", IssueOptions{RelayURL: testRelay, TTL: 24*time.Hour + time.Second}},
		{"lifetime under a minute", IssueOptions{RelayURL: testRelay, TTL: 59 * time.Second}},
		{"negative lifetime", IssueOptions{RelayURL: testRelay, TTL: -time.Hour}},
		{"no relay", IssueOptions{}},
		{"relay not a URL", IssueOptions{RelayURL: "not a url"}},
		{"relay with a space", IssueOptions{RelayURL: "ws://a b/ws"}},
		{"relay of another scheme", IssueOptions{RelayURL: "ftp://relay"}},
		{"relay too long", IssueOptions{RelayURL: "ws://" + strings.Repeat("a", MaxRelayURL) + "/ws"}},
	}
	for _, tc := range tests {
		if _, err := Issue(k, tc.opts); err == nil {
			t.Errorf("%s: Issue succeeded", tc.name)
		}
	}
	if _, err := Issue(nil, IssueOptions{RelayURL: testRelay}); err == nil {
		t.Error("Issue without a signer succeeded")
	}
	tok := issue(t, k, IssueOptions{TTL: MaxTTL})
	if got := tok.Expires().Sub(tok.IssuedAt()); got != MaxTTL {
		t.Errorf("24 h token lives %v", got)
	}
	if got := issue(t, k, IssueOptions{}).Expires().Sub(tok.IssuedAt()); got < DefaultTTL-time.Second || got > DefaultTTL+time.Second {
		t.Errorf("default lifetime %v", got)
	}
}

func TestCheckExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok := issue(t, newKey(t), IssueOptions{TTL: time.Hour, Now: func() time.Time { return now }})
	for _, tc := range []struct {
		at   time.Time
		want error
	}{
		{now, nil},
		{now.Add(time.Hour - time.Second), nil},
		{now.Add(time.Hour), ErrExpired},
		{now.Add(48 * time.Hour), ErrExpired},
	} {
		if err := tok.Check(tc.at); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("Check at +%v = %v, want %v", tc.at.Sub(now), err, tc.want)
		}
	}
}

// resign returns the text form of a token whose body was changed by edit
// and signed again by k: it isolates the structural checks from the
// signature check.
func resign(t *testing.T, k *protocol.PrivateKey, tok *Token, edit func(body []byte) []byte) string {
	t.Helper()
	body := edit(append([]byte(nil), tok.body...))
	u := &Token{body: body}
	sig, err := signDigest(k, k.Public(), u.digest())
	if err != nil {
		t.Fatal(err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(append(body, sig...))
}

func TestParseRejects(t *testing.T) {
	k := newKey(t)
	now := time.Unix(1_800_000_000, 0)
	tok := issue(t, k, IssueOptions{TargetName: "api", Now: func() time.Time { return now }})
	good := tok.Encode()
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(good, Prefix))
	enc := func(b []byte) string { return Prefix + base64.RawURLEncoding.EncodeToString(b) }
	urlAt := fixedLen // the relay URL's length field
	nameAt := urlAt + 2 + len(testRelay)

	// A high-S twin of the valid signature verifies under plain ECDSA but
	// not under the protocol's rules.
	highS := append([]byte(nil), raw...)
	sig := highS[len(highS)-64:]
	n, _ := new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(sig[32:])

	otherKey := newKey(t)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"no prefix", strings.TrimPrefix(good, Prefix), ErrMalformed},
		{"other version", "amesh-bt2." + strings.TrimPrefix(good, Prefix), ErrMalformed},
		{"upper-case prefix", strings.ToUpper(Prefix) + strings.TrimPrefix(good, Prefix), ErrMalformed},
		{"padded base64", good + "=", ErrMalformed},
		{"standard base64", Prefix + base64.RawStdEncoding.EncodeToString(raw) + "+/", ErrMalformed},
		{"inner space", good[:40] + " " + good[40:], ErrMalformed},
		{"truncated", good[:len(good)-10], ErrMalformed},
		{"too long", good + strings.Repeat("A", MaxTokenLen), ErrMalformed},
		{"a byte appended", enc(append(append([]byte(nil), raw...), 0)), ErrMalformed},
		{"a byte cut", enc(raw[:len(raw)-1]), ErrMalformed},
		{"version 2 body", enc(append([]byte{2}, raw[1:]...)), ErrMalformed},
		{"flags set", enc(append([]byte{1, 1}, raw[2:]...)), ErrMalformed},
		{"high-S signature", enc(highS), ErrTampered},
		{"signature by another key", resign(t, otherKey, tok, func(b []byte) []byte { return b }), ErrTampered},
		{"expiry moved", enc(func() []byte {
			b := append([]byte(nil), raw...)
			b[17]++
			return b
		}()), ErrTampered},
		{"secret changed", enc(func() []byte {
			b := append([]byte(nil), raw...)
			b[40] ^= 1
			return b
		}()), ErrTampered},
		{"lifetime over 24 h, signed", resign(t, k, tok, func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[10:], uint64(now.Add(25*time.Hour).Unix()))
			return b
		}), ErrMalformed},
		{"expiry before issue, signed", resign(t, k, tok, func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[10:], uint64(now.Add(-time.Second).Unix()))
			return b
		}), ErrMalformed},
		{"zero issue time, signed", resign(t, k, tok, func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[2:], 0)
			return b
		}), ErrMalformed},
		{"controller key not a point, signed", resign(t, k, tok, func(b []byte) []byte {
			b[66] = 5
			return b
		}), ErrMalformed},
		{"URL length past the end, signed", resign(t, k, tok, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[urlAt:], 60000)
			return b
		}), ErrMalformed},
		{"URL of another scheme, signed", resign(t, k, tok, func(b []byte) []byte {
			copy(b[urlAt+2:], "xx")
			return b
		}), ErrMalformed},
		{"name with a control character, signed", resign(t, k, tok, func(b []byte) []byte {
			b[nameAt+1] = 0x1b
			return b
		}), ErrMalformed},
		{"name length past the end, signed", resign(t, k, tok, func(b []byte) []byte {
			b[nameAt] = 200
			return b
		}), ErrMalformed},
		{"empty controller name, signed", resign(t, k, tok, func(b []byte) []byte {
			return append(b[:nameAt:nameAt], append([]byte{0}, b[nameAt+1+int(b[nameAt]):]...)...)
		}), ErrMalformed},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Parse = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Every single-bit change anywhere is refused.
	for i := range raw {
		for _, bit := range []byte{1, 0x80} {
			b := append([]byte(nil), raw...)
			b[i] ^= bit
			if _, err := Parse(enc(b)); err == nil {
				t.Fatalf("a token with bit %#x of byte %d flipped parsed", bit, i)
			}
		}
	}
}

// TestSecretNeverPrinted: a token handed to fmt, slog or encoding/json by
// mistake shows its ID, never its secret or text form.
func TestSecretNeverPrinted(t *testing.T) {
	tok := issue(t, newKey(t), IssueOptions{TargetName: "api"})
	mk, _, sk := tok.keys()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("issued", "token", tok)
	log.Info("issued", slog.Any("token", *tok))
	//lint:ignore SA9005 the point is that encoding/json finds nothing to print
	js, _ := json.Marshal(tok)
	out := fmt.Sprintf("%v %+v %#v %s %x %q %v", tok, tok, tok, tok, tok, tok, *tok) + logs.String() + string(js)
	if !strings.Contains(out, tok.ID()) {
		t.Errorf("the ID is not shown: %s", out)
	}
	for name, secret := range map[string]string{
		"token":            tok.Encode(),
		"token body":       strings.TrimPrefix(tok.Encode(), Prefix)[:40],
		"secret (hex)":     hex.EncodeToString(tok.secret[:]),
		"secret (base64)":  base64.StdEncoding.EncodeToString(tok.secret[:])[:20],
		"secret (b64url)":  base64.RawURLEncoding.EncodeToString(tok.secret[:])[:20],
		"mailbox key":      hex.EncodeToString(mk[:]),
		"seal key":         hex.EncodeToString(sk),
		"secret (decimal)": fmt.Sprint(tok.secret),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s appears in printed output: %s", name, out)
		}
	}
	var zero Token
	if s := fmt.Sprint(zero); !strings.Contains(s, "empty") {
		t.Errorf("zero token prints %q", s)
	}
}
