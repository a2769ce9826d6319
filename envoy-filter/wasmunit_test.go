//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// TestInternalPackagesUnderWasm runs the unit tests of the filter's pure-Go
// packages a second time, compiled to wasip1 and executed by wazero: the
// code they test ships inside amesh-envoy.wasm, so it must behave the same
// there. (The goroutine tests of noncecache run on wasm's single thread
// there; the real concurrency is exercised by the native run.)
func TestInternalPackagesUnderWasm(t *testing.T) {
	root, err := vectors.Root()
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found: %v", err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	for _, pkg := range []string{"config", "hostcrypto", "noncecache"} {
		t.Run(pkg, func(t *testing.T) {
			dir := filepath.Join(root, "envoy-filter", "internal", pkg)
			bin := filepath.Join(t.TempDir(), pkg+".test.wasm")
			cmd := exec.Command(goBin, "test", "-c", "-o", bin, ".")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build the %s tests for wasip1: %v\n%s", pkg, err, out)
			}
			code, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cfg := wazero.NewModuleConfig().
				WithName(pkg).
				WithArgs(pkg+".test", "-test.count=1", "-test.v").
				WithEnv("PWD", "/").
				WithFSConfig(wazero.NewFSConfig().WithDirMount(dir, "/")).
				WithStdout(&out).WithStderr(&out).
				WithSysWalltime().WithSysNanotime().WithSysNanosleep().
				WithRandSource(rand.Reader)
			mod, err := r.InstantiateWithConfig(ctx, code, cfg)
			if mod != nil {
				mod.Close(ctx)
			}
			var exit *sys.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 0 {
				err = nil
			}
			if err != nil {
				t.Fatalf("%s tests under wazero: %v\n%s", pkg, err, out.String())
			}
			if !bytes.HasSuffix(out.Bytes(), []byte("\nPASS\n")) || !bytes.Contains(out.Bytes(), []byte("--- PASS: Test")) {
				t.Fatalf("%s tests under wazero did not pass:\n%s", pkg, out.String())
			}
		})
	}
}
