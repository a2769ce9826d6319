package device

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/amesh-go/amesh/internal/strictjson"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Entry is one trusted device in allow_list.json.
type Entry struct {
	DeviceID     string `json:"deviceId"`
	PublicKey    string `json:"publicKey"` // standard base64 of the compressed point
	FriendlyName string `json:"friendlyName"`
	AddedAt      Time   `json:"addedAt"`
	// AddedBy says how the entry came to be (for example "pairing",
	// "provision" or "cli").
	AddedBy string `json:"addedBy"`
	Role    string `json:"role"` // protocol.RoleController or protocol.RoleTarget
}

// Limits on entries, so that a peer cannot fill the file or the screen.
const (
	MaxNameBytes    = 128
	maxAddedByBytes = 64
	MaxDevices      = 10000
	maxListBytes    = 8 << 20
)

// checkName refuses names that would be unsafe to print: invalid UTF-8,
// control characters (terminal escape sequences start with one), and
// overlong names.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > MaxNameBytes {
		return fmt.Errorf("name longer than %d bytes", MaxNameBytes)
	}
	if !utf8.ValidString(s) {
		return errors.New("name is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Errorf("name contains control character %U", r)
		}
	}
	if strings.TrimSpace(s) != s {
		return errors.New("name has leading or trailing spaces")
	}
	return nil
}

// normalize checks an entry and fills in its device ID from the key.
func (e *Entry) normalize() (*protocol.PublicKey, error) {
	pub, err := protocol.DecodePublicKey(e.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: publicKey: %v", ErrInvalidEntry, err)
	}
	e.PublicKey = pub.String()
	if e.DeviceID == "" {
		e.DeviceID = pub.DeviceID()
	}
	if e.DeviceID != pub.DeviceID() {
		return nil, fmt.Errorf("%w: deviceId %q does not match the public key (%s)", ErrInvalidEntry, e.DeviceID, pub.DeviceID())
	}
	if e.Role != protocol.RoleController && e.Role != protocol.RoleTarget {
		return nil, fmt.Errorf("%w: role %q, want %q or %q", ErrInvalidEntry, e.Role, protocol.RoleController, protocol.RoleTarget)
	}
	if err := checkName(e.FriendlyName); err != nil {
		return nil, fmt.Errorf("%w: friendlyName: %v", ErrInvalidEntry, err)
	}
	if len(e.AddedBy) > maxAddedByBytes || !utf8.ValidString(e.AddedBy) || strings.ContainsFunc(e.AddedBy, unicode.IsControl) {
		return nil, fmt.Errorf("%w: addedBy must be at most %d bytes of printable UTF-8", ErrInvalidEntry, maxAddedByBytes)
	}
	if e.AddedAt.IsZero() {
		return nil, fmt.Errorf("%w: addedAt missing", ErrInvalidEntry)
	}
	return pub, nil
}

// The sealed file: the list as raw JSON, and an HMAC over exactly those
// bytes, so that verification does not depend on re-encoding.
type sealedFile struct {
	Version int             `json:"version"`
	List    json.RawMessage `json:"list"`
	HMAC    string          `json:"hmac"`
}

type listBody struct {
	Generation uint64  `json:"generation"`
	Devices    []Entry `json:"devices"`
}

const (
	sealedVersion = 1
	hmacLabel     = "amesh allow list v1\x00"
)

// sealKey derives the allow list's HMAC key from the keystore's sealing
// secret, bound to this device's ID so that no other use of the secret can
// produce it.
func sealKey(secret []byte, deviceID string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, "amesh allow-list hmac v1 "+deviceID, 32)
	if err != nil {
		return nil, fmt.Errorf("device: derive allow-list key: %w", err)
	}
	return k, nil
}

func mac(key, list []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(hmacLabel))
	h.Write(list)
	return h.Sum(nil)
}

