package command

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/host/httpauth"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the amesh command inside scripts,
// and as two helpers: a server protected by a device's allow list, and a
// way to trust a device without pairing.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"amesh":            func() { os.Exit(Main(os.Args[1:], StdIO())) },
		"amesh-testserver": testServer,
		"amesh-testtrust":  testTrust,
	})
}

// TestScripts runs the txtar scripts in testdata/script: one or more per
// command, with every error path.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("AUTH_MESH_DIR", filepath.Join(env.WorkDir, "amesh"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("NO_COLOR", "")
			// No TPM here: detection must fall through to the file.
			env.Setenv(keystore.EnvTPMDevice, filepath.Join(env.WorkDir, "no-tpm"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// waitfile FILE: wait up to 10 s for FILE to exist and be non-empty.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: waitfile FILE")
				}
				deadline := time.Now().Add(10 * time.Second)
				for {
					if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && len(b) > 0 {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("%s did not appear", args[0])
					}
					time.Sleep(20 * time.Millisecond)
				}
			},
			// envfile VAR FILE: set VAR to the trimmed contents of FILE.
			"envfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: envfile VAR FILE")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
		},
	})
}

// testTrust: amesh-testtrust TARGET_DIR CONTROLLER_DIR adds the controller's
// identity to the target's allow list, as pairing would.
func testTrust() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: amesh-testtrust TARGET_DIR CONTROLLER_DIR")
		os.Exit(2)
	}
	id, err := device.ReadIdentity(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := device.Open(os.Args[1], keystore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer s.Close()
	if _, err := s.Add(device.Entry{DeviceID: id.DeviceID, PublicKey: id.PublicKey, FriendlyName: id.FriendlyName,
		AddedBy: "test", Role: protocol.RoleController}, device.AddOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// testServer: amesh-testserver DIR URLFILE serves on loopback with the
// httpauth middleware on DIR's allow list (reloaded when it changes), and
// writes its URL to URLFILE.
func testServer() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: amesh-testserver DIR URLFILE")
		os.Exit(2)
	}
	s, err := device.Open(os.Args[1], keystore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	m, err := httpauth.New(httpauth.Options{AllowList: httpauth.DeviceSource(s), ReloadInterval: -1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handler := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := httpauth.DeviceFrom(r.Context())
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "hello %s, you sent %d bytes to %s %s\n", d.Name, len(body), r.Method, r.RequestURI)
	}))
	url := "http://" + ln.Addr().String()
	if err := os.WriteFile(os.Args[2]+".tmp", []byte(url), 0o600); err == nil {
		os.Rename(os.Args[2]+".tmp", os.Args[2])
	}
	http.Serve(ln, handler)
}
