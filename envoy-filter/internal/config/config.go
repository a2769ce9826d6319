// Package config parses and checks the amesh Envoy filter's plugin
// configuration (the JSON in the filter's "configuration" field, or an Istio
// WasmPlugin's pluginConfig). Everything that can be wrong with it is found
// here, at plugin start, so that a bad configuration stops the plugin with a
// clear message instead of letting traffic through or failing per request.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
	"github.com/amesh-go/amesh/internal/strictjson"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Default names of the headers that carry the verified identity upstream.
const (
	DefaultDeviceIDHeader   = "x-amesh-device-id"
	DefaultDeviceNameHeader = "x-amesh-device-name"
)

// MaxAllowListEntries bounds the allow list kept in every worker's memory.
const MaxAllowListEntries = 100000

// maxBodyLimit is the largest max_body_bytes accepted. Envoy buffers the
// whole body in memory before the filter can check it; more than this is a
// configuration mistake, not a use case.
const maxBodyLimit = 1 << 30

// maxSkew bounds clock_skew_seconds and nonce_ttl_seconds (one day).
const maxSkew = 86400

// Crypto selects where signatures are verified.
type Crypto string

// Crypto modes.
const (
	// CryptoAuto uses Envoy's verify_signature foreign function when a probe
	// at plugin start shows that it works, and verifies in the guest
	// otherwise.
	CryptoAuto Crypto = "auto"
	// CryptoHost requires the foreign function: plugin start fails without.
	CryptoHost Crypto = "host"
	// CryptoGuest always verifies inside the Wasm module (about 1 ms per
	// request) and never calls the host.
	CryptoGuest Crypto = "guest"
)

