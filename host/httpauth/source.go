package httpauth

import (
	"fmt"
	"os"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// AllowList is a snapshot of the allow list, as a Source delivers it.
type AllowList struct {
	// Devices are the trusted devices.
	Devices protocol.StaticAllowList
	// Err, when set, means the list cannot be trusted (an integrity check
	// failed, the file is unreadable): every request that gets as far as
	// the lookup is answered 500 allow_list_integrity_failure.
	Err error
	// Changed reports cheaply (say, one stat) whether the source may hold
	// a newer list than this snapshot. Nil means never: the list is fixed.
	Changed func() bool
}

// Source loads the allow list. The middleware loads it once at start, and
// again whenever the current snapshot's Changed reports true; it asks at
// most once per Options.ReloadInterval, on the request path, so that a
// revocation takes effect on a running server within that interval.
//
// The sealed allow list of host/device plugs in as a SourceFunc that
// converts its snapshot (Entries, Err, Changed).
type Source interface {
	Load() AllowList
}

// SourceFunc adapts a function to Source.
type SourceFunc func() AllowList

// Load implements Source.
func (f SourceFunc) Load() AllowList { return f() }

// Static is a Source of a fixed list.
func Static(devices protocol.StaticAllowList) Source {
	return SourceFunc(func() AllowList { return AllowList{Devices: devices} })
}

// FileSource is a Source that reads the file at path with parse, and
// reloads it when the file is replaced or modified (a different inode,
// size or modification time). A file that cannot be read or parsed makes
// the snapshot's Err, so the server fails closed with 500s until the file
// is good again.
func FileSource(path string, parse func(data []byte) (protocol.StaticAllowList, error)) Source {
	return SourceFunc(func() AllowList {
		fi, err := os.Stat(path)
		changed := func() bool {
			now, err := os.Stat(path)
			return err != nil || fi == nil || !os.SameFile(now, fi) || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime())
		}
		if err != nil {
			fi = nil
			return AllowList{Err: fmt.Errorf("httpauth: allow list: %w", err), Changed: changed}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return AllowList{Err: fmt.Errorf("httpauth: allow list: %w", err), Changed: changed}
		}
		devices, err := parse(data)
		if err != nil {
			return AllowList{Err: fmt.Errorf("httpauth: allow list %s: %w", path, err), Changed: changed}
		}
		return AllowList{Devices: devices, Changed: changed}
	})
}
