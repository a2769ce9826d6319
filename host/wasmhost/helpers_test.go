package wasmhost

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// engine returns the engine shared by every test of the package: compiling
// amesh.wasm is the expensive step, so it happens once per test binary
// (and, with the disk cache, mostly once per machine).
func engine(t testing.TB) *Engine {
	t.Helper()
	e, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func instance(t testing.TB) *Instance {
	t.Helper()
	i, err := engine(t).NewInstance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i.Close(context.Background()) })
	return i
}

func key(t testing.TB, b byte) *protocol.PrivateKey {
	t.Helper()
	k, err := protocol.ParsePrivateKey(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func allow(t testing.TB, role string, keys ...*protocol.PrivateKey) protocol.StaticAllowList {
	t.Helper()
	var devs []*protocol.Device
	for i, k := range keys {
		devs = append(devs, &protocol.Device{Role: role, Key: k.Public(), Name: "dev" + string(rune('0'+i))})
	}
	l, err := protocol.NewStaticAllowList(devs...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// signed returns a request signed by k at now.
func signed(t testing.TB, k protocol.Signer, method, target string, body []byte, now time.Time) *protocol.Request {
	t.Helper()
	s, err := protocol.SignRequest(k, protocol.SignParams{Method: method, Target: target, Body: body, Time: now})
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.Request{Method: method, Target: target, Host: "api.example.test",
		Authorization: []string{s.Authorization}, Body: body}
}