// Entry is an allow-list entry as written in the configuration.
type Entry struct {
	PublicKey string `json:"public_key"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	DeviceID  string `json:"device_id,omitempty"`
}

// IdentityHeaders names the headers set for the upstream.
type IdentityHeaders struct {
	DeviceID   string `json:"device_id"`
	DeviceName string `json:"device_name"`
}

// NonceCache is the shape of the shared-data nonce cache.
type NonceCache struct {
	Buckets     int `json:"buckets"`
	Slots       int `json:"slots"`
	MaxAttempts int `json:"max_attempts"`
}

// File is the JSON document of the plugin configuration. Unknown fields are
// errors, so that a misspelt option is not silently ignored.
type File struct {
	AllowList         []Entry         `json:"allow_list"`
	AllowListSHA256   string          `json:"allow_list_sha256,omitempty"`
	Authorities       []string        `json:"authorities,omitempty"`
	RequireV2         bool            `json:"require_v2,omitempty"`
	ClockSkewSeconds  int64           `json:"clock_skew_seconds,omitempty"`
	NonceTTLSeconds   int64           `json:"nonce_ttl_seconds,omitempty"`
	MaxBodyBytes      int64           `json:"max_body_bytes,omitempty"`
	IdentityHeaders   IdentityHeaders `json:"identity_headers,omitzero"`
	KeepAuthorization bool            `json:"keep_authorization,omitempty"`
	Crypto            Crypto          `json:"crypto,omitempty"`
	NonceCache        NonceCache      `json:"nonce_cache,omitzero"`
}

// Config is a checked configuration.
type Config struct {
	// Devices are the allow-list entries, IDs filled in.
	Devices []*protocol.Device
	// AllowList is the list the verifier uses. When the list failed its
	// integrity pin it is a list whose every lookup fails, so that
	// requests get 500 allow_list_integrity_failure as the protocol says,
	// and no traffic passes.
	AllowList protocol.AllowList
	// AllowListSHA256 is the digest of the loaded list (see Digest).
	AllowListSHA256 string
	// IntegrityErr is set when the list does not match its pin.
	IntegrityErr error

	Authorities  []string
	RequireV2    bool
	ClockSkew    time.Duration
	NonceTTL     time.Duration
	MaxBodyBytes int64

	DeviceIDHeader    string
	DeviceNameHeader  string
	KeepAuthorization bool
	Crypto            Crypto
	NonceCache        noncecache.Layout

	// Warnings are worth a log line at start but do not stop the plugin.
	Warnings []string
}

// Parse reads and checks a plugin configuration.
func Parse(data []byte) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("plugin configuration is empty: an allow list is required")
	}
	var f File
	if err := strictjson.Decode(data, &f); errors.Is(err, strictjson.ErrTrailingData) {
		return nil, errors.New("plugin configuration has data after the JSON object")
	} else if err != nil {
		return nil, fmt.Errorf("plugin configuration is not valid JSON for this filter: %w", err)
	}
	return f.Check()
}

// Check validates f and builds the Config.
func (f *File) Check() (*Config, error) {
	c := &Config{
		RequireV2:         f.RequireV2,
		KeepAuthorization: f.KeepAuthorization,
		MaxBodyBytes:      f.MaxBodyBytes,
	}
	if f.AllowList == nil {
		return nil, errors.New("allow_list is missing")
	}
	if len(f.AllowList) > MaxAllowListEntries {
		return nil, fmt.Errorf("allow_list has %d entries, limit %d", len(f.AllowList), MaxAllowListEntries)
	}
	seen := make(map[[protocol.PublicKeySize]byte]int, len(f.AllowList))
	for i, e := range f.AllowList {
		d, err := e.device()
		if err != nil {
			return nil, fmt.Errorf("allow_list[%d]: %w", i, err)
		}
		if j, dup := seen[d.Key.Array()]; dup {
			return nil, fmt.Errorf("allow_list[%d]: public key already listed at allow_list[%d]", i, j)
		}
		seen[d.Key.Array()] = i
		c.Devices = append(c.Devices, d)
	}
	list, err := protocol.NewStaticAllowList(c.Devices...)
	if err != nil {
		return nil, fmt.Errorf("allow_list: %w", err)
	}
	c.AllowList = list
	if len(c.Devices) == 0 {
		c.Warnings = append(c.Warnings, "allow_list is empty: every signed request will be rejected")
	}
	c.AllowListSHA256 = Digest(c.Devices)
	if f.AllowListSHA256 != "" {
		pin := strings.ToLower(f.AllowListSHA256)
		if b, err := hex.DecodeString(pin); err != nil || len(b) != sha256.Size {
			return nil, errors.New("allow_list_sha256 is not 64 hex digits")
		}
		if pin != c.AllowListSHA256 {
			c.IntegrityErr = fmt.Errorf("%w: allow list digest %s does not match allow_list_sha256 %s",
				protocol.ErrIntegrity, c.AllowListSHA256, pin)
			c.AllowList = failedList{c.IntegrityErr}
		}
	}

	for i, a := range f.Authorities {
		for _, scheme := range [...]string{"http", "https"} {
			if _, err := protocol.Authority(a, scheme); err != nil {
				return nil, fmt.Errorf("authorities[%d] %q: %w", i, a, err)
			}
		}
	}
	c.Authorities = slices.Clone(f.Authorities)
	if len(f.Authorities) == 0 {
		// Version 2 binds a request to an audience only when the verifier
		// knows which audiences are its own.
		c.Warnings = append(c.Warnings, "no authorities configured: version 2 requests are checked against their own Host header only, which binds them to nothing")
	}

	switch {
	case f.ClockSkewSeconds < 0 || f.ClockSkewSeconds > maxSkew:
		return nil, fmt.Errorf("clock_skew_seconds %d, want 1 to %d (0 for the default %v)", f.ClockSkewSeconds, maxSkew, protocol.DefaultClockSkew)
	case f.NonceTTLSeconds < 0 || f.NonceTTLSeconds > 2*maxSkew:
		return nil, fmt.Errorf("nonce_ttl_seconds %d, want 1 to %d (0 for the default %v)", f.NonceTTLSeconds, 2*maxSkew, protocol.DefaultNonceTTL)
	case f.MaxBodyBytes < 0 || f.MaxBodyBytes > maxBodyLimit:
		return nil, fmt.Errorf("max_body_bytes %d, want 1 to %d (0 for the default %d)", f.MaxBodyBytes, maxBodyLimit, protocol.DefaultMaxBodyBytes)
	}
	c.ClockSkew = time.Duration(f.ClockSkewSeconds) * time.Second
	c.NonceTTL = time.Duration(f.NonceTTLSeconds) * time.Second

	c.DeviceIDHeader, err = headerName(f.IdentityHeaders.DeviceID, DefaultDeviceIDHeader)
	if err != nil {
		return nil, fmt.Errorf("identity_headers.device_id: %w", err)
	}
	c.DeviceNameHeader, err = headerName(f.IdentityHeaders.DeviceName, DefaultDeviceNameHeader)
	if err != nil {
		return nil, fmt.Errorf("identity_headers.device_name: %w", err)
	}
	if c.DeviceIDHeader == c.DeviceNameHeader {
		return nil, fmt.Errorf("identity_headers: device_id and device_name are both %q", c.DeviceIDHeader)
	}

	switch f.Crypto {
	case "":
		c.Crypto = CryptoAuto
	case CryptoAuto, CryptoHost, CryptoGuest:
		c.Crypto = f.Crypto
	default:
		return nil, fmt.Errorf("crypto %q, want %q, %q or %q", f.Crypto, CryptoAuto, CryptoHost, CryptoGuest)
	}

	c.NonceCache = noncecache.Layout{
		Buckets: f.NonceCache.Buckets, Slots: f.NonceCache.Slots, MaxAttempts: f.NonceCache.MaxAttempts,
	}.WithDefaults()
	if err := c.NonceCache.Validate(); err != nil {
		return nil, err
	}

	// The verifier repeats some checks and applies its own; a
	// configuration it refuses must fail here, not at the first request.
	if _, err := protocol.NewVerifier(c.Protocol(protocol.NewMemoryNonceStore(1))); err != nil {
		return nil, err
	}
	return c, nil
}

// Protocol returns the verifier configuration with nonces recorded in store.
func (c *Config) Protocol(store protocol.NonceStore) protocol.Config {
	return protocol.Config{
		AllowList:    c.AllowList,
		Nonces:       store,
		ClockSkew:    c.ClockSkew,
		NonceTTL:     c.NonceTTL,
		MaxBodyBytes: c.MaxBodyBytes,
		Authorities:  slices.Clone(c.Authorities),
		RequireV2:    c.RequireV2,
	}
}

func (e Entry) device() (*protocol.Device, error) {
	if e.PublicKey == "" {
		return nil, errors.New("public_key is missing")
	}
	k, err := protocol.DecodePublicKey(e.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("public_key: %w", err)
	}
	switch e.Role {
	case protocol.RoleController, protocol.RoleTarget:
	case "":
		return nil, fmt.Errorf("role is missing (want %q or %q)", protocol.RoleController, protocol.RoleTarget)
	default:
		return nil, fmt.Errorf("role %q, want %q or %q", e.Role, protocol.RoleController, protocol.RoleTarget)
	}
	id := k.DeviceID()
	if e.DeviceID != "" && e.DeviceID != id {
		// The ID is derived from the key; a different one means the entry
		// was copied wrong, and the wrong ID would be sent upstream.
		return nil, fmt.Errorf("device_id %q does not belong to this public key (its ID is %q)", e.DeviceID, id)
	}
	return &protocol.Device{ID: id, Name: e.Name, Role: e.Role, Key: k}, nil
}

// Digest returns the hex SHA-256 that allow_list_sha256 pins: the digest of
// one line per device, sorted, each "<device ID> <role> <public key in
// standard base64> <name as a JSON string>\n". The plugin logs it at start.
func Digest(devices []*protocol.Device) string {
	lines := make([]string, 0, len(devices))
	for _, d := range devices {
		name, _ := json.Marshal(d.Name)
		lines = append(lines, d.ID+" "+d.Role+" "+d.Key.String()+" "+string(name)+"\n")
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// failedList is the allow list of a configuration whose list failed its
// integrity pin: every lookup reports the failure.
type failedList struct{ err error }

// Lookup implements protocol.AllowList.
func (l failedList) Lookup([protocol.PublicKeySize]byte) (*protocol.Device, error) { return nil, l.err }

// forbiddenHeaders are names the filter must not overwrite: they carry the
// request itself or hop-by-hop semantics.
var forbiddenHeaders = []string{
	"authorization", "host", "content-length", "content-type", "transfer-encoding",
	"connection", "te", "upgrade", "cookie", "keep-alive", "proxy-connection", "expect",
}

func headerName(name, def string) (string, error) {
	if name == "" {
		return def, nil
	}
	n := strings.ToLower(name)
	for i := 0; i < len(n); i++ {
		if !isTokenChar(n[i]) {
			return "", fmt.Errorf("%q is not a valid header name", name)
		}
	}
	if slices.Contains(forbiddenHeaders, n) {
		return "", fmt.Errorf("%q is reserved and cannot carry the identity", name)
	}
	return n, nil
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
