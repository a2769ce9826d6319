// Command genwasm rebuilds host/wasmhost/amesh.wasm and its stamp,
// amesh.wasm.json. It runs from go generate in host/wasmhost:
//
//	go generate ./host/wasmhost
//
// The wasm is committed so that a clean checkout builds, vets and embeds it
// without any step before `go build ./...`; the stamp lets the tests tell
// when it no longer matches its sources.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/amesh-go/amesh/host/wasmhost/internal/wasmbuild"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genwasm:", err)
		os.Exit(1)
	}
}

func run() error {
	// go generate runs in the package directory, host/wasmhost.
	pkg, err := os.Getwd()
	if err != nil {
		return err
	}
	root := filepath.Join(pkg, "..", "..")
	out := filepath.Join(pkg, "amesh.wasm")
	tmp := out + ".tmp"
	if err := wasmbuild.Build(root, tmp); err != nil {
		return err
	}
	wasm, err := os.ReadFile(tmp)
	if err != nil {
		return err
	}
	stamp, err := wasmbuild.NewStamp(root, wasm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pkg, "amesh.wasm.json"), stamp.Marshal(), 0o644); err != nil {
		return err
	}
	fmt.Printf("genwasm: amesh.wasm %d bytes, sha256 %s\n", len(wasm), stamp.Wasm)
	return nil
}
