//go:build !(darwin && cgo)

package keystore

const keychainAvailable = false

func createKeychain(Options) (Store, error) { return nil, errKeychainUnavailable }
func openKeychain(Options) (Store, error)   { return nil, errKeychainUnavailable }

// removeKeychain can only delete the wrapped key file here; the Keychain
// items stay in the Mac's Keychain that made them.
func removeKeychain(opts Options) error { return removeWrappedFile(opts) }
