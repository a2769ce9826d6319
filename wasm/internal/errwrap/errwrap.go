// Package errwrap wraps errors without fmt, which would link reflect into
// amesh.wasm (see the package documentation of wasm/protocol).
package errwrap

// wrapped is the error fmt.Errorf("prefix: %w", err) returns.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// Wrap returns an error that reads "prefix: " and err's text, and unwraps
// to err, as fmt.Errorf("prefix: %w", err) does.
func Wrap(prefix string, err error) error {
	return &wrapped{msg: prefix + ": " + err.Error(), err: err}
}
