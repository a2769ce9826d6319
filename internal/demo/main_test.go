package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo builds the binaries and runs the whole demo, checking each step's
// outcome.
func TestDemo(t *testing.T) {
	bin := t.TempDir()
	for name, pkg := range map[string]string{"amesh": "../../cli/amesh", "amesh-relay": "../../relay/cmd/amesh-relay"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	var out strings.Builder
	if err := run(context.Background(), &out, bin); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		`Collected: .*Recorded am_\S+ \(api-server\) as a target`,
		`6\. amesh curl -X POST .* -> 200 order accepted from laptop \(14 bytes\)  \(accepted\)`,
		`7\. A signed request from Go \(v2, for this server\) +-> 200 order accepted from laptop \(12 bytes\)  \(accepted\)`,
		`8\. The same bytes again \(replay\) +-> 401 \{"error":"unauthorized"\}  \(log: replay\)`,
		`9\. A body changed after signing +-> 401 \{"error":"unauthorized"\}  \(log: bad_signature\)`,
		`10\. Signed two minutes ago \(stale timestamp\) +-> 401 \{"error":"unauthorized"\}  \(log: timestamp_out_of_range\)`,
		`11\. Signed \(v2\) for billing.internal, sent here +-> 401 \{"error":"unauthorized"\}  \(log: wrong_audience\)`,
		`13\. amesh curl .* -> 401 \{"error":"unauthorized"\}  \(log: unknown_key\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("no line matching %q in:\n%s", want, out.String())
		}
	}
}
