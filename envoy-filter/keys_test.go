//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// Test keys: fixed scalars, so that failures are reproducible.
var (
	ctrlKey    = scalarKey(2) // a controller in the allow list
	targetKey  = scalarKey(3) // a target in the allow list
	unknownKey = scalarKey(4) // not in the allow list
)

const (
	testHost = "api.example.test"
	ctrlName = "ci runner"
)

// t0 is the time of most test requests.
var t0 = time.Unix(1743160800, 0)

func scalarKey(s byte) *protocol.PrivateKey {
	b := make([]byte, 32)
	b[31] = s
	k, err := protocol.ParsePrivateKey(b)
	if err != nil {
		panic(err)
	}
	return k
}

// baseConfig is a valid plugin configuration; mutate the map to vary it.
func baseConfig() map[string]any {
	return map[string]any{
		"allow_list": []map[string]any{
			{"public_key": ctrlKey.Public().String(), "name": ctrlName, "role": "controller"},
			{"public_key": targetKey.Public().String(), "name": "db", "role": "target"},
		},
		"authorities": []string{testHost},
		// Few buckets keep plugin start fast; capacity is not under test.
		"nonce_cache": map[string]any{"buckets": 16},
	}
}

// signed describes a request to sign.
type signed struct {
	Key     *protocol.PrivateKey
	Version string
	Method  string
	Target  string
	Host    string
	Scheme  string
	Body    []byte
	Time    time.Time
	Nonce   []byte
	// Headers are extra headers besides Authorization.
	Headers [][2]string
}

// sign builds the request with its Authorization header.
func sign(tb testing.TB, s signed) request {
	tb.Helper()
	if s.Key == nil {
		s.Key = ctrlKey
	}
	s.Method = orDefault(s.Method, "GET")
	s.Target = orDefault(s.Target, "/api/items")
	s.Host = orDefault(s.Host, testHost)
	s.Scheme = orDefault(s.Scheme, "https")
	if s.Time.IsZero() {
		s.Time = t0
	}
	p := protocol.SignParams{Version: s.Version, Method: s.Method, Target: s.Target, Body: s.Body, Time: s.Time, Nonce: s.Nonce}
	if s.Version == protocol.Version2 {
		a, err := protocol.Authority(s.Host, s.Scheme)
		if err != nil {
			tb.Fatal(err)
		}
		p.Authority = a
	}
	sg, err := protocol.SignRequest(s.Key, p)
	if err != nil {
		tb.Fatal(err)
	}
	return request{
		Method: s.Method, Target: s.Target, Authority: s.Host, Scheme: s.Scheme,
		Headers: append([][2]string{{"authorization", sg.Authorization}}, s.Headers...),
		Body:    s.Body,
	}
}
