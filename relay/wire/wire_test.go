package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	frames := []Frame{
		{Type: Create},
		{Type: Join, Code: "012345"},
		{Type: Data, Payload: []byte{}},
		{Type: Data, Payload: []byte("\x00\xffopaque")},
		{Type: Created, Code: "999999", Lifetime: 60 * time.Second},
		{Type: Peer},
		{Type: PeerGone, Reason: ReasonPeerLeft},
		{Type: Error, Reason: ReasonRateLimited, RetryAfter: 1500 * time.Millisecond},
		{Type: Error, Reason: ReasonCodeBurned},
		{Type: Error, Reason: ReasonUnavailable},
		{Type: Deliver, TokenID: bytes.Repeat([]byte{7}, TokenIDLen), Expires: time.Unix(1_800_000_000, 0),
			Mailbox: bytes.Repeat([]byte{9}, MailboxLen), Payload: []byte("sealed")},
		{Type: Collect, Keys: [][]byte{bytes.Repeat([]byte{1}, MailboxLen), bytes.Repeat([]byte{2}, MailboxLen)}},
		{Type: Collect, Wait: true, Keys: [][]byte{bytes.Repeat([]byte{3}, MailboxLen)}},
		{Type: Ack, Count: 70000},
		{Type: Accepted},
		{Type: Mail, Mailbox: bytes.Repeat([]byte{9}, MailboxLen), Payload: bytes.Repeat([]byte{5}, MaxDelivery)},
		{Type: Batch},
	}
	for _, f := range frames {
		b, err := f.Append(nil)
		if err != nil {
			t.Fatalf("%v: %v", f.Type, err)
		}
		g, err := Parse(b)
		if err != nil {
			t.Fatalf("%v: parse: %v", f.Type, err)
		}
		if g.Type != f.Type || g.Code != f.Code || g.Lifetime != f.Lifetime || g.Reason != f.Reason ||
			g.RetryAfter != f.RetryAfter || !bytes.Equal(g.Payload, f.Payload) || !bytes.Equal(g.TokenID, f.TokenID) ||
			!g.Expires.Equal(f.Expires) || !bytes.Equal(g.Mailbox, f.Mailbox) || g.Wait != f.Wait || g.Count != f.Count ||
			len(g.Keys) != len(f.Keys) {
			t.Fatalf("round trip of %+v gave %+v", f, g)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown type", []byte{'Z'}},
		{"create with body", []byte("Cx")},
		{"peer with body", []byte("px")},
		{"join short", []byte("J12345")},
		{"join long", []byte("J1234567")},
		{"join non-digit", []byte("J12345a")},
		{"join unicode digit", []byte("J12345\u0663")},
		{"created short", []byte("c123456\x00\x00\x00")},
		{"created bad code", []byte("c12345x\x00\x00\x00\x00")},
		{"peer gone no reason", []byte("g")},
		{"peer gone unknown reason", []byte{'g', 200}},
		{"error none", []byte{'e', 0, 0, 0, 0, 0}},
		{"error short", []byte{'e', 3, 0, 0, 0}},
		{"error unknown reason", []byte{'e', 99, 0, 0, 0, 0}},
		{"accepted with body", []byte("ax")},
		{"batch with body", []byte("nx")},
		{"deliver without payload", append([]byte{'P'}, make([]byte, TokenIDLen+8+MailboxLen)...)},
		{"deliver payload too large", append([]byte{'P'}, make([]byte, TokenIDLen+8+MailboxLen+MaxDelivery+1)...)},
		{"deliver zero expiry", append([]byte{'P'}, make([]byte, TokenIDLen+8+MailboxLen+1)...)},
		{"deliver short", []byte("Pshort")},
		{"collect no keys", []byte{'K', 0}},
		{"collect partial key", append([]byte{'K', 0}, make([]byte, MailboxLen+1)...)},
		{"collect unknown flag", append([]byte{'K', 2}, make([]byte, MailboxLen)...)},
		{"collect too many keys", append([]byte{'K', 0}, make([]byte, MailboxLen*(MaxMailboxes+1))...)},
		{"ack short", []byte{'A', 0, 0, 1}},
		{"ack long", []byte{'A', 0, 0, 0, 0, 1}},
		{"mail without payload", append([]byte{'m'}, make([]byte, MailboxLen)...)},
		{"mail too large", append([]byte{'m'}, make([]byte, MailboxLen+MaxDelivery+1)...)},
	}
	for _, tc := range tests {
		if _, err := Parse(tc.in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse(%q) = %v, want ErrMalformed", tc.name, tc.in, err)
		}
	}
}

