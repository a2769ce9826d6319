//go:build !(darwin && cgo && amesh_secureenclave)

package keystore

import "fmt"

const secureEnclaveAvailable = false

var errSecureEnclaveUnavailable = fmt.Errorf("%w: this amesh was built without the secure-enclave backend; it needs macOS on a Mac with a Secure Enclave, a cgo build with `go build -tags amesh_secureenclave`, and a binary code-signed with a keychain-access-groups entitlement (docs/keystore.md); or use the keychain backend", ErrUnavailable)

func createSecureEnclave(Options) (Store, error) { return nil, errSecureEnclaveUnavailable }
func openSecureEnclave(Options) (Store, error)   { return nil, errSecureEnclaveUnavailable }

// removeSecureEnclave can only delete the key file here; the key and the
// Keychain items stay on the Mac that made them.
func removeSecureEnclave(opts Options) error { return removeEnclaveFile(opts) }
