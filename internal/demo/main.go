// Command demo runs amesh's main job end to end on loopback, with the real
// binaries and embedded defaults: an amesh-relay, a controller (a laptop)
// and a server enrolled unattended with a bootstrap token, a Go service
// protected by the middleware, and requests that are accepted, replayed,
// tampered with, stale, meant for another service, and refused after a
// revocation. `make demo` builds the binaries and runs it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/amesh-go/amesh/host/bootstrap"
	"github.com/amesh-go/amesh/host/device"
	"github.com/amesh-go/amesh/host/httpauth"
	"github.com/amesh-go/amesh/keystore"
	"github.com/amesh-go/amesh/relay/provision"
	"github.com/amesh-go/amesh/wasm/protocol"
)

func main() {
	bin := flag.String("bin", "build", "directory holding the amesh and amesh-relay binaries")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demo holds what the steps share.
type demo struct {
	out  io.Writer
	bin  string
	env  []string
	work string
}

// passphrase protects the demo's encrypted-file keys; the demo's
// directories are deleted at the end.
const passphrase = "amesh-demo-passphrase"

func run(ctx context.Context, out io.Writer, bin string) error {
	for _, b := range []string{"amesh", "amesh-relay"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%s not built in %s: run 'make build' (or 'make demo')", b, bin)
		}
	}
	work, err := os.MkdirTemp("", "amesh-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	d := &demo{out: out, bin: bin, work: work,
		env: append(os.Environ(), keystore.EnvPassphrase+"="+passphrase, "NO_COLOR=1", provision.EnvToken+"=", device.EnvDir+"=",
			// A demo never touches a real TPM.
			keystore.EnvTPMDevice+"="+filepath.Join(work, "no-tpm"))}
	laptop, server := filepath.Join(work, "laptop"), filepath.Join(work, "api-server")

	// 1. The relay.
	relay, stopRelay, err := d.startRelay(ctx)
	if err != nil {
		return err
	}
	defer stopRelay()
	d.say("1. A relay: amesh-relay on %s", relay)

	// 2. The controller.
	if _, err := d.amesh("--dir", laptop, "init", "--name", "laptop", "--backend", "encrypted-file"); err != nil {
		return err
	}
	laptopID, err := d.amesh("--dir", laptop, "whoami")
	if err != nil {
		return err
	}
	laptopID = strings.TrimSpace(laptopID)
	d.say("2. The controller:  amesh init --name laptop                    -> %s", laptopID)

	// 3. A bootstrap token for a server nobody will type a code into.
	tokOut, err := d.amesh("--dir", laptop, "provision", "--name", "api-server", "--relay", relay, "--ttl", "10m")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`AMESH_BOOTSTRAP_TOKEN=(\S+)`).FindStringSubmatch(tokOut)
	if m == nil {
		return fmt.Errorf("amesh provision printed no token: %q", tokOut)
	}
	token := m[1]
	d.say("3. A token:         amesh provision --name api-server            -> AMESH_BOOTSTRAP_TOKEN=%s…", token[:24])

	// 4. The service starts with the token in its environment: it enrols
	// itself and trusts the laptop.
	os.Setenv(keystore.EnvPassphrase, passphrase)
	state, provisioned, err := bootstrap.OpenOrProvision(ctx, bootstrap.Options{Dir: server, Token: token, Backend: keystore.BackendFile})
	if err != nil {
		return fmt.Errorf("service enrolment: %w", err)
	}
	defer state.Close()
	if !provisioned {
		return errors.New("the service found an identity it should not have")
	}
	url, reasons, stopService, err := serve(state)
	if err != nil {
		return err
	}
	defer stopService()
	d.say("4. The service:     enrolled with the token as %s, on %s", state.Identity().DeviceID, url)

	// 5. The laptop records the server.
	collected, err := d.amesh("--dir", laptop, "provision", "collect")
	if err != nil {
		return err
	}
	d.say("5. Collected:       amesh provision collect                      -> %s", strings.TrimSpace(firstLine(collected)))

	// 6. Requests.
	d.say("")
	body, err := d.amesh("--dir", laptop, "curl", "-X", "POST", "-d", `{"amount":100}`, "-H", "Content-Type: application/json", url+"/api/orders")
	if err != nil {
		return err
	}
	d.say("6. amesh curl -X POST %s/api/orders   -> 200 %s  (%s)", url, strings.TrimSpace(body), reasons.last())

	lap, err := device.Open(laptop, keystore.Options{})
	if err != nil {
		return err
	}
	defer lap.Close()
	// Version 2 binds the signature to this server's authority.
	v2 := func(t *httpauth.Transport) { t.Version = protocol.Version2 }
	signed, err := captureSigned(lap, url+"/api/orders?b=2&a=1", []byte(`{"amount":7}`), v2)
	if err != nil {
		return err
	}
	tampered, err := captureSigned(lap, url+"/api/orders", []byte(`{"amount":7}`), v2)
	if err != nil {
		return err
	}
	tampered.body = []byte(`{"amount":9}`)
	stale, err := captureSigned(lap, url+"/api/orders", []byte(`{"amount":7}`), func(t *httpauth.Transport) {
		t.Now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	})
	if err != nil {
		return err
	}
	// Signed for another service that trusts the same laptop, and sent here
	// with that service's Host header.
	elsewhere, err := captureSigned(lap, "http://billing.internal/api/orders", []byte(`{"amount":7}`), v2)
	if err != nil {
		return err
	}
	elsewhere.to = url
	for _, r := range []struct {
		label string
		req   *signedRequest
	}{
		{"7. A signed request from Go (v2, for this server)", signed},
		{"8. The same bytes again (replay)", signed},
		{"9. A body changed after signing", tampered},
		{"10. Signed two minutes ago (stale timestamp)", stale},
		{"11. Signed (v2) for billing.internal, sent here", elsewhere},
	} {
		status, text, err := send(r.req)
		if err != nil {
			return err
		}
		d.say("%-56s -> %d %s  (%s)", r.label, status, text, reasons.last())
	}

	// 12. Revocation on the server takes effect without a restart.
	if _, err := d.amesh("--dir", server, "revoke", laptopID, "--yes"); err != nil {
		return err
	}
	d.say("12. On the server:  amesh revoke %s --yes", laptopID)
	refused, err := d.amesh("--dir", laptop, "curl", "-i", url+"/api/orders")
	if err != nil {
		return err
	}
	d.say("13. amesh curl %s/api/orders (revoked) -> %s %s  (%s)", url, firstLine(refused)[len("HTTP/1.1 "):len("HTTP/1.1 401")], lastLine(refused), reasons.last())
	d.say("")
	d.say("Every 401 looks the same from outside; the reason is in the service's log. Cleaned up %s.", work)
	return nil
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