func TestAppendRefusesInvalid(t *testing.T) {
	for _, f := range []Frame{
		{Type: Join, Code: "12345"},
		{Type: Created, Code: "abcdef"},
		{Type: PeerGone, Reason: 250},
		{Type: Error, Reason: ReasonNone},
		{Type: 'Q'},
		{Type: Deliver, TokenID: make([]byte, 3), Expires: time.Unix(1, 0), Mailbox: make([]byte, MailboxLen), Payload: []byte{1}},
		{Type: Deliver, TokenID: make([]byte, TokenIDLen), Mailbox: make([]byte, MailboxLen), Payload: []byte{1}},
		{Type: Collect},
		{Type: Collect, Keys: [][]byte{{1}}},
		{Type: Mail, Mailbox: make([]byte, MailboxLen)},
	} {
		if _, err := f.Append(nil); err == nil {
			t.Errorf("Append(%+v) succeeded", f)
		}
	}
}

func TestDirections(t *testing.T) {
	for _, ty := range []Type{Create, Join, Data, Deliver, Collect, Ack} {
		if !ty.FromClient() {
			t.Errorf("%v not from client", ty)
		}
	}
	for _, ty := range []Type{Created, Peer, PeerGone, Error, Data, Accepted, Mail, Batch} {
		if !ty.FromRelay() {
			t.Errorf("%v not from relay", ty)
		}
	}
	if Peer.FromClient() || Create.FromRelay() || Mail.FromClient() || Deliver.FromRelay() {
		t.Error("direction mix-up")
	}
}

func TestReasonNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		n := r.String()
		if n == "" || seen[n] {
			t.Fatalf("reason %d has name %q", r, n)
		}
		seen[n] = true
	}
	if Reason(250).Valid() {
		t.Fatal("reason 250 valid")
	}
}

func TestMailboxAddress(t *testing.T) {
	k := bytes.Repeat([]byte{1}, MailboxLen)
	a, b := MailboxAddress(k), MailboxAddress(bytes.Repeat([]byte{2}, MailboxLen))
	if a == b || bytes.Equal(a[:], k) || a != MailboxAddress(k) {
		t.Fatal("mailbox addresses are not a function of their key")
	}
}

func TestLongDurationsSaturate(t *testing.T) {
	b, _ := Frame{Type: Created, Code: "000000", Lifetime: 2000 * time.Hour}.Append(nil)
	f, _ := Parse(b)
	if f.Lifetime != maxWireDuration {
		t.Fatalf("lifetime %v, want saturation at %v", f.Lifetime, maxWireDuration)
	}
}

// FuzzParse checks that any input either fails with ErrMalformed or parses
// into a frame that re-encodes to exactly the same bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"C", "J123456", "Dpayload", "c123456\x00\x00\xea\x60", "p", "g\x0e", "e\x08\x00\x00\x03\xe8",
		"a", "n", "A\x00\x00\x00\x02"} {
		f.Add([]byte(s))
	}
	f.Add(append(append([]byte{'P'}, make([]byte, TokenIDLen)...), append([]byte{0, 0, 0, 0, 0x6b, 0x49, 0xd2, 0x00}, make([]byte, MailboxLen+3)...)...))
	f.Add(append([]byte{'K', 1}, make([]byte, 2*MailboxLen)...))
	f.Add(append([]byte{'m'}, make([]byte, MailboxLen+5)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := fr.Append(nil)
		if err != nil {
			t.Fatalf("parsed frame %+v does not encode: %v", fr, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding %q gave %q", b, out)
		}
	})
}
