package config_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/config"
	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Keys with private scalars 2 and 3.
const (
	keyC = "A3zyexiNA09+ilI4AwS1GsPAiWnid/IbNaYLSPxHZpl4"
	keyD = "Al7L5NGmMwpEyPfvlR1L8WXmxrch762phftBZhvG5/1s"
)

func idOf(t *testing.T, k string) string {
	t.Helper()
	pk, err := protocol.DecodePublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pk.DeviceID()
}

func TestParseFull(t *testing.T) {
	doc := `{
	  "allow_list": [
	    {"public_key": "` + keyC + `", "name": "ci runner", "role": "controller"},
	    {"public_key": "` + keyD + `", "name": "db", "role": "target", "device_id": "` + idOf(t, keyD) + `"}
	  ],
	  "authorities": ["api.example.test", "api.example.test:8443"],
	  "require_v2": true,
	  "clock_skew_seconds": 10,
	  "nonce_ttl_seconds": 120,
	  "max_body_bytes": 4096,
	  "identity_headers": {"device_id": "X-Caller-Id", "device_name": "x-caller-name"},
	  "keep_authorization": true,
	  "crypto": "guest",
	  "nonce_cache": {"buckets": 128, "slots": 16, "max_attempts": 4}
	}`
	c, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Devices) != 2 || c.Devices[0].ID != idOf(t, keyC) || c.Devices[0].Name != "ci runner" {
		t.Errorf("devices %+v", c.Devices)
	}
	if c.ClockSkew != 10*time.Second || c.NonceTTL != 120*time.Second || c.MaxBodyBytes != 4096 || !c.RequireV2 {
		t.Errorf("limits %v %v %v %v", c.ClockSkew, c.NonceTTL, c.MaxBodyBytes, c.RequireV2)
	}
	if c.DeviceIDHeader != "x-caller-id" || c.DeviceNameHeader != "x-caller-name" || !c.KeepAuthorization {
		t.Errorf("headers %q %q %v", c.DeviceIDHeader, c.DeviceNameHeader, c.KeepAuthorization)
	}
	if c.Crypto != config.CryptoGuest || c.NonceCache != (noncecache.Layout{Buckets: 128, Slots: 16, MaxAttempts: 4}) {
		t.Errorf("crypto %q layout %+v", c.Crypto, c.NonceCache)
	}
	if c.IntegrityErr != nil || len(c.Warnings) != 0 {
		t.Errorf("integrity %v warnings %q", c.IntegrityErr, c.Warnings)
	}
	v, err := protocol.NewVerifier(c.Protocol(protocol.NewMemoryNonceStore(0)))
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Config(); got.ClockSkew != 10*time.Second || len(got.Authorities) != 2 {
		t.Errorf("verifier config %+v", got)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := config.Parse([]byte(`{"allow_list": [{"public_key": "` + keyC + `", "role": "controller"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Crypto != config.CryptoAuto || c.DeviceIDHeader != config.DefaultDeviceIDHeader ||
		c.DeviceNameHeader != config.DefaultDeviceNameHeader || c.KeepAuthorization {
		t.Errorf("defaults: %+v", c)
	}
	if c.NonceCache != (noncecache.Layout{}).WithDefaults() {
		t.Errorf("nonce cache %+v", c.NonceCache)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "authorities") {
		t.Errorf("warnings %q, want one about authorities", c.Warnings)
	}
	v, err := protocol.NewVerifier(c.Protocol(protocol.NewMemoryNonceStore(0)))
	if err != nil {
		t.Fatal(err)
	}
	got := v.Config()
	if got.ClockSkew != protocol.DefaultClockSkew || got.NonceTTL != protocol.DefaultNonceTTL || got.MaxBodyBytes != protocol.DefaultMaxBodyBytes {
		t.Errorf("effective %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	entry := `{"public_key": "` + keyC + `", "role": "controller"}`
	cases := []struct{ doc, want string }{
		{``, "empty"},
		{`   `, "empty"},
		{`[]`, "not valid JSON"},
		{`{"allow_list": [` + entry + `]} {}`, "data after"},
		{`{"allow_list": [` + entry + `], "alow_list": []}`, `unknown field "alow_list"`},
		{`{}`, "allow_list is missing"},
		{`{"allow_list": [{"role": "controller"}]}`, "allow_list[0]: public_key is missing"},
		{`{"allow_list": [{"public_key": "AAAA", "role": "controller"}]}`, "allow_list[0]: public_key"},
		{`{"allow_list": [{"public_key": "` + keyC + `"}]}`, "role is missing"},
		{`{"allow_list": [{"public_key": "` + keyC + `", "role": "admin"}]}`, `role "admin"`},
		{`{"allow_list": [{"public_key": "` + keyC + `", "role": "controller", "device_id": "am_AAAAAAAAAAAAAAAA"}]}`, "does not belong"},
		{`{"allow_list": [` + entry + `, ` + entry + `]}`, "already listed at allow_list[0]"},
		{`{"allow_list": [` + entry + `], "allow_list_sha256": "abc"}`, "64 hex digits"},
		{`{"allow_list": [` + entry + `], "authorities": ["bad host/"]}`, "authorities[0]"},
		{`{"allow_list": [` + entry + `], "clock_skew_seconds": -1}`, "clock_skew_seconds"},
		{`{"allow_list": [` + entry + `], "clock_skew_seconds": 1.5}`, "not valid JSON"},
		{`{"allow_list": [` + entry + `], "nonce_ttl_seconds": -5}`, "nonce_ttl_seconds"},
		{`{"allow_list": [` + entry + `], "max_body_bytes": -1}`, "max_body_bytes"},
		{`{"allow_list": [` + entry + `], "max_body_bytes": 2147483648}`, "max_body_bytes"},
		{`{"allow_list": [` + entry + `], "identity_headers": {"device_id": "bad header"}}`, "not a valid header name"},
		{`{"allow_list": [` + entry + `], "identity_headers": {"device_id": ":path"}}`, "not a valid header name"},
		{`{"allow_list": [` + entry + `], "identity_headers": {"device_name": "Authorization"}}`, "reserved"},
		{`{"allow_list": [` + entry + `], "identity_headers": {"device_id": "x-a", "device_name": "X-A"}}`, "both"},
		{`{"allow_list": [` + entry + `], "crypto": "fast"}`, `crypto "fast"`},
		{`{"allow_list": [` + entry + `], "nonce_cache": {"buckets": 100000}}`, "buckets"},
		{`{"allow_list": [` + entry + `], "nonce_cache": {"slots": 0, "max_attempts": 99}}`, "max_attempts"},
	}
	for _, c := range cases {
		_, err := config.Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s): %v, want an error containing %q", c.doc, err, c.want)
		}
	}
}

func TestIntegrityPin(t *testing.T) {
	entries := `[{"public_key": "` + keyC + `", "name": "c", "role": "controller"}, {"public_key": "` + keyD + `", "name": "d", "role": "target"}]`
	c, err := config.Parse([]byte(`{"allow_list": ` + entries + `}`))
	if err != nil {
		t.Fatal(err)
	}
	pin := c.AllowListSHA256
	// The digest does not depend on the order of the entries.
	reordered := `[{"public_key": "` + keyD + `", "name": "d", "role": "target"}, {"public_key": "` + keyC + `", "name": "c", "role": "controller"}]`
	c2, err := config.Parse([]byte(`{"allow_list": ` + reordered + `, "allow_list_sha256": "` + strings.ToUpper(pin) + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c2.IntegrityErr != nil {
		t.Fatalf("matching pin: %v", c2.IntegrityErr)
	}
	// A changed name changes the digest: the list no longer matches its pin,
	// and every lookup reports the integrity failure.
	changed := strings.Replace(entries, `"name": "c"`, `"name": "C"`, 1)
	c3, err := config.Parse([]byte(`{"allow_list": ` + changed + `, "allow_list_sha256": "` + pin + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c3.IntegrityErr, protocol.ErrIntegrity) {
		t.Fatalf("IntegrityErr %v", c3.IntegrityErr)
	}
	k, _ := protocol.DecodePublicKey(keyC)
	if _, err := c3.AllowList.Lookup(k.Array()); !errors.Is(err, protocol.ErrIntegrity) {
		t.Fatalf("lookup on a failed list: %v", err)
	}
}

// FuzzParse feeds arbitrary documents to the parser. It must never panic,
// and whatever it accepts must be usable: a verifier builds from it, the
// header names are valid, and the same document parses to the same list.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"allow_list": [{"public_key": "` + keyC + `", "name": "c", "role": "controller"}]}`))
	f.Add([]byte(`{"allow_list": [], "authorities": ["a.example:443"], "require_v2": true, "crypto": "host"}`))
	f.Add([]byte(`{"allow_list": [{"public_key": "` + keyD + `", "role": "target"}], "nonce_cache": {"buckets": 1, "slots": 1}, "identity_headers": {"device_id": "X-Id"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if _, err := protocol.NewVerifier(c.Protocol(protocol.NewMemoryNonceStore(1))); err != nil {
			t.Fatalf("accepted configuration makes no verifier: %v", err)
		}
		if err := c.NonceCache.Validate(); err != nil {
			t.Fatalf("accepted nonce cache layout: %v", err)
		}
		for _, h := range []string{c.DeviceIDHeader, c.DeviceNameHeader} {
			if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " :\r\n\t") {
				t.Fatalf("accepted header name %q", h)
			}
		}
		if len(c.Devices) > config.MaxAllowListEntries {
			t.Fatalf("%d devices", len(c.Devices))
		}
		again, err := config.Parse(data)
		if err != nil || again.AllowListSHA256 != c.AllowListSHA256 {
			t.Fatalf("second parse differs: %v", err)
		}
		if _, err := json.Marshal(c.Devices); err != nil {
			t.Fatal(err)
		}
	})
}
