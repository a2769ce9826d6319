package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Time is a timestamp written as JavaScript's Date.toISOString does
// (2026-03-28T10:00:00.000Z), the form the existing implementation's files
// use. Any RFC 3339 time is accepted when reading.
type Time struct{ time.Time }

const jsTimeFormat = "2006-01-02T15:04:05.000Z"

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(jsTimeFormat))
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	// An offset can move a year-9999 time past what the file format can
	// write back.
	if y := v.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("time %q out of range", s)
	}
	t.Time = v
	return nil
}

// Identity is identity.json: who this device is and where its key lives.
type Identity struct {
	Version        int    `json:"version"`
	DeviceID       string `json:"deviceId"`
	KeyAlias       string `json:"keyAlias"`
	PublicKey      string `json:"publicKey"` // standard base64 of the compressed point
	FriendlyName   string `json:"friendlyName"`
	CreatedAt      Time   `json:"createdAt"`
	StorageBackend string `json:"storageBackend"`
	// MaxControllers is how many controllers the allow list may hold; it
	// is written only when above the default of 1.
	MaxControllers int `json:"maxControllers,omitempty"`
}

// Controllers returns the maximum number of controllers, at least 1.
func (id *Identity) Controllers() int { return max(id.MaxControllers, 1) }

const identityVersion = 1

func (id *Identity) validate() error {
	if id.Version != identityVersion {
		return fmt.Errorf("version %d, this build reads version %d", id.Version, identityVersion)
	}
	pub, err := protocol.DecodePublicKey(id.PublicKey)
	if err != nil {
		return fmt.Errorf("publicKey: %w", err)
	}
	if id.DeviceID != pub.DeviceID() {
		return fmt.Errorf("deviceId %q does not match the public key (%s)", id.DeviceID, pub.DeviceID())
	}
	if !slices.Contains([]string{keystore.BackendTPM, keystore.BackendKeychain, keystore.BackendSecureEnclave, keystore.BackendFile, keystore.BackendMemory}, id.StorageBackend) {
		return fmt.Errorf("unknown storageBackend %q", id.StorageBackend)
	}
	if err := checkName(id.FriendlyName); err != nil {
		return fmt.Errorf("friendlyName: %w", err)
	}
	if id.MaxControllers < 0 || id.MaxControllers > MaxControllersLimit {
		return fmt.Errorf("maxControllers %d out of range 1..%d", id.MaxControllers, MaxControllersLimit)
	}
	return nil
}

// MaxControllersLimit bounds maxControllers.
const MaxControllersLimit = 1000

// ReadIdentity reads and checks identity.json without opening the key, for
// commands such as `amesh whoami` that need no secret.
func ReadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("device: %w in %s: create one with `amesh init --name NAME`", ErrNoIdentity, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("device: read identity: %w", err)
	}
	id, err := parseIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("device: %s: %w", path, err)
	}
	return id, nil
}

func parseIdentity(data []byte) (*Identity, error) {
	var id Identity
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&id); err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("malformed: data after the JSON object")
	}
	if err := id.validate(); err != nil {
		return nil, err
	}
	return &id, nil
}

func (id *Identity) marshal() []byte {
	b, _ := json.MarshalIndent(id, "", "  ")
	return append(b, '\n')
}
