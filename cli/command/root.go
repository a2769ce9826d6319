// Package command implements the amesh command line. The binary in
// cli/amesh is a thin wrapper around Main.
package command

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set by the linker (-X) for releases; otherwise the module
// version from the build info is used.
var version = ""

// Version returns the amesh version string.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// globals are the flags every command has.
type globals struct {
	io      IO
	json    bool
	noColor bool
	dir     string
	stdin   *bufio.Reader // shared, so that successive questions lose no input
}

// lines returns the buffered reader over standard input.
func (g *globals) lines() *bufio.Reader {
	if g.stdin == nil {
		g.stdin = bufio.NewReader(g.io.In)
	}
	return g.stdin
}

func (g *globals) out() *printer {
	return &printer{w: g.io.Out, color: colorEnabled(g.io.Out, g.noColor), json: g.json}
}

func (g *globals) errOut() *printer {
	return &printer{w: g.io.Err, color: colorEnabled(g.io.Err, g.noColor)}
}

const exitCodesHelp = `Exit codes:
  0    success
  1    error
  2    wrong flags or arguments
  3    aborted: you declined, or a confirmation failed
  130  interrupted

Environment:
  AUTH_MESH_DIR        where this device's state lives (default ~/.amesh)
  NO_COLOR             disable colors (also off when output is not a terminal)
`

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "amesh",
		Short: "Device identity instead of API keys",
		Long: `amesh gives this machine a device key kept in hardware where possible
(TPM 2.0, macOS Keychain) or in an encrypted file. Paired devices sign every
HTTP request with it; the receiving side verifies it against its allow list.

` + exitCodesHelp,
		Version:       Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	root.SetIn(g.io.In)
	root.SetOut(g.io.Out)
	root.SetErr(g.io.Err)
	root.SetVersionTemplate("amesh {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v\nRun '%s --help' for usage.", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON")
	pf.BoolVar(&g.noColor, "no-color", false, "disable colors")
	pf.StringVar(&g.dir, "dir", "", "state directory (default $AUTH_MESH_DIR or ~/.amesh)")
	for _, add := range subcommands {
		root.AddCommand(add(g))
	}
	return root
}

// subcommands lists the constructors of the subcommands; each file adds its
// own in an init function.
var subcommands []func(*globals) *cobra.Command

// Main runs the amesh command with args and returns the exit code. Errors
// are printed as one message that says what to do next, never a stack trace.
func Main(args []string, stdio IO) int {
	g := &globals{io: stdio}
	root := newRoot(g)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	var e *exitError
	if !errors.As(err, &e) && isUsageError(err) {
		code = ExitUsage
	}
	if ctx.Err() != nil && code == ExitError {
		code = ExitInterrupted
		err = errors.New("interrupted")
	}
	p := g.errOut()
	fmt.Fprintf(stdio.Err, "%s %v\n", p.style(ansiRed+ansiBold, "amesh:"), err)
	return code
}

// isUsageError recognises cobra's own argument errors (unknown command,
// wrong number of arguments), which do not go through the flag error
// function.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