// amesh runs the amesh binary and returns its standard output.
func (d *demo) amesh(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(d.bin, "amesh"), args...)
	cmd.Env = d.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("amesh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// startRelay runs amesh-relay on a free loopback port until stop.
func (d *demo) startRelay(ctx context.Context) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "amesh-relay"), "--listen", addr, "--log-format", "text")
	cmd.Env = d.env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	url = "http://" + addr
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			return url, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("amesh-relay did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reasonLog keeps the private reasons the middleware logs.
type reasonLog struct {
	ch chan string
}

func (r *reasonLog) Write(p []byte) (int, error) {
	if m := regexp.MustCompile(`reason=(\S+)`).FindSubmatch(p); m != nil {
		select {
		case r.ch <- "log: " + string(m[1]):
		default:
		}
	}
	return len(p), nil
}

// last returns the reason logged for the latest request, or "accepted".
func (r *reasonLog) last() string {
	select {
	case s := <-r.ch:
		return s
	case <-time.After(200 * time.Millisecond):
		return "accepted"
	}
}

// serve runs the demo service: one handler behind the middleware, on the
// server's sealed allow list, answering for its own address only.
func serve(s *device.State) (url string, reasons *reasonLog, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	reasons = &reasonLog{ch: make(chan string, 16)}
	m, err := httpauth.New(httpauth.Options{AllowList: httpauth.DeviceSource(s), ReloadInterval: -1,
		Authorities: []string{l.Addr().String()}, Logger: slog.New(slog.NewTextHandler(reasons, nil))})
	if err != nil {
		l.Close()
		return "", nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/orders", func(w http.ResponseWriter, r *http.Request) {
		d, _ := httpauth.DeviceFrom(r.Context())
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "order accepted from %s (%d bytes)", d.Name, len(b))
	})
	srv := &http.Server{Handler: m.Handler(mux), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), reasons, func() { srv.Close(); m.Close() }, nil
}

// signedRequest is a request exactly as the signing client sent it.
type signedRequest struct {
	method, url string
	header      http.Header
	body        []byte
	// to, when set, is the server ("http://host:port") the request goes to
	// instead of the one in url, whose host stays in the Host header.
	to string
}

// captureSigned signs a request with the device's key through the Go client
// (httpauth.Transport, set up by configure when not nil) and keeps it, so
// that it can be sent, changed or sent again.
func captureSigned(s *device.State, url string, body []byte, configure func(*httpauth.Transport)) (*signedRequest, error) {
	var got *signedRequest
	tr := &httpauth.Transport{Signer: s.Key(), Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		got = &signedRequest{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: b}
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})}
	if configure != nil {
		configure(tr)
	}
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return got, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func send(s *signedRequest) (int, string, error) {
	req, err := http.NewRequest(s.method, s.url, bytes.NewReader(s.body))
	if err != nil {
		return 0, "", err
	}
	if s.to != "" {
		to, err := neturl.Parse(s.to)
		if err != nil {
			return 0, "", err
		}
		req.Host = req.URL.Host
		req.URL.Scheme, req.URL.Host = to.Scheme, to.Host
	}
	req.Header = s.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
