package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// The guest builds its errors without fmt (see the package documentation
// of wasm/protocol); these cases hold them to the formats they replaced.
func TestErrorTextsAsWithFmt(t *testing.T) {
	k := testKey(t, 1)
	g, _ := configured(t, k, abi.NonceStoreGuest)
	var res abi.Result
	errOf := func(f func() error) string {
		if err := f(); err != nil {
			return err.Error()
		}
		return "<nil>"
	}
	bufs := &buffers{m: map[uint32][]byte{8: make([]byte, 4)}}
	_, input := bufs.input(8, 5)
	_, integrity := brokenList{}.Lookup([protocol.PublicKeySize]byte{})
	_, badKey := protocol.ParsePublicKey(make([]byte, 3))
	cases := []struct{ got, want string }{
		{errOf(func() error { return g.commit(77, 0, 0, &res) }), fmt.Sprintf("no pending call with handle %d", 77)},
		{errOf(func() error {
			return g.configure(configRecord(&abi.Config{AllowList: []abi.AllowEntry{{Key: []byte("x"), Role: "target"}}}))
		}), fmt.Errorf("allow-list entry %d: %w", 0, mustDecodeErr("x")).Error()},
		{errOf(func() error { return g.configure(configRecord(&abi.Config{NonceStore: 7})) }), fmt.Sprintf("nonce store %d is neither guest (0) nor host (1)", 7)},
		{errOf(func() error { return g.configure(configRecord(&abi.Config{Crypto: -3})) }), fmt.Sprintf("crypto %d is not host (0), guest (1) or host hashing the message (2)", -3)},
		{errOf(func() error {
			var e abi.Encoder
			(&abi.SignParams{Method: "GET", Target: "/", Key: make([]byte, 3)}).Encode(&e)
			return g.sign(e.Buf, &res)
		}), fmt.Sprintf("signer key of %d bytes, want %d", 3, 33)},
		{errOf(func() error { return g.signFinish(12, make([]byte, 64), &res) }), fmt.Sprintf("no pending call with handle %d", 12)},
		{input.Error(), fmt.Sprintf("abi: length %d exceeds the %d-byte buffer at %d", 5, 4, 8)},
		{integrity.Error(), fmt.Errorf("allow list (reported by the host): %w", protocol.ErrIntegrity).Error()},
		{wrap("nonce", badKey).Error(), fmt.Errorf("nonce: %w", badKey).Error()},
	}
	// A check and a signature held under handles, for the kind and range
	// errors of commit and sign_finish.
	h, _ := g.hold(&pending{sign: &protocol.SignParams{}})
	cases = append(cases,
		struct{ got, want string }{errOf(func() error { return g.commit(h, 0, 0, &res) }), fmt.Sprintf("handle %d is a signature, not a check", h)})
	h, _ = g.hold(&pending{check: &protocol.Check{}})
	cases = append(cases,
		struct{ got, want string }{errOf(func() error { return g.commit(h, 0, 9, &res) }), fmt.Sprintf("nonce_status %d out of range", 9)})
	h, _ = g.hold(&pending{check: &protocol.Check{}})
	cases = append(cases,
		struct{ got, want string }{errOf(func() error { return g.commit(h, -1, 0, &res) }), fmt.Sprintf("sig_status %d out of range", -1)},
		struct{ got, want string }{errOf(func() error { return g.signFinish(h, nil, &res) }), fmt.Sprintf("no pending call with handle %d", h)})
	h, _ = g.hold(&pending{check: &protocol.Check{}})
	cases = append(cases,
		struct{ got, want string }{errOf(func() error { return g.signFinish(h, nil, &res) }), fmt.Sprintf("handle %d is a check, not a signature", h)})
	h, _ = g.hold(&pending{sign: &protocol.SignParams{}})
	cases = append(cases,
		struct{ got, want string }{errOf(func() error { return g.signFinish(h, make([]byte, 5), &res) }), fmt.Sprintf("signature of %d bytes, want %d", 5, 64)})
	g.maxPending = len(g.pending)
	_, full := g.hold(&pending{})
	cases = append(cases, struct{ got, want string }{full.Error(), fmt.Sprintf("%d prepared calls are pending, the configured limit", len(g.pending))})

	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
	if !errors.Is(integrity, protocol.ErrIntegrity) || !errors.Is(wrap("x", badKey), badKey) {
		t.Error("wrapped errors do not unwrap")
	}
}

// TestPanicText holds panicText to fmt's %v for the values panics carry.
func TestPanicText(t *testing.T) {
	var nilMap map[string]int
	runtimeErr := func() (err any) {
		defer func() { err = recover() }()
		nilMap["x"] = 1
		return nil
	}()
	for _, v := range []any{"boom", errors.New("bad"), runtimeErr, 42} {
		if got, want := panicText(v), fmt.Sprintf("%v", v); got != want {
			t.Errorf("panicText(%#v) = %q, want %q", v, got, want)
		}
	}
	if got := panicText(3.5); got == "" {
		t.Error("no text for a float")
	}
}

func mustDecodeErr(key string) error {
	_, err := protocol.DecodePublicKey(key)
	return err
}
