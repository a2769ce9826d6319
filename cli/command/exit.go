package command

import (
	"errors"
	"fmt"
)

// Exit codes of the amesh command, documented in its help text.
const (
	ExitOK          = 0   // success
	ExitError       = 1   // the command failed
	ExitUsage       = 2   // wrong flags or arguments
	ExitAborted     = 3   // the user declined, or a confirmation failed
	ExitInterrupted = 130 // interrupted (Ctrl-C)
)

// exitError carries an exit code and a message that says what happened and
// what to do next.
type exitError struct {
	code int
	msg  string
	err  error
}

func (e *exitError) Error() string {
	if e.err != nil && e.msg == "" {
		return e.err.Error()
	}
	return e.msg
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports wrong flags or arguments (exit code 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// abortedErrorf reports that the user declined (exit code 3).
func abortedErrorf(format string, args ...any) error {
	return &exitError{code: ExitAborted, msg: fmt.Sprintf(format, args...)}
}

// failf reports a failure with advice (exit code 1), keeping err for
// errors.Is.
func failf(err error, format string, args ...any) error {
	return &exitError{code: ExitError, msg: fmt.Sprintf(format, args...), err: err}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitError
}
