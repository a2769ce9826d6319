package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// start runs amesh-relay in-process with args and returns its address and a
// function that stops it (as SIGTERM would) and returns the exit code.
func start(t *testing.T, args ...string) (addr string, stop func() int, logs *testenv.Logs) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	code := make(chan int, 1)
	logs = &testenv.Logs{}
	args = append([]string{"--listen", testenv.Addr(testenv.FreePort(t))}, args...)
	go func() { code <- run(ctx, args, logs, logs, func(a string) { ready <- a }) }()
	select {
	case addr = <-ready:
	case c := <-code:
		cancel()
		t.Fatalf("amesh-relay exited with %d:\n%s", c, logs)
	}
	var once sync.Once
	result := 0
	stop = func() int {
		once.Do(func() { cancel(); result = <-code })
		return result
	}
	t.Cleanup(func() { stop() })
	return addr, stop, logs
}

func TestServesHealthAndStopsCleanly(t *testing.T) {
	addr, stop, logs := start(t, "--log-format", "text")
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h server.Health
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Status != "ok" || h.Version == "" {
		t.Fatalf("health %+v", h)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit code %d after a graceful shutdown:\n%s", code, logs)
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Fatalf("logs:\n%s", logs)
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "x.pem"}, "go together"},
		{[]string{"--rate-create", "lots"}, "N/DURATION"},
		{[]string{"--rate-join-fail", "0/1m"}, "positive count"},
		{[]string{"--ping-interval", "10s", "--pong-wait", "5s"}, "must exceed"},
		{[]string{"--max-frame", "0"}, "must be positive"},
		{[]string{"--rendezvous", "-1s"}, "must be positive"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--no-such-flag"}, "not defined"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--redis", "http://127.0.0.1:6379"}, "--redis"},
		{[]string{"--redis", "redis://127.0.0.1:6379/x"}, "invalid database number"},
		{[]string{"--rate-deliver", "many"}, "N/DURATION"},
		{[]string{"--rate-collect", "-3/1m"}, "positive count"},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		code := run(context.Background(), append([]string{"--listen", "127.0.0.1:0"}, tc.args...), &out, &out, nil)
		wantCode := exitUsage
		if code != wantCode || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tc.args, code, out.String(), wantCode, tc.want)
		}
	}
}

// The Redis URL can hold a password: the command line's errors and the
// relay's logs must not show it.
func TestRedisPasswordNeverShown(t *testing.T) {
	var out bytes.Buffer
	run(context.Background(), []string{"--listen", "127.0.0.1:0", "--redis", "redis://u:s3cret-pw@127.0.0.1:6379/x"}, &out, &out, nil)
	if strings.Contains(out.String(), "s3cret-pw") {
		t.Fatalf("usage error shows the password: %s", out.String())
	}
	t.Setenv(EnvRedis, "redis://u:s3cret-pw@"+testenv.Addr(testenv.FreePort(t)))
	_, stop, logs := start(t)
	stop()
	if !strings.Contains(logs.String(), "Redis does not answer") || !strings.Contains(logs.String(), "redis://u:xxxxx@") {
		t.Fatalf("the relay does not say which Redis it waits for:\n%s", logs)
	}
	if strings.Contains(logs.String(), "s3cret-pw") {
		t.Fatalf("the logs show the Redis password:\n%s", logs)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, &out, nil); code != 0 || !strings.HasPrefix(out.String(), "amesh-relay ") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"--help"}, &out, &out, nil); code != 0 || !strings.Contains(out.String(), "-rendezvous duration") {
		t.Fatalf("--help: %d %q", code, out.String())
	}
}

func TestListenFailure(t *testing.T) {
	l, err := net.Listen("tcp", testenv.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--listen", l.Addr().String()}, &out, &out, nil); code != exitError {
		t.Fatalf("listening on a used port: exit %d", code)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "amesh-relay test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pool
}

// A full pairing over wss:// through the real command.
func TestPairingOverTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	addr, _, logs := start(t, "--tls-cert", cert, "--tls-key", key)
	url := "wss://" + addr
	dial := &client.Options{TLSConfig: &tls.Config{RootCAs: pool}}

	// Plain WebSocket to a TLS port fails.
	if _, err := client.Dial(context.Background(), "ws://"+addr, nil); err == nil {
		t.Fatal("plain ws:// worked against a TLS listener")
	}
	tkey, _ := protocol.GeneratePrivateKey(nil)
	ckey, _ := protocol.GeneratePrivateKey(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	codes, shown := make(chan string, 1), make(chan string, 1)
	var targetGot, controllerGot pairing.Peer
	errs := make(chan error, 1)
	go func() {
		_, err := pairing.Listen(ctx, pairing.ListenOptions{
			Relay: pairing.RelayOptions{URL: url, Dial: dial}, Signer: tkey, Name: "web-01",
			OnCode: func(c string, _ time.Time) { codes <- c },
			Prompt: func(ctx context.Context, _ pairing.Peer) (string, error) { return <-shown, nil },
			Commit: func(_ context.Context, p pairing.Peer) error { targetGot = p; return nil },
		})
		errs <- err
	}()
	code := <-codes
	_, err := pairing.Invite(ctx, pairing.InviteOptions{
		Relay: pairing.RelayOptions{URL: url, Dial: dial}, Code: code, Signer: ckey, Name: "laptop",
		ShowCode: func(c string, _ pairing.Peer) { shown <- c },
		Commit:   func(_ context.Context, p pairing.Peer) error { controllerGot = p; return nil },
	})
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("listen: %v", err)
	}
	if !targetGot.PublicKey.Equal(ckey.Public()) || !controllerGot.PublicKey.Equal(tkey.Public()) {
		t.Fatal("wrong peers recorded")
	}
	if strings.Contains(logs.String(), code) {
		t.Fatal("the pairing code appears in the logs")
	}
}
