//go:build darwin && cgo

package keystore

import (
	"errors"
	"fmt"

	"github.com/keybase/go-keychain"
)

const keychainAvailable = true

// macKeychain stores amesh's items as generic passwords of service "amesh"
// in the login Keychain, never synced to iCloud. The this-device-only
// accessibility is asked for but only the data-protection keychain, which
// needs a signed binary, enforces it: in the login keychain the items
// travel with the keychain file (docs/keystore.md).
type macKeychain struct{}

func (macKeychain) query(account string) keychain.Item {
	q := keychain.NewItem()
	q.SetSecClass(keychain.SecClassGenericPassword)
	q.SetService(KeychainService)
	q.SetAccount(account)
	return q
}

func (k macKeychain) get(account string) ([]byte, error) {
	q := k.query(account)
	q.SetMatchLimit(keychain.MatchLimitOne)
	q.SetReturnData(true)
	res, err := keychain.QueryItem(q)
	if err != nil {
		return nil, fmt.Errorf("keychain %s/%s: %w", KeychainService, account, err)
	}
	if len(res) == 0 {
		return nil, errItemNotFound
	}
	return res[0].Data, nil
}

func (k macKeychain) put(account string, data []byte) error {
	item := k.query(account)
	item.SetLabel("amesh device key material (" + account + ")")
	item.SetData(data)
	item.SetSynchronizable(keychain.SynchronizableNo)
	item.SetAccessible(keychain.AccessibleAfterFirstUnlockThisDeviceOnly)
	err := keychain.AddItem(item)
	if errors.Is(err, keychain.ErrorDuplicateItem) {
		upd := keychain.NewItem()
		upd.SetData(data)
		err = keychain.UpdateItem(k.query(account), upd)
	}
	if err != nil {
		return fmt.Errorf("keychain %s/%s: %w", KeychainService, account, err)
	}
	return nil
}

func (k macKeychain) remove(account string) error {
	err := keychain.DeleteItem(k.query(account))
	if err != nil && !errors.Is(err, keychain.ErrorItemNotFound) {
		return fmt.Errorf("keychain %s/%s: %w", KeychainService, account, err)
	}
	return nil
}

func createKeychain(opts Options) (Store, error) { return createWrapped(opts, macKeychain{}) }
func openKeychain(opts Options) (Store, error)   { return openWrapped(opts, macKeychain{}) }
func removeKeychain(opts Options) error          { return removeWrapped(opts, macKeychain{}) }
