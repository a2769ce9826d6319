package main

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/amesh-go/amesh/internal/testenv"
)

// oversized are packages that must stay out of amesh.wasm, with what each
// would cost and what the guest uses instead; the package documentation of
// wasm/protocol explains the size goal.
var oversized = map[string]string{
	"fmt":                            "links reflect and its formatting machinery; build errors with strconv and a wrapping error type",
	"reflect":                        "comes with fmt, encoding/binary and others; find who imports it",
	"math/big":                       "imports fmt; wasm/internal/p256 has its own arithmetic mod n (scalar.go)",
	"crypto/rand":                    "links the FIPS 140 DRBG, AES and GCM; read WASI random_get (syscall.RandomGet)",
	"crypto/sha256":                  "links the FIPS 140 module and os; use wasm/internal/sha256",
	"crypto/internal/fips140/sha256": "is crypto/sha256's FIPS 140 code, which comes with the whole module; use wasm/internal/sha256",
	"crypto/ecdsa":                   "links every curve and the FIPS 140 module; use wasm/internal/p256",
	"encoding/binary":                "imports reflect; write the few bytes by hand",
	"encoding/hex":                   "imports fmt; see appendLowerHex in wasm/protocol",
	"filippo.io/nistec":              "links an 88 KB table of precomputed points that gzip cannot shrink, and x/sys/cpu; use wasm/internal/p256",
	"golang.org/x/sys/cpu":           "brings os; nothing in the guest needs CPU features",
	"os":                             "links files and internal/poll; nothing in a reactor needs them",
	"crypto/internal/fips140/drbg":   "is the FIPS 140 random number generator; see crypto/rand and crypto/sha256",
}

// TestWasmDependencies fails when a package that makes amesh.wasm much
// larger comes back into the guest's dependencies for GOOS=wasip1
// GOARCH=wasm, and names who imports it.
func TestWasmDependencies(t *testing.T) {
	goBin := testenv.LookPath(t, "go", "the Go toolchain")
	cmd := exec.Command(goBin, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	importers := map[string][]string{}
	deps := 0
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		deps++
		if _, ok := importers[f[0]]; !ok {
			importers[f[0]] = nil // a dependency, whoever imports it
		}
		for _, imp := range f[1:] {
			importers[imp] = append(importers[imp], f[0])
		}
	}
	if deps < 10 || importers["github.com/amesh-go/amesh/wasm/protocol"] == nil {
		t.Fatalf("go list output does not look like the guest's dependencies:\n%s", out)
	}
	var bad []string
	for pkg, why := range oversized {
		if by, ok := importers[pkg]; ok {
			sort.Strings(by)
			bad = append(bad, pkg+" (imported by "+strings.Join(by, ", ")+"): it "+why)
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error("amesh.wasm depends on " + b)
	}
}
