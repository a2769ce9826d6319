// Package wasmbuild builds amesh.wasm exactly as the committed copy in
// host/wasmhost was built, and fingerprints the sources it comes from. The
// generator (go generate ./host/wasmhost) and the up-to-date test share it,
// so that they cannot disagree about flags or inputs.
package wasmbuild

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// GuestPackage is the import path of the guest.
const GuestPackage = "github.com/amesh-go/amesh/wasm/guest"

// Stamp records how the committed amesh.wasm was made.
type Stamp struct {
	// Go is the toolchain that built it (runtime.Version of the generator).
	Go string `json:"go"`
	// Sources is the SHA-256 fingerprint of every module file the guest is
	// built from, plus go.mod and go.sum (see Sources).
	Sources string `json:"sources"`
	// Wasm is the SHA-256 of amesh.wasm.
	Wasm string `json:"wasm"`
	// Command is the build command, for people.
	Command string `json:"command"`
}

// Command is the build command the generator runs, relative to the module
// root. -buildvcs=false keeps the output independent of the checkout's git
// state; -trimpath of its directory.
var Command = []string{"go", "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-o"}

// env is the environment of go list and go build for the guest.
func env() []string {
	return append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
}

// Build compiles the guest from the module at root into out.
func Build(root, out string) error {
	args := append(append([]string{}, Command[1:]...), out, "./wasm/guest")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("wasmbuild: go build of the guest: %w\n%s", err, stderr.Bytes())
	}
	return nil
}

// Sources fingerprints the inputs of the guest inside the module at root:
// the Go and embedded files of every in-module package the guest depends on
// for wasip1/wasm, and the path and version of every other module it links
// (the standard library is covered by the toolchain version). Other
// changes to go.mod do not touch the fingerprint.
func Sources(root string) (string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "github.com/amesh-go/amesh"}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{else}}module {{.Module.Path}}@{{.Module.Version}}{{with .Module.Replace}} => {{.Path}}@{{.Version}}{{end}}{{end}}{{end}}`,
		"./wasm/guest")
	cmd.Dir = root
	cmd.Env = env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("wasmbuild: go list: %w\n%s", err, stderr.Bytes())
	}
	var files, modules []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "module ") {
			modules = append(modules, line)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, fields[0])
		if err != nil {
			return "", fmt.Errorf("wasmbuild: %w", err)
		}
		for _, f := range fields[1:] {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	sort.Strings(files)
	sort.Strings(modules)
	modules = slices.Compact(modules)
	h := sha256.New()
	for _, m := range modules {
		fmt.Fprintf(h, "%s\x00", m)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return "", fmt.Errorf("wasmbuild: %w", err)
		}
		// Line endings are normalised so that a checkout with CRLF (git
		// autocrlf on Windows) fingerprints the same.
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Sum returns the hex SHA-256 of data.
func Sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// NewStamp describes wasm, built now from the module at root.
func NewStamp(root string, wasm []byte) (*Stamp, error) {
	src, err := Sources(root)
	if err != nil {
		return nil, err
	}
	cmd := "GOOS=wasip1 GOARCH=wasm " + strings.Join(Command, " ") + " host/wasmhost/amesh.wasm ./wasm/guest"
	return &Stamp{Go: runtime.Version(), Sources: src, Wasm: Sum(wasm), Command: cmd}, nil
}

// ReadStamp reads a stamp file.
func ReadStamp(path string) (*Stamp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasmbuild: %w", err)
	}
	s := &Stamp{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("wasmbuild: %s: %w", path, err)
	}
	return s, nil
}

// Marshal formats a stamp file.
func (s *Stamp) Marshal() []byte {
	data, _ := json.MarshalIndent(s, "", "\t")
	return append(data, '\n')
}
