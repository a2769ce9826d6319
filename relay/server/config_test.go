package server

import (
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/state"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in   string
		want state.Limit
		ok   bool
	}{
		{"20/1m", state.Limit{Burst: 20, Per: time.Minute}, true},
		{"1/500ms", state.Limit{Burst: 1, Per: 500 * time.Millisecond}, true},
		{"off", state.Limit{Burst: -1}, true},
		{"0/1m", state.Limit{}, false},
		{"-3/1m", state.Limit{}, false},
		{"20/0s", state.Limit{}, false},
		{"20", state.Limit{}, false},
		{"x/1m", state.Limit{}, false},
		{"20/soon", state.Limit{}, false},
	}
	for _, tc := range tests {
		got, err := ParseLimit(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v (ok=%v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestConfigDefaultsAndChecks(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil || c.RendezvousTTL != 60*time.Second || c.MaxFrame != 16<<10 || c.Logger == nil {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	if _, err := (Config{PingInterval: time.Minute, PongWait: time.Second}).withDefaults(); err == nil {
		t.Fatal("pong wait below the ping interval accepted")
	}
	if _, err := (Config{MaxFrame: 2 << 20}).withDefaults(); err == nil {
		t.Fatal("a 2 MiB frame limit accepted")
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("nil store accepted")
	}
}

// FuzzParseLimit: what parses formats back to an equivalent limit.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"20/1m", "off", "1/1ns", "3/1h30m", "0/1s", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		back, err := ParseLimit(FormatLimit(l))
		if err != nil || back != l {
			t.Fatalf("ParseLimit(%q) = %+v; formatted %q parses to %+v, %v", s, l, FormatLimit(l), back, err)
		}
	})
}
