package pairing

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/flynn/noise"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/protocol"
)

func TestParseOuterRejects(t *testing.T) {
	c := make([]byte, commitLen)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown type", []byte{0x7f}},
		{"commit wrong version", append([]byte{msgCommit, 2}, c...)},
		{"commit short", append([]byte{msgCommit, Version}, c[1:]...)},
		{"hello short", append([]byte{msgHello}, make([]byte, helloLen-1)...)},
		{"hello long", append([]byte{msgHello}, make([]byte, helloLen+1)...)},
		{"reply short", append([]byte{msgReply}, make([]byte, replyLen-1)...)},
		{"sealed without tag", append([]byte{msgSealed}, make([]byte, tagLen-1)...)},
		{"sealed too long", append([]byte{msgSealed}, make([]byte, maxSealedLen+1)...)},
	}
	for _, tc := range tests {
		if _, err := parseOuter(tc.in); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v, want errMalformed", tc.name, err)
		}
	}
}

func TestParseInnerRejects(t *testing.T) {
	key := newKey(t)
	id := identity{role: RoleTarget, key: key.PublicKey(), name: "n", sig: make([]byte, 64)}
	good := id.encode()
	if _, err := parseInner(good); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown", []byte{0x33}},
		{"confirm with body", []byte{inConfirm, 0}},
		{"reject without reason", []byte{inReject}},
		{"reject unknown reason", []byte{inReject, 99}},
		{"identity truncated", good[:len(good)-1]},
		{"identity extended", append(append([]byte(nil), good...), 0)},
		{"identity bad role", append([]byte{inIdentity, 9}, good[2:]...)},
		{"identity name not utf-8", identity{role: RoleTarget, key: key.PublicKey(), name: "\xff", sig: make([]byte, 64)}.encode()},
		{"identity short", []byte{inIdentity, byte(RoleTarget)}},
		{"identity name too long", identity{role: RoleTarget, key: key.PublicKey(), name: strings.Repeat("a", MaxNameBytes+1), sig: make([]byte, 64)}.encode()},
	}
	for _, tc := range tests {
		if _, err := parseInner(tc.in); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v, want errMalformed", tc.name, err)
		}
	}
}

