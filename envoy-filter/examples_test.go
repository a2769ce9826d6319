//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"os"
	"strings"
	"testing"
)

// exampleConfigs extracts the filter configuration from the shipped
// examples: the StringValue block of envoy.yaml and the JSON pluginConfig
// of the Istio manifest.
func exampleConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	read := func(p string) []string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(b), "\n")
	}
	out := map[string][]byte{}

	lines := read("examples/envoy.yaml")
	for i, l := range lines {
		if strings.TrimSpace(l) != "value: |" {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		var block []string
		for _, b := range lines[i+1:] {
			if strings.TrimSpace(b) != "" && len(b)-len(strings.TrimLeft(b, " ")) <= indent {
				break
			}
			block = append(block, b)
		}
		out["envoy.yaml"] = []byte(strings.Join(block, "\n"))
	}

	lines = read("examples/istio-wasmplugin.yaml")
	for i, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "pluginConfig: {") {
			continue
		}
		depth := 0
		var block []string
		for _, b := range lines[i:] {
			b = strings.Replace(b, "pluginConfig:", "", 1)
			block = append(block, b)
			depth += strings.Count(b, "{") - strings.Count(b, "}")
			if depth == 0 {
				break
			}
		}
		out["istio-wasmplugin.yaml"] = []byte(strings.Join(block, "\n"))
	}
	if len(out) != 2 {
		t.Fatalf("found the configuration of %d examples, want 2", len(out))
	}
	return out
}

// TestExampleConfigurationsStart: the configurations the examples ship
// start the filter without warnings, and the filter guards with them.
func TestExampleConfigurationsStart(t *testing.T) {
	examples := exampleConfigs(t)
	eachMode(t, func(t *testing.T, m mode) {
		for name, cfg := range examples {
			t.Run(name, func(t *testing.T) {
				e := newEnvoy(t, m, cfg, withEnvoyCrypto)
				e.mustStart()
				for _, l := range e.logs() {
					if strings.HasPrefix(l, "proxy_warn") || strings.HasPrefix(l, "proxy_critical") {
						t.Errorf("start logged: %s", l)
					}
				}
				e.setTime(t0)
				if st, code := e.do(request{Method: "GET", Target: "/", Authority: "localhost:10000"}).outcome(); st != 400 || code != "missing_header" {
					t.Errorf("unsigned request: %d %q", st, code)
				}
				if st, code := e.do(sign(t, signed{Version: "2", Host: "localhost:10000"})).outcome(); st != 401 || code != "unauthorized" {
					t.Errorf("request by a key not in the example list: %d %q", st, code)
				}
			})
		}
	})
}
