package envoyhost

import (
	"errors"
	"testing"

	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
)

// TestSharedDataFollowsEnvoy pins the compare-and-swap rules of
// proxy-wasm-cpp-host's SharedData that the nonce cache relies on.
func TestSharedDataFollowsEnvoy(t *testing.T) {
	s := NewSharedData()
	if _, _, err := s.Get("k"); !errors.Is(err, noncecache.ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
	// An insert ignores the token.
	if err := s.Set("k", []byte("a"), 12345); err != nil {
		t.Fatalf("insert with an arbitrary token: %v", err)
	}
	v, cas, err := s.Get("k")
	if err != nil || string(v) != "a" || cas == 0 {
		t.Fatalf("get: %q %d %v", v, cas, err)
	}
	// A stale token fails; the current one succeeds and moves the token.
	if err := s.Set("k", []byte("b"), cas+1); !errors.Is(err, noncecache.ErrCASMismatch) {
		t.Fatalf("stale token: %v", err)
	}
	if err := s.Set("k", []byte("b"), cas); err != nil {
		t.Fatalf("current token: %v", err)
	}
	if err := s.Set("k", []byte("c"), cas); !errors.Is(err, noncecache.ErrCASMismatch) {
		t.Fatalf("reused token: %v", err)
	}
	// Token 0 writes unconditionally.
	if err := s.Set("k", []byte("d"), 0); err != nil {
		t.Fatalf("token 0: %v", err)
	}
	// Values are copies both ways.
	buf := []byte("e")
	_, cas, _ = s.Get("k")
	if err := s.Set("k", buf, cas); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'x'
	got, _, _ := s.Get("k")
	got[0] = 'y'
	if again, _, _ := s.Get("k"); string(again) != "e" {
		t.Fatalf("stored value changed through an alias: %q", again)
	}
	if s.Conflicts() != 2 || s.Keys() != 1 {
		t.Fatalf("conflicts %d keys %d", s.Conflicts(), s.Keys())
	}
	// The token counter skips 0.
	s.cas = 0xffffffff
	if c := s.nextCas(); c != 0xffffffff || s.nextCas() != 1 {
		t.Fatalf("token after wrap: %d then %d", c, s.cas-1)
	}
}

func TestVerifySignatureBadArguments(t *testing.T) {
	for _, in := range [][]byte{nil, {0xff}, {0x0a, 0x06, 's', 'h', 'a', '2', '5', '6'}} {
		ok, msg := decode(t, VerifySignature(in))
		if ok || msg == "" {
			t.Errorf("%x: ok=%v msg=%q, want a refusal with a reason", in, ok, msg)
		}
	}
}

func decode(t *testing.T, b []byte) (bool, string) {
	t.Helper()
	if len(b) == 0 {
		t.Fatal("empty result: the emulator cannot return it")
	}
	ok := len(b) >= 2 && b[0] == 0x08 && b[1] == 0x01
	msg := ""
	if i := indexByte(b, 0x12); i >= 0 && i+1 < len(b) {
		msg = string(b[i+2:])
	}
	return ok, msg
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
