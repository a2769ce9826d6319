package httpauth

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// A server on a device's sealed allow list: the paired controller is
// accepted, a revocation takes effect without a restart, and a tampered file
// fails closed with 500.
func TestDeviceSource(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "target")
	s, err := device.Create(device.CreateOptions{Dir: dir, Name: "target", Backend: keystore.BackendMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	controller := testKey(t, 1)
	stranger := testKey(t, 2)
	pub := controller.Public()
	if _, err := s.Add(device.Entry{DeviceID: pub.DeviceID(), PublicKey: pub.String(), FriendlyName: "laptop",
		AddedBy: "test", Role: protocol.RoleController}, device.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, engine := range []Engine{Native, Wasm} {
		t.Run(engine.String(), func(t *testing.T) {
			m, _ := newMiddleware(t, Options{AllowList: DeviceSource(s), Engine: engine, ReloadInterval: -1})
			srv := serve(t, m.Handler(http.HandlerFunc(echo)))
			if code, body := do(t, NewClient(controller), "GET", srv.URL+"/x", nil); code != 200 {
				t.Fatalf("paired controller: %d %s", code, body)
			}
			if code, _ := do(t, NewClient(stranger), "GET", srv.URL+"/x", nil); code != 401 {
				t.Fatalf("stranger: %d", code)
			}
			if _, err := s.Remove(pub.DeviceID()); err != nil {
				t.Fatal(err)
			}
			if code, _ := do(t, NewClient(controller), "GET", srv.URL+"/x", nil); code != 401 {
				t.Fatalf("revoked controller: %d", code)
			}
			if _, err := s.Add(device.Entry{DeviceID: pub.DeviceID(), PublicKey: pub.String(), FriendlyName: "laptop",
				AddedBy: "test", Role: protocol.RoleController}, device.AddOptions{}); err != nil {
				t.Fatal(err)
			}
			if code, _ := do(t, NewClient(controller), "GET", srv.URL+"/x", nil); code != 200 {
				t.Fatalf("re-added controller: %d", code)
			}
			path := filepath.Join(dir, device.AllowListFile)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bad := append([]byte(nil), good...)
			bad[len(bad)/2] ^= 1
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			code, body := do(t, NewClient(controller), "GET", srv.URL+"/x", nil)
			if code != 500 || string(body) != `{"error":"allow_list_integrity_failure"}` {
				t.Fatalf("tampered list: %d %s", code, body)
			}
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if code, _ := do(t, NewClient(controller), "GET", srv.URL+"/x", nil); code != 200 {
				t.Fatalf("restored list: %d", code)
			}
		})
	}
}
