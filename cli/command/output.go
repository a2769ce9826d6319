package command

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

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

// MaxNameRunes is the longest friendly name shown or stored.
const MaxNameRunes = 64

// SanitizeName makes a friendly name (which may come from a peer) safe to
// print: control characters, escape sequences and bidirectional overrides
// are dropped, whitespace runs become one space, and the result is cut to
// MaxNameRunes runes. A name that ends up empty becomes "(unnamed)".
func SanitizeName(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r), r == '\u200b', r == '\ufeff',
			unicode.In(r, unicode.Cf):
			continue
		}
		if n >= MaxNameRunes {
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return "(unnamed)"
	}
	return b.String()
}