func sealList(key []byte, body *listBody) ([]byte, error) {
	if body.Devices == nil {
		body.Devices = []Entry{}
	}
	list, err := json.MarshalIndent(body, "  ", "  ")
	if err != nil {
		return nil, fmt.Errorf("device: encode allow list: %w", err)
	}
	out, err := json.MarshalIndent(sealedFile{
		Version: sealedVersion,
		List:    list,
		HMAC:    base64.StdEncoding.EncodeToString(mac(key, list)),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("device: encode allow list: %w", err)
	}
	return append(out, '\n'), nil
}

// openList checks the seal and parses the list. Every failure is an
// integrity failure naming path: only amesh writes this file. It never
// panics, whatever data holds (see FuzzOpenList).
func openList(path string, key, data []byte) (*listBody, error) {
	if len(data) > maxListBytes {
		return nil, integrity(path, "the file is larger than %d bytes", maxListBytes)
	}
	var f sealedFile
	if err := strictjson.Decode(data, &f); errors.Is(err, strictjson.ErrTrailingData) {
		return nil, integrity(path, "data after the sealed allow list")
	} else if err != nil {
		return nil, integrity(path, "the file is not a sealed allow list (%v)", err)
	}
	if f.Version != sealedVersion {
		return nil, integrity(path, "unknown format version %d", f.Version)
	}
	sum, err := base64.StdEncoding.Strict().DecodeString(f.HMAC)
	if err != nil || !hmac.Equal(sum, mac(key, f.List)) {
		return nil, integrity(path, "the HMAC does not match its content")
	}
	// Authentic from here on: a failure below means a bug, or a key
	// shared with something else, and still must not be trusted.
	var body listBody
	if err := strictjson.Decode(f.List, &body); err != nil {
		return nil, integrity(path, "sealed content is malformed (%v)", err)
	}
	if err := checkEntries(body.Devices); err != nil {
		return nil, integrity(path, "sealed content is invalid (%v)", err)
	}
	return &body, nil
}

// checkEntries validates entries in place and refuses duplicates.
func checkEntries(entries []Entry) error {
	if len(entries) > MaxDevices {
		return fmt.Errorf("%w: more than %d devices", ErrInvalidEntry, MaxDevices)
	}
	seen := make(map[string]bool, len(entries))
	for i := range entries {
		if _, err := entries[i].normalize(); err != nil {
			return err
		}
		if seen[entries[i].PublicKey] {
			return fmt.Errorf("%w: device %s listed twice", ErrInvalidEntry, entries[i].DeviceID)
		}
		seen[entries[i].PublicKey] = true
	}
	return nil
}

// AllowList is a verified snapshot of allow_list.json. It implements
// protocol.AllowList. A snapshot whose load failed the integrity check
// answers every Lookup with that error, so that a server keeps running and
// answers 500 allow_list_integrity_failure instead of trusting anything.
type AllowList struct {
	path    string
	gen     uint64
	entries []Entry
	byKey   map[[protocol.PublicKeySize]byte]*protocol.Device
	fi      os.FileInfo
	err     error
}

var _ protocol.AllowList = (*AllowList)(nil)

func newAllowList(path string, body *listBody, fi os.FileInfo) *AllowList {
	l := &AllowList{path: path, gen: body.Generation, entries: body.Devices, fi: fi,
		byKey: make(map[[protocol.PublicKeySize]byte]*protocol.Device, len(body.Devices))}
	for _, e := range body.Devices {
		pub, _ := protocol.DecodePublicKey(e.PublicKey) // checked by openList
		l.byKey[pub.Array()] = &protocol.Device{ID: e.DeviceID, Name: e.FriendlyName, Role: e.Role, Key: pub}
	}
	return l
}

func failedAllowList(path string, fi os.FileInfo, err error) *AllowList {
	return &AllowList{path: path, fi: fi, err: err}
}

// Lookup implements protocol.AllowList: the device with this public key, nil
// if none, or the integrity error that made this snapshot untrustworthy.
func (l *AllowList) Lookup(key [protocol.PublicKeySize]byte) (*protocol.Device, error) {
	if l.err != nil {
		return nil, l.err
	}
	return l.byKey[key], nil
}

// Err returns the error the snapshot was loaded with, if any.
func (l *AllowList) Err() error { return l.err }

// Path returns the allow-list file.
func (l *AllowList) Path() string { return l.path }

// Generation returns the snapshot's generation number.
func (l *AllowList) Generation() uint64 { return l.gen }

// Entries returns a copy of the entries, in file order.
func (l *AllowList) Entries() []Entry { return append([]Entry(nil), l.entries...) }

// Find returns the entry with the given device ID.
func (l *AllowList) Find(deviceID string) (Entry, bool) {
	for _, e := range l.entries {
		if e.DeviceID == deviceID {
			return e, true
		}
	}
	return Entry{}, false
}

// Changed reports, with a single stat, whether the file may differ from
// this snapshot: every write replaces it with a new file (a new inode), so
// a reloading verifier calls Changed often and Load only when it is true.
func (l *AllowList) Changed() bool {
	fi, err := os.Stat(l.path)
	if err != nil || l.fi == nil {
		return true
	}
	return !os.SameFile(fi, l.fi) || fi.Size() != l.fi.Size() || !fi.ModTime().Equal(l.fi.ModTime())
}
