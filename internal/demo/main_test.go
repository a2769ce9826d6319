package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	want := []struct{ label, status, reason string }{
		{"signed request (v1)", "200", "ok"},
		{"the same request again (replay)", "401", "replay"},
		{"tampered body", "401", "bad_signature"},
		{"timestamp 5 minutes old", "401", "timestamp_out_of_range"},
		{"v2, replayed from another server", "401", "wrong_audience"},
		{"v2, signed for this server", "200", "ok"},
		{"unknown device", "401", "unknown_key"},
	}
	for _, w := range want {
		re := regexp.MustCompile(regexp.QuoteMeta(w.label) + ` +-> ` + w.status + `.*\(server log: ` + w.reason + `\)`)
		if !re.MatchString(out.String()) {
			t.Errorf("no line %q -> %s (%s) in:\n%s", w.label, w.status, w.reason, out.String())
		}
	}
}
