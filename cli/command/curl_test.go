package command

import (
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/host/httpauth"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// run runs the command in this process and returns exit code, stdout and
// stderr. Memory-backend keys made by the test are usable this way.
func runMain(args ...string) (int, string, string) {
	var out, errOut strings.Builder
	code := Main(args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// curlFixture is a controller (memory key) and a server trusting it.
func curlFixture(t *testing.T, handler http.HandlerFunc, tls bool) (dir string, srv *httptest.Server) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "c")
	s, err := device.Create(device.CreateOptions{Dir: dir, Name: "laptop", Backend: keystore.BackendMemory})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pub, err := protocol.ParsePublicKey(s.Key().PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	list, err := protocol.NewStaticAllowList(&protocol.Device{Name: "laptop", Role: protocol.RoleController, Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	m, err := httpauth.New(httpauth.Options{AllowList: httpauth.Static(list), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if tls {
		srv = httptest.NewUnstartedServer(m.Handler(handler))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
		srv.StartTLS()
	} else {
		srv = httptest.NewServer(m.Handler(handler))
	}
	t.Cleanup(srv.Close)
	return dir, srv
}

func TestCurlTLS(t *testing.T) {
	dir, srv := curlFixture(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure hello\n") }, true)
	// An unknown CA: refused, with a clear error.
	code, _, stderr := runMain("--dir", dir, "curl", srv.URL+"/x")
	if code != ExitError || !strings.Contains(stderr, "certificate") {
		t.Fatalf("unknown CA: exit %d, %s", code, stderr)
	}
	// -k skips verification.
	if code, out, stderr := runMain("--dir", dir, "curl", "-k", srv.URL+"/x"); code != 0 || out != "secure hello\n" {
		t.Fatalf("-k: exit %d %q %s", code, out, stderr)
	}
	// --cacert trusts the server's certificate.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runMain("--dir", dir, "curl", "--cacert", ca, "--audience-bound", srv.URL+"/x"); code != 0 || out != "secure hello\n" {
		t.Fatalf("--cacert: exit %d %q %s", code, out, stderr)
	}
	// A file without a certificate is a usage error.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if code, _, stderr := runMain("--dir", dir, "curl", "--cacert", bad, srv.URL+"/x"); code != ExitUsage || !strings.Contains(stderr, "no PEM certificate") {
		t.Fatalf("bad --cacert: exit %d %s", code, stderr)
	}
}

func TestCurlMaxTime(t *testing.T) {
	release := make(chan struct{})
	dir, srv := curlFixture(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, false)
	defer close(release)
	code, _, stderr := runMain("--dir", dir, "curl", "--max-time", "300ms", srv.URL+"/slow")
	if code != ExitError || !strings.Contains(stderr, "within 300ms: raise --max-time") {
		t.Fatalf("exit %d, %s", code, stderr)
	}
}
