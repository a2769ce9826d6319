//go:build !unix && !windows

package atomicfile

import (
	"errors"
	"os"
)

func lock(*os.File, bool) error { return errors.New("file locking is not supported on this platform") }

func unlock(*os.File) error { return nil }
