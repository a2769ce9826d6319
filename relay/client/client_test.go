package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/wire"
)

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"ws://relay.example:8787", "ws://relay.example:8787/ws", true},
		{"wss://relay.example/", "wss://relay.example/ws", true},
		{"http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws", true},
		{"https://relay.example/amesh/ws", "wss://relay.example/amesh/ws", true},
		{" https://relay.example#frag ", "wss://relay.example/ws", true},
		{"relay.example:8787", "", false},
		{"ftp://relay.example", "", false},
		{"ws://", "", false},
		{"::", "", false},
	}
	for _, tc := range tests {
		got, err := NormalizeURL(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q (ok=%v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRelayErrorMatching(t *testing.T) {
	burned := &RelayError{Reason: wire.ReasonCodeBurned}
	gone := &RelayError{Reason: wire.ReasonQuota, PeerGone: true}
	wrapped := fmt.Errorf("context: %w", burned)
	tests := []struct {
		err    error
		target error
		want   bool
	}{
		{burned, ErrCodeBurned, true},
		{wrapped, ErrCodeBurned, true},
		{burned, ErrCodeExpired, false},
		{burned, ErrPeerGone, false},
		{gone, ErrPeerGone, true},
		// The peer exceeding its quota is not this client's quota error.
		{gone, &RelayError{Reason: wire.ReasonQuota}, false},
		{ErrDisconnected, ErrPeerGone, false},
	}
	for _, tc := range tests {
		if got := errors.Is(tc.err, tc.target); got != tc.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
		}
	}
}

func TestRelayErrorMessages(t *testing.T) {
	for _, r := range wire.Reasons() {
		if r == wire.ReasonNone || r == wire.ReasonPeerLeft {
			continue
		}
		msg := (&RelayError{Reason: r}).Error()
		if !strings.HasPrefix(msg, "relay: ") || strings.Contains(msg, "reason(") {
			t.Errorf("reason %v: message %q", r, msg)
		}
	}
	msg := (&RelayError{Reason: wire.ReasonRateLimited, RetryAfter: 90 * time.Second}).Error()
	if !strings.Contains(msg, "retry in 1m30s") {
		t.Errorf("rate limit message %q", msg)
	}
	if msg := (&RelayError{PeerGone: true, Reason: wire.ReasonPeerLeft}).Error(); !strings.Contains(msg, "disconnected") {
		t.Errorf("peer gone message %q", msg)
	}
}

// FuzzNormalizeURL: any input either fails or yields a ws(s) URL with a host
// that normalises to itself.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"ws://h:1", "https://relay.example/x", "http://[::1]:8787/", "relay.example", "wss://u@h/p?q#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := NormalizeURL(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			t.Fatalf("NormalizeURL(%q) = %q", s, u)
		}
		again, err := NormalizeURL(u)
		if err != nil || again != u {
			t.Fatalf("NormalizeURL(%q) = %q, but that normalises to %q, %v", s, u, again, err)
		}
	})
}
