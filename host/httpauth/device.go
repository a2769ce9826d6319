package httpauth

import (
	"fmt"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// DeviceSource is the Source of a device's sealed allow list
// (host/device): the middleware then trusts the controllers that device
// paired with, reloads the list when it changes (a revocation takes effect
// without a restart), and answers 500 when the list fails its integrity
// check.
func DeviceSource(s *device.State) Source {
	return SourceFunc(func() AllowList {
		l, err := s.AllowList()
		if l == nil {
			if err == nil {
				err = fmt.Errorf("httpauth: no allow list in %s", s.Dir())
			}
			// Ask again on the next check: the file may be repaired.
			return AllowList{Err: err, Changed: func() bool { return true }}
		}
		devs := make(protocol.StaticAllowList, len(l.Entries()))
		for _, e := range l.Entries() {
			k, kerr := protocol.DecodePublicKey(e.PublicKey)
			if kerr != nil {
				// host/device validated every entry when it was sealed; a
				// bad key here means the list is not what was sealed.
				return AllowList{Err: fmt.Errorf("httpauth: allow list entry %s: %w", e.DeviceID, kerr), Changed: l.Changed}
			}
			devs[k.Array()] = &protocol.Device{ID: e.DeviceID, Name: e.FriendlyName, Role: e.Role, Key: k}
		}
		if err == nil {
			err = l.Err()
		}
		return AllowList{Devices: devs, Err: err, Changed: l.Changed}
	})
}