// An identity proves possession of the key for one session, one role and
// one name only.
func TestIdentityBinding(t *testing.T) {
	key := newKey(t)
	h := bytes.Repeat([]byte{1}, 32)
	id, err := signIdentity(key, h, RoleController, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyIdentity(id, h, RoleController); err != nil {
		t.Fatalf("genuine identity: %v", err)
	}
	otherSession := bytes.Repeat([]byte{2}, 32)
	renamed := id
	renamed.name = "evil"
	otherKey := id
	otherKey.key = newKey(t).PublicKey()
	highS := id
	highS.sig = vectors.HighS(id.sig)
	asTarget := id
	asTarget.role = RoleTarget
	tests := []struct {
		name string
		id   identity
		h    []byte
		role Role
		want error
	}{
		{"another session", id, otherSession, RoleController, ErrBadSignature},
		{"renamed", renamed, h, RoleController, ErrBadSignature},
		{"another key", otherKey, h, RoleController, ErrBadSignature},
		{"high-S twin", highS, h, RoleController, ErrBadSignature},
		{"role relabelled", asTarget, h, RoleTarget, ErrBadSignature},
		{"wrong role expected", id, h, RoleTarget, ErrProtocol},
	}
	for _, tc := range tests {
		if _, err := verifyIdentity(tc.id, tc.h, tc.role); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// A signer that returns high-S signatures (as TPMs do) is normalised.
type highSSigner struct{ *protocol.PrivateKey }

func (s highSSigner) SignDigest(d []byte) ([]byte, error) {
	sig, err := s.PrivateKey.SignDigest(d)
	if err != nil {
		return nil, err
	}
	return vectors.HighS(sig), nil
}

type brokenSigner struct{ *protocol.PrivateKey }

func (s brokenSigner) SignDigest([]byte) ([]byte, error) { return make([]byte, 64), nil }

func TestSignerQuirks(t *testing.T) {
	h := make([]byte, 32)
	id, err := signIdentity(highSSigner{newKey(t)}, h, RoleTarget, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyIdentity(id, h, RoleTarget); err != nil {
		t.Fatalf("high-S signer not normalised: %v", err)
	}
	if _, err := signIdentity(brokenSigner{newKey(t)}, h, RoleTarget, "x"); err == nil {
		t.Fatal("an invalid signature from the signer was accepted")
	}
}

func TestVerificationCodeDerivation(t *testing.T) {
	h := make([]byte, 32)
	a := verificationCode(h)
	if len(a) != 6 || strings.Trim(a, "0123456789") != "" {
		t.Fatalf("code %q", a)
	}
	h[31] = 1
	if verificationCode(h) == a {
		t.Fatal("codes of different sessions are equal")
	}
	// Domain separation: the code is not simply a prefix of the
	// commitment or identity hashes of the same input.
	c := commitment(h)
	if verificationCode(h) == verificationCode(c[:]) {
		t.Fatal("suspicious equality")
	}
}

func TestWireName(t *testing.T) {
	long := strings.Repeat("日", 200) // 3 bytes each
	if n := wireName(long); len(n) != 126 || !strings.HasPrefix(long, n) {
		t.Fatalf("wireName cut to %d bytes", len(n))
	}
	// A pending space never pushes a name over its limits, nor ends it.
	for _, in := range []string{strings.Repeat("a", 63) + " b", strings.Repeat("é", 63) + " é", strings.Repeat("a", 127) + " b"} {
		n := SanitizeName(in)
		if utf8.RuneCountInString(n) > MaxNameRunes || len(n) > MaxNameBytes || strings.HasSuffix(n, " ") {
			t.Errorf("SanitizeName(%q) = %q", in, n)
		}
	}
	if got := wireName("  a\tb\x07 "); got != "a b" {
		t.Fatalf("wireName = %q", got)
	}
	if got := SanitizeName("\u202e\x1b"); got != "(unnamed)" {
		t.Fatalf("SanitizeName = %q", got)
	}
}

func FuzzParseOuter(f *testing.F) {
	f.Add(append([]byte{msgCommit, Version}, make([]byte, commitLen)...))
	f.Add(append([]byte{msgHello}, make([]byte, helloLen)...))
	f.Add(append([]byte{msgReply}, make([]byte, replyLen)...))
	f.Add(append([]byte{msgSealed}, make([]byte, tagLen+3)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseOuter(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if out := encodeOuter(m.typ, m.body); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding %x gave %x", b, out)
		}
	})
}

func FuzzParseInner(f *testing.F) {
	key, _ := protocol.GeneratePrivateKey(nil)
	f.Add(identity{role: RoleController, key: key.PublicKey(), name: "laptop", sig: make([]byte, 64)}.encode())
	f.Add([]byte{inConfirm})
	f.Add([]byte{inAck})
	f.Add([]byte{inDone})
	f.Add([]byte{inReject, byte(rejectMismatch)})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseInner(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		var out []byte
		switch m.typ {
		case inIdentity:
			out = m.id.encode()
		case inReject:
			out = encodeReject(m.reason)
		default:
			out = []byte{m.typ}
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding %x gave %x", b, out)
		}
		if m.typ == inIdentity {
			checkStorableName(t, SanitizeName(m.id.name))
		}
	})
}

// scripted is a transport that plays back the fuzzer's messages as the
// peer, swallows what the device sends, and reports a disconnection when
// the script ends.
type scripted struct{ msgs [][]byte }

func (s *scripted) Send(context.Context, []byte) error { return nil }

func (s *scripted) Recv(context.Context) ([]byte, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

// split cuts fuzz input into messages, each preceded by a 2-byte length.
func split(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// FuzzHandshake feeds arbitrary peer messages to either side of the
// handshake: it must neither panic nor record anything, since no input
// made without the session's keys can complete a pairing.
func FuzzHandshake(f *testing.F) {
	commit := append([]byte{msgCommit, Version}, make([]byte, commitLen)...)
	hello := append([]byte{msgHello}, bytes.Repeat([]byte{9}, helloLen)...)
	frame := func(ms ...[]byte) []byte {
		var out []byte
		for _, m := range ms {
			out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
			out = append(out, m...)
		}
		return out
	}
	f.Add(frame(commit), true)
	f.Add(frame(hello, append([]byte{msgSealed}, make([]byte, 40)...)), false)
	f.Add(frame(commit, append([]byte{msgReply}, make([]byte, replyLen)...)), true)
	key, _ := protocol.GeneratePrivateKey(nil)
	f.Fuzz(func(t *testing.T, data []byte, controller bool) {
		s := newSession(context.Background(), &scripted{msgs: split(data)})
		defer s.stop()
		committed := false
		commit := func(context.Context, Peer) error { committed = true; return nil }
		var err error
		if controller {
			_, err = s.runController(&InviteOptions{Signer: key, Commit: commit})
		} else {
			_, err = s.runTarget(&ListenOptions{Signer: key, Commit: commit,
				Prompt: func(context.Context, Peer) (string, error) { return "000000", nil }})
		}
		if err == nil || committed {
			t.Fatalf("forged messages completed a pairing (err %v, committed %v)", err, committed)
		}
	})
}

// checkStorableName applies the allow list's rules for names (host/device):
// what the pairing hands to its caller must be storable as it is.
func checkStorableName(t *testing.T, n string) {
	t.Helper()
	if n == "" || len(n) > MaxNameBytes || utf8.RuneCountInString(n) > MaxNameRunes || !utf8.ValidString(n) || strings.TrimSpace(n) != n {
		t.Fatalf("sanitised name %q is not storable", n)
	}
	for _, r := range n {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			t.Fatalf("sanitised name %q holds %U", n, r)
		}
	}
}

func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"web-01", "\x1b[31mred", " a\u2028b ", "\u202eevil", "\xff\xfe", strings.Repeat("日", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := SanitizeName(s)
		checkStorableName(t, n)
		if SanitizeName(n) != n {
			t.Fatalf("SanitizeName is not idempotent on %q", n)
		}
	})
}

// The committed-key wrapper changes nothing on the wire: a stock
// Noise_NN_25519_ChaChaPoly_SHA256 initiator completes the handshake with
// the target's responder and derives the same handshake hash.
func TestCommittedKeyIsStockNoise(t *testing.T) {
	stock := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)
	if string(stock.Name()) != string(cipherSuite.Name()) {
		t.Fatalf("suite name %q, want %q", cipherSuite.Name(), stock.Name())
	}
	e, err := cipherSuite.GenerateKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := commitment(e.Public)
	resp, _ := noise.NewHandshakeState(noise.Config{CipherSuite: cipherSuite, Pattern: noise.HandshakeNN,
		Prologue: prologue(c[:]), Random: committedKey{e}})
	init, _ := noise.NewHandshakeState(noise.Config{CipherSuite: stock, Pattern: noise.HandshakeNN,
		Initiator: true, Prologue: prologue(c[:])})
	m1, _, _, _ := init.WriteMessage(nil, nil)
	if _, _, _, err := resp.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, _, _, err := resp.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !commitmentMatches(m2[:dhLen], c[:]) {
		t.Fatal("the responder did not reveal the committed key")
	}
	if _, _, _, err := init.ReadMessage(nil, m2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(init.ChannelBinding(), resp.ChannelBinding()) {
		t.Fatal("handshake hashes differ")
	}
	if _, err := (committedKey{}).Read(make([]byte, 1)); err == nil {
		t.Fatal("a committed key served as randomness")
	}
}
