// Package vectors loads the known-answer vectors of testdata/vectors (schema
// amesh-vectors/1, described in testdata/vectors/README.md) and the extra
// files named by AMESH_EXTRA_VECTORS, so that every implementation of the
// protocol (native, wasm guest, Envoy filter) runs the same cases.
package vectors

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Schema is the schema name every vector file carries.
const Schema = "amesh-vectors/1"

// ExtraEnv names the environment variable listing extra vector files,
// separated by colons.
const ExtraEnv = "AMESH_EXTRA_VECTORS"

// File is one vector file.
type File struct {
	Path      string         `json:"-"`
	Schema    string         `json:"schema"`
	Source    string         `json:"source"`
	Keys      map[string]Key `json:"keys"`
	Canonical []*Canonical   `json:"canonical"`
	Verify    []*Verify      `json:"verify"`
	Header    []*Header      `json:"header"`
	DeviceID  []*DeviceID    `json:"device_id"`
	Request   []*Request     `json:"request"`
}

// Key is a named test key.
type Key struct {
	PrivateHex string `json:"private_hex"`
	PublicKey  string `json:"public_key"`
	DeviceID   string `json:"device_id"`
}

// Canonical is a canonical-string vector (signing side).
type Canonical struct {
	ID       string `json:"id"`
	Method   string `json:"method"`
	Target   string `json:"target"`
	TS       string `json:"ts"`
	Nonce    string `json:"nonce"`
	BodyB64  string `json:"body_b64"`
	Expected string `json:"expected"`
	Note     string `json:"note"`
	// Version and Authority extend the schema for version 2 ("AMv2"):
	// absent means version 1.
	Version   string `json:"version"`
	Authority string `json:"authority"`
}

// Verify is a signature vector.
type Verify struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key"`
	Message   string `json:"message"`
	Sig       string `json:"sig"`
	Valid     bool   `json:"valid"`
	Note      string `json:"note"`
}

// Header is a header-grammar vector.
type Header struct {
	ID     string            `json:"id"`
	Value  string            `json:"value"`
	Result string            `json:"result"`
	Fields map[string]string `json:"fields"`
	Note   string            `json:"note"`
}

// DeviceID is a device-ID vector.
type DeviceID struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key"`
	DeviceID  string `json:"device_id"`
	Note      string `json:"note"`
}

// AllowEntry is an allow-list entry of a request vector.
type AllowEntry struct {
	PublicKey string `json:"public_key"`
	Role      string `json:"role"`
	DeviceID  string `json:"device_id"`
	Name      string `json:"name"`
}

// VerifierConfig is the optional verifier configuration of a request vector.
// Zero values mean the defaults.
type VerifierConfig struct {
	Authorities     []string `json:"authorities"`
	RequireV2       bool     `json:"require_v2"`
	SkewSeconds     int64    `json:"skew_seconds"`
	NonceTTLSeconds int64    `json:"nonce_ttl_seconds"`
	MaxBodyBytes    int64    `json:"max_body_bytes"`
}

// Request is a full-decision vector.
type Request struct {
	ID             string          `json:"id"`
	Now            int64           `json:"now"`
	AllowList      []AllowEntry    `json:"allow_list"`
	Method         string          `json:"method"`
	Target         string          `json:"target"`
	Host           *string         `json:"host"`
	Authorization  string          `json:"authorization"`
	BodyB64        string          `json:"body_b64"`
	ReplayedNonces []string        `json:"replayed_nonces"`
	Verifier       *VerifierConfig `json:"verifier"`
	Status         int             `json:"status"`
	Error          string          `json:"error"`
	Note           string          `json:"note"`
	// Extensions, ignored by readers that do not know them:
	// Authorizations, when set, lists every Authorization header sent
	// (for the exactly-one rule); Scheme is "http" or "https" (default).
	Authorizations []string `json:"authorizations"`
	Scheme         string   `json:"scheme"`
	// IntegrityFailure makes the allow list fail its integrity check.
	IntegrityFailure bool `json:"allow_list_integrity_failure"`
}

// DefaultHost is the Host of a request vector that names none.
const DefaultHost = "api.example.test"

// HostHeader returns the vector's Host header value.
func (r *Request) HostHeader() string {
	if r.Host == nil {
		return DefaultHost
	}
	return *r.Host
}

// AuthorizationValues returns every Authorization header value to send.
func (r *Request) AuthorizationValues() []string {
	if r.Authorizations != nil {
		return r.Authorizations
	}
	if r.Authorization == "" {
		return nil
	}
	return []string{r.Authorization}
}

// Body decodes the request body.
func (r *Request) Body() ([]byte, error) { return DecodeStd(r.BodyB64) }

// SchemeOrDefault returns the request's scheme, "https" by default.
func (r *Request) SchemeOrDefault() string {
	if r.Scheme == "" {
		return "https"
	}
	return r.Scheme
}

// DecodeStd decodes standard base64 (empty is empty).
func DecodeStd(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(s)
}

// Sections lists the sections every vector file may hold.
var Sections = []string{"canonical", "verify", "header", "device_id", "request"}

// Root returns the module root, found by walking up from the working
// directory to go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("vectors: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Paths returns the project's vector files followed by the extra ones.
func Paths() ([]string, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(root, "testdata", "vectors", "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("vectors: no files in %s", filepath.Join(root, "testdata", "vectors"))
	}
	sort.Strings(paths)
	if extra := os.Getenv(ExtraEnv); extra != "" {
		for _, p := range strings.Split(extra, ":") {
			if p != "" {
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

// Read reads and checks one vector file.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vectors: %w", err)
	}
	f := &File{Path: path}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("vectors: %s: %w", path, err)
	}
	if f.Schema != Schema {
		return nil, fmt.Errorf("vectors: %s: schema %q, want %q", path, f.Schema, Schema)
	}
	return f, nil
}

// Load reads every vector file (the project's and AMESH_EXTRA_VECTORS),
// failing the test if any cannot be read.
func Load(t testing.TB) []*File {
	t.Helper()
	paths, err := Paths()
	if err != nil {
		t.Fatal(err)
	}
	var files []*File
	for _, p := range paths {
		f, err := Read(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// Name returns a subtest name for a vector: file base name, section, id.
func Name(f *File, section, id string, index int) string {
	if id == "" {
		id = fmt.Sprintf("#%d", index)
	}
	return filepath.Base(f.Path) + "/" + section + "/" + id
}

// Outcome is what an implementation decided for a request vector.
type Outcome struct {
	Status int
	Error  string
	// Detail is logged on a mismatch (a private reason, say).
	Detail string
}

// RunRequests runs every request vector of files through decide, one
// subtest each, and reports a mismatch with the vector's id and both values.
func RunRequests(t *testing.T, files []*File, decide func(*File, *Request) (Outcome, error)) {
	t.Helper()
	n := 0
	for _, f := range files {
		for i, rv := range f.Request {
			n++
			t.Run(Name(f, "request", rv.ID, i), func(t *testing.T) {
				got, err := decide(f, rv)
				if err != nil {
					t.Fatalf("vector %s: %v", rv.ID, err)
				}
				if got.Status != rv.Status || got.Error != rv.Error {
					t.Errorf("vector %s: got %d %q, want %d %q (%s) [note: %s]",
						rv.ID, got.Status, got.Error, rv.Status, rv.Error, got.Detail, rv.Note)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("vectors: no request vectors at all")
	}
}
