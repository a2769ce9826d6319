//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// filterVectorsPath holds request vectors written for the filter (see
// TestFilterVectorFile); they run beside testdata/vectors and
// AMESH_EXTRA_VECTORS.
const filterVectorsPath = "testdata/vectors/filter.json"

var updateVectors = flag.Bool("update-vectors", false, "regenerate "+filterVectorsPath)

// vectorFiles returns the project's vector files, AMESH_EXTRA_VECTORS and the
// filter's own.
func vectorFiles(t *testing.T) []*vectors.File {
	files := vectors.Load(t)
	own, err := vectors.Read(filterVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	return append(files, own)
}

// TestVectors runs the request section of every vector file through the
// filter, in both modes and with both crypto paths, and requires the status
// and error of the native core and of the vector.
func TestVectors(t *testing.T) {
	files := vectorFiles(t)
	for _, m := range modes {
		for _, crypto := range []string{"host", "guest"} {
			t.Run(string(m)+"/"+crypto, func(t *testing.T) {
				vectors.RunRequests(t, files, func(f *vectors.File, rv *vectors.Request) (vectors.Outcome, error) {
					want, err := vectors.NativeDecide(f, rv)
					if err != nil {
						return vectors.Outcome{}, fmt.Errorf("native core: %w", err)
					}
					got, err := filterDecide(t, m, crypto, rv)
					if err != nil {
						return vectors.Outcome{}, err
					}
					if got.Status != want.Status || got.Error != want.Error {
						return got, fmt.Errorf("filter answered %d %q, native core %d %q (%s) [filter log: %s]",
							got.Status, got.Error, want.Status, want.Error, want.Detail, got.Detail)
					}
					return got, nil
				})
			})
		}
	}
}

// vectorNonceLayout is the nonce cache of vector runs; replayed nonces are
// recorded into it from the test, through the same shared data.
var vectorNonceLayout = noncecache.Layout{Buckets: 8}

// filterDecide runs one request vector through a freshly configured filter.
func filterDecide(t *testing.T, m mode, crypto string, rv *vectors.Request) (vectors.Outcome, error) {
	entries := make([]map[string]any, 0, len(rv.AllowList))
	for _, a := range rv.AllowList {
		e := map[string]any{"public_key": a.PublicKey, "name": a.Name, "role": a.Role}
		if a.DeviceID != "" {
			e["device_id"] = a.DeviceID
		}
		entries = append(entries, e)
	}
	cfg := map[string]any{
		"allow_list":  entries,
		"crypto":      crypto,
		"nonce_cache": map[string]any{"buckets": vectorNonceLayout.Buckets},
	}
	if v := rv.Verifier; v != nil {
		cfg["authorities"] = v.Authorities
		cfg["require_v2"] = v.RequireV2
		cfg["clock_skew_seconds"] = v.SkewSeconds
		cfg["nonce_ttl_seconds"] = v.NonceTTLSeconds
		cfg["max_body_bytes"] = v.MaxBodyBytes
	}
	if rv.IntegrityFailure {
		// The filter's allow list fails its integrity check when it does
		// not match its pin.
		cfg["allow_list_sha256"] = strings.Repeat("0", 64)
	}
	hc := withEnvoyCrypto
	if crypto == "guest" {
		hc = withoutForeign
	}
	e := openEnvoy(t, m, mustJSON(t, cfg), hc)
	defer e.close()
	if !e.StartPlugin() {
		return vectors.Outcome{}, fmt.Errorf("plugin did not start: %s", strings.Join(e.logs(), " | "))
	}
	now := time.Unix(rv.Now, 0)
	e.setTime(now)
	if len(rv.ReplayedNonces) > 0 {
		key, err := vectors.RequestingKey(rv)
		if err != nil {
			return vectors.Outcome{}, err
		}
		// The test process reaches the emulator's shared data through the
		// SDK exactly as the module does, so this is the module's cache.
		cache, err := noncecache.New(sharedData{}, vectorNonceLayout)
		if err != nil {
			return vectors.Outcome{}, err
		}
		for _, n := range rv.ReplayedNonces {
			nb, err := base64.RawURLEncoding.DecodeString(n)
			if err != nil {
				return vectors.Outcome{}, fmt.Errorf("replayed nonce %q: %w", n, err)
			}
			if _, err := cache.Record(t.Context(), string(key)+string(nb), now, time.Hour); err != nil {
				return vectors.Outcome{}, err
			}
		}
	}
	body, err := rv.Body()
	if err != nil {
		return vectors.Outcome{}, fmt.Errorf("body_b64: %w", err)
	}
	req := request{Method: rv.Method, Target: rv.Target, Authority: rv.HostHeader(), Scheme: rv.SchemeOrDefault(), Body: body}
	for _, a := range rv.AuthorizationValues() {
		req.Headers = append(req.Headers, [2]string{"authorization", a})
	}
	mark := sink.mark()
	res := e.do(req)
	st, code := res.outcome()
	if res.Forwarded {
		if got := res.header("x-amesh-device-id"); len(got) != 1 {
			return vectors.Outcome{}, fmt.Errorf("accepted, but upstream x-amesh-device-id is %q", got)
		}
	}
	return vectors.Outcome{Status: st, Error: code, Detail: strings.Join(sink.since(mark), " | ")}, nil
}

// TestFilterVectorFile checks the filter's own vectors against the native
// core. With -update-vectors it writes them anew (signatures differ at each
// run; the expectations do not).
func TestFilterVectorFile(t *testing.T) {
	if *updateVectors {
		data, err := compactVectors(generateVectors(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filterVectorsPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filterVectorsPath, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := vectors.Read(filterVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Request) < 30 {
		t.Fatalf("%d request vectors, want the full set", len(f.Request))
	}
	vectors.RunRequests(t, []*vectors.File{f}, vectors.NativeDecide)
}

// compactVectors encodes f without the optional request fields that hold
// their zero value, so that the file shows what each vector is about.
func compactVectors(f *vectors.File) ([]byte, error) {
	raw, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	required := map[string]bool{"id": true, "now": true, "allow_list": true, "method": true, "target": true,
		"authorization": true, "body_b64": true, "status": true, "error": true}
	for _, r := range doc["request"].([]any) {
		m := r.(map[string]any)
		for k, v := range m {
			if required[k] {
				continue
			}
			switch v := v.(type) {
			case nil:
				delete(m, k)
			case string:
				if v == "" {
					delete(m, k)
				}
			case bool:
				if !v {
					delete(m, k)
				}
			}
		}
	}
	for _, k := range []string{"canonical", "verify", "header", "device_id"} {
		delete(doc, k)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// generateVectors writes one vector per behaviour the filter must share
// with the native middleware, and checks each against the native core.
func generateVectors(t *testing.T) *vectors.File {
	keyHex := func(k *protocol.PrivateKey) string {
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}
	f := &vectors.File{
		Schema: vectors.Schema,
		Source: "envoy-filter/vectors_test.go (go test ./envoy-filter -run TestFilterVectorFile -update-vectors): behaviours the Envoy filter must share with the native core",
		Keys: map[string]vectors.Key{
			"C": {PrivateHex: keyHex(ctrlKey), PublicKey: ctrlKey.Public().String(), DeviceID: ctrlKey.Public().DeviceID()},
			"D": {PrivateHex: keyHex(targetKey), PublicKey: targetKey.Public().String(), DeviceID: targetKey.Public().DeviceID()},
			"U": {PrivateHex: keyHex(unknownKey), PublicKey: unknownKey.Public().String(), DeviceID: unknownKey.Public().DeviceID()},
		},
	}
	now := t0.Unix()
	allow := []vectors.AllowEntry{
		{PublicKey: ctrlKey.Public().String(), Role: "controller", DeviceID: ctrlKey.Public().DeviceID(), Name: ctrlName},
		{PublicKey: targetKey.Public().String(), Role: "target", DeviceID: targetKey.Public().DeviceID(), Name: "db"},
	}
	n := 0
	nonce := func() []byte { n++; return []byte(fmt.Sprintf("filter-vec-%05d", n)) }
	type spec struct {
		id, note string
		s        signed
		mutate   func(r *vectors.Request)
		status   int
		code     string
	}
	host := func(h string) *string { return &h }
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	specs := []spec{
		{id: "filter-v1-get", note: "plain v1 GET", s: signed{}, status: 200},
		{id: "filter-v1-post-body", s: signed{Method: "POST", Body: []byte(`{"a":1,"b":[true,null]}`)}, status: 200},
		{id: "filter-v1-binary-body", s: signed{Method: "PUT", Body: []byte{0, 1, 2, 0xff, 0xfe, '\n'}}, status: 200},
		{id: "filter-v1-query-sorted", note: "query sorted and re-encoded", s: signed{Target: "/api/items?b=2&a=1&c=%7E&flag"}, status: 200},
		{id: "filter-v1-dot-segments", s: signed{Target: "/api/a/./b/../c"}, status: 200},
		{id: "filter-v1-delete", s: signed{Method: "DELETE"}, status: 200},
		{id: "filter-v2-accepted", s: signed{Version: "2", Method: "POST", Body: []byte("x")},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{Authorities: []string{testHost}} }, status: 200},
		{id: "filter-v2-port-normalised", note: "https default port dropped on both sides", s: signed{Version: "2", Host: testHost + ":443"},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{Authorities: []string{testHost}} }, status: 200},
		{id: "filter-v2-http-scheme", s: signed{Version: "2", Host: "svc.internal:8080", Scheme: "http"},
			mutate: func(r *vectors.Request) {
				r.Scheme = "http"
				r.Verifier = &vectors.VerifierConfig{Authorities: []string{"svc.internal:8080"}}
			}, status: 200},
		{id: "filter-v2-wrong-audience", s: signed{Version: "2", Host: "other.example.test"},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{Authorities: []string{testHost}} }, status: 401, code: "unauthorized"},
		{id: "filter-v2-required-v1-sent", s: signed{},
			mutate: func(r *vectors.Request) {
				r.Verifier = &vectors.VerifierConfig{Authorities: []string{testHost}, RequireV2: true}
			}, status: 400, code: "unsupported_version"},
		{id: "filter-v2-required-v2-sent", s: signed{Version: "2"},
			mutate: func(r *vectors.Request) {
				r.Verifier = &vectors.VerifierConfig{Authorities: []string{testHost}, RequireV2: true}
			}, status: 200},
		{id: "filter-missing-header", s: signed{}, mutate: func(r *vectors.Request) { r.Authorization = "" }, status: 400, code: "missing_header"},
		{id: "filter-malformed-header", s: signed{}, mutate: func(r *vectors.Request) { r.Authorization = `AuthMesh v="1"` }, status: 400, code: "malformed_header"},
		{id: "filter-unsupported-version", s: signed{}, mutate: func(r *vectors.Request) {
			r.Authorization = strings.Replace(r.Authorization, `v="1"`, `v="7"`, 1)
		}, status: 400, code: "unsupported_version"},
		{id: "filter-two-headers", s: signed{}, mutate: func(r *vectors.Request) {
			r.Authorizations = []string{r.Authorization, r.Authorization}
		}, status: 400, code: "malformed_header"},
		{id: "filter-unknown-key", s: signed{Key: unknownKey}, status: 401, code: "unauthorized"},
		{id: "filter-target-role", s: signed{Key: targetKey}, status: 401, code: "unauthorized"},
		{id: "filter-ts-stale", s: signed{Time: t0.Add(-31 * time.Second)}, status: 401, code: "unauthorized"},
		{id: "filter-ts-future", s: signed{Time: t0.Add(31 * time.Second)}, status: 401, code: "unauthorized"},
		{id: "filter-ts-edge", s: signed{Time: t0.Add(-30 * time.Second)}, status: 200},
		{id: "filter-custom-skew-reject", s: signed{Time: t0.Add(-6 * time.Second)},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{SkewSeconds: 5} }, status: 401, code: "unauthorized"},
		{id: "filter-custom-skew-accept", s: signed{Time: t0.Add(-4 * time.Second)},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{SkewSeconds: 5} }, status: 200},
		{id: "filter-tampered-body", s: signed{Method: "POST", Body: []byte(`{"amount":1}`)},
			mutate: func(r *vectors.Request) { r.BodyB64 = b64([]byte(`{"amount":9}`)) }, status: 401, code: "unauthorized"},
		{id: "filter-tampered-target", s: signed{Target: "/api/items?id=1"},
			mutate: func(r *vectors.Request) { r.Target = "/api/items?id=2" }, status: 401, code: "unauthorized"},
		{id: "filter-tampered-method", s: signed{Method: "GET"},
			mutate: func(r *vectors.Request) { r.Method = "DELETE" }, status: 401, code: "unauthorized"},
		{id: "filter-high-s", note: "s replaced by n - s: valid ECDSA, rejected by the protocol", s: signed{},
			mutate: func(r *vectors.Request) { r.Authorization = highS(t, r.Authorization) }, status: 401, code: "unauthorized"},
		{id: "filter-replayed-nonce", s: signed{Nonce: []byte("replayed-nonce-1")},
			mutate: func(r *vectors.Request) {
				r.ReplayedNonces = []string{base64.RawURLEncoding.EncodeToString([]byte("replayed-nonce-1"))}
			}, status: 401, code: "unauthorized"},
		{id: "filter-other-nonce-recorded", s: signed{Nonce: []byte("fresh-nonce-0001")},
			mutate: func(r *vectors.Request) {
				r.ReplayedNonces = []string{base64.RawURLEncoding.EncodeToString([]byte("other-nonce-0001"))}
			}, status: 200},
		{id: "filter-body-at-limit", s: signed{Method: "POST", Body: []byte("0123456789abcdef")},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{MaxBodyBytes: 16} }, status: 200},
		{id: "filter-body-over-limit", s: signed{Method: "POST", Body: []byte("0123456789abcdefg")},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{MaxBodyBytes: 16} }, status: 413, code: "payload_too_large"},
		{id: "filter-over-limit-unknown-key", note: "the key is checked before the body", s: signed{Key: unknownKey, Method: "POST", Body: []byte("0123456789abcdefg")},
			mutate: func(r *vectors.Request) { r.Verifier = &vectors.VerifierConfig{MaxBodyBytes: 16} }, status: 401, code: "unauthorized"},
		{id: "filter-over-limit-bad-signature", note: "the size is checked before the signature", s: signed{Method: "POST", Body: []byte("0123456789abcdefg")},
			mutate: func(r *vectors.Request) {
				r.Verifier = &vectors.VerifierConfig{MaxBodyBytes: 16}
				r.BodyB64 = b64([]byte("0123456789abcdefX"))
			}, status: 413, code: "payload_too_large"},
		{id: "filter-integrity-failure", s: signed{},
			mutate: func(r *vectors.Request) { r.IntegrityFailure = true }, status: 500, code: "allow_list_integrity_failure"},
		{id: "filter-integrity-failure-missing-header", note: "header errors come before the allow list", s: signed{},
			mutate: func(r *vectors.Request) { r.IntegrityFailure = true; r.Authorization = "" }, status: 400, code: "missing_header"},
		{id: "filter-base64url-id", note: "id in base64url form", s: signed{},
			mutate: func(r *vectors.Request) {
				std := ctrlKey.Public().String()
				r.Authorization = strings.Replace(r.Authorization, std, strings.NewReplacer("+", "-", "/", "_").Replace(std), 1)
			}, status: 200},
		{id: "filter-host-absent-v1", note: "v1 does not sign the host", s: signed{},
			mutate: func(r *vectors.Request) { r.Host = host("anything.example") }, status: 200},
	}
	for _, sp := range specs {
		s := sp.s
		s.Nonce = orNonce(s.Nonce, nonce)
		req := sign(t, s)
		rv := &vectors.Request{
			ID: sp.id, Now: now, AllowList: allow, Method: req.Method, Target: req.Target,
			Authorization: req.Headers[0][1], BodyB64: b64(req.Body), Status: sp.status, Error: sp.code, Note: sp.note,
		}
		if req.Authority != testHost {
			rv.Host = host(req.Authority)
		}
		if sp.mutate != nil {
			sp.mutate(rv)
		}
		got, err := vectors.NativeDecide(f, rv)
		if err != nil {
			t.Fatalf("%s: %v", sp.id, err)
		}
		if got.Status != sp.status || got.Error != sp.code {
			t.Fatalf("%s: native core says %d %q (%s), the vector says %d %q", sp.id, got.Status, got.Error, got.Detail, sp.status, sp.code)
		}
		f.Request = append(f.Request, rv)
	}
	return f
}

func orNonce(b []byte, next func() []byte) []byte {
	if b != nil {
		return b
	}
	return next()
}

// highS rewrites the signature of a header into its high-S twin.
func highS(t *testing.T, header string) string {
	h, err := protocol.ParseHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	sig := vectors.HighS(h.Signature[:])
	return protocol.FormatHeader(h.V, h.ID, h.TS, h.Nonce, base64.RawURLEncoding.EncodeToString(sig))
}
