//go:build linux

package command

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
)

// Colors appear on a terminal only, and never with NO_COLOR, TERM=dumb or
// --no-color.
func TestColorOnlyOnTerminals(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		color bool
	}{
		{"terminal", nil, nil, true},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, nil, false},
		{"TERM=dumb", map[string]string{"TERM": "dumb"}, nil, false},
		{"--no-color", nil, []string{"--no-color"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", "")
			t.Setenv("TERM", "xterm")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			reader, tty := testenv.OpenPTY(t)
			dir := t.TempDir()
			args := append([]string{"--dir", dir}, c.args...)
			args = append(args, "init", "--name", "tty", "--backend", "memory")
			if code := Main(args, IO{In: strings.NewReader(""), Out: tty, Err: tty}); code != 0 {
				t.Fatalf("exit %d", code)
			}
			tty.Close()
			out := readAll(t, reader)
			if got := strings.Contains(out, "\x1b["); got != c.color {
				t.Fatalf("escape sequences present: %v, want %v\n%q", got, c.color, out)
			}
			if !strings.Contains(out, "Device identity created") {
				t.Fatalf("output %q", out)
			}
		})
	}
	// Not a terminal: no colors even without NO_COLOR.
	var out bytes.Buffer
	t.Setenv("NO_COLOR", "")
	if code := Main([]string{"--dir", t.TempDir(), "init", "--name", "pipe", "--backend", "memory"}, IO{In: strings.NewReader(""), Out: &out, Err: io.Discard}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("colors on a pipe: %q", out.String())
	}
}

// readAll reads what the terminal side produced; the read ends with EIO
// once the terminal side is closed.
func readAll(t *testing.T, r *os.File) string {
	t.Helper()
	var b bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&b, r)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("terminal output never ended")
	}
	return b.String()
}
