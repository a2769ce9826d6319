package command

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/amesh-go/amesh/relay/pairing"
	"golang.org/x/term"
)

// IO is the command's standard streams.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// StdIO returns the process's standard streams.
func StdIO() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// colorEnabled decides whether to use ANSI colors on w: only on a terminal,
// never with NO_COLOR set (https://no-color.org) or TERM=dumb.
func colorEnabled(w io.Writer, noColorFlag bool) bool {
	if noColorFlag || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}

// printer writes human output, with optional color, or JSON.
type printer struct {
	w     io.Writer
	color bool
	json  bool
}

const (
	ansiBold  = "\x1b[1m"
	ansiGreen = "\x1b[32m"
	ansiRed   = "\x1b[31m"
	ansiDim   = "\x1b[2m"
	ansiReset = "\x1b[0m"
)

func (p *printer) style(code, s string) string {
	if !p.color {
		return s
	}
	return code + s + ansiReset
}

func (p *printer) printf(format string, args ...any) { fmt.Fprintf(p.w, format, args...) }

// emitJSON writes v as indented JSON.
func (p *printer) emitJSON(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// SanitizeName makes a friendly name (which may come from a peer) safe to
// print; it is the pairing protocol's own sanitiser, so that what is shown
// is what a pairing would have stored.
func SanitizeName(s string) string { return pairing.SanitizeName(s) }
