//go:build !(darwin && cgo)

package keystore

import "fmt"

var errKeychainUnavailable = fmt.Errorf("%w: the keychain backend needs macOS and a build with cgo", ErrUnavailable)

const keychainAvailable = false

func createKeychain(Options) (Store, error) { return nil, errKeychainUnavailable }
func openKeychain(Options) (Store, error)   { return nil, errKeychainUnavailable }

// removeKeychain can only delete the wrapped key file here; the Keychain
// items stay in the Mac's Keychain that made them.
func removeKeychain(opts Options) error { return removeWrappedFile(opts) }
