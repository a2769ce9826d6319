package errwrap

import (
	"errors"
	"fmt"
	"testing"
)

func TestWrapAsFmt(t *testing.T) {
	base := errors.New("base")
	got, want := Wrap("ctx", base), fmt.Errorf("ctx: %w", base)
	if got.Error() != want.Error() || !errors.Is(got, base) || errors.Unwrap(got) != base {
		t.Fatalf("Wrap gives %q (unwraps to %v), fmt %q", got, errors.Unwrap(got), want)
	}
}
