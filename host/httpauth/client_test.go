package httpauth

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/amesh-go/amesh/wasm/protocol"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// onlyReader hides every method but Read, so net/http knows neither the
// length nor how to rewind it.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestClientBodies(t *testing.T) {
	ctl := testKey(t, 1)
	m, _ := newMiddleware(t, Options{AllowList: Static(list(t, ctl))})
	mux := http.NewServeMux()
	mux.Handle("/", m.Handler(http.HandlerFunc(echo)))
	// A 307 keeps method and body: the client resends the body (GetBody)
	// with a fresh signature for the new target.
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new?moved=1", http.StatusTemporaryRedirect)
	})
	srv := serve(t, mux)
	client := NewClient(ctl)
	payload := []byte(`{"k":"v"}`)
	bodies := map[string]func() io.Reader{
		"nil":          func() io.Reader { return nil },
		"NoBody":       func() io.Reader { return http.NoBody },
		"bytes.Reader": func() io.Reader { return bytes.NewReader(payload) },
		"strings":      func() io.Reader { return strings.NewReader(string(payload)) },
		"buffer":       func() io.Reader { return bytes.NewBuffer(payload) },
		"plain reader": func() io.Reader { return onlyReader{iotest.HalfReader(bytes.NewReader(payload))} },
	}
	for name, mk := range bodies {
		for _, path := range []string{"/direct?a=1", "/old"} {
			if name == "plain reader" && path == "/old" {
				// net/http follows a 307 only for a body it can rewind
				// (GetBody on the caller's request): not a Transport matter.
				continue
			}
			body := mk()
			status, data := do(t, client, "POST", srv.URL+path, body)
			var got echoed
			if status != 200 || json.Unmarshal(data, &got) != nil {
				t.Fatalf("%s %s: %d %s", name, path, status, data)
			}
			want := payload
			if body == nil || body == http.NoBody {
				want = nil
			}
			if !bytes.Equal(got.Body, want) {
				t.Errorf("%s %s: server read %q", name, path, got.Body)
			}
		}
	}

	// The caller's request is not modified, and its body is closed.
	rc := &closeCounter{Reader: bytes.NewReader(payload)}
	req, _ := http.NewRequest("PUT", srv.URL+"/x", rc)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.Header.Get("Authorization") != "" || rc.closed == 0 || resp.StatusCode != 200 {
		t.Fatalf("request modified (%q) or body not closed (%d), status %d", req.Header.Get("Authorization"), rc.closed, resp.StatusCode)
	}

	// Bodies over the signing limit fail before anything is sent.
	small := &http.Client{Transport: &Transport{Signer: ctl, MaxBodyBytes: 4}}
	if _, err := small.Post(srv.URL+"/", "text/plain", strings.NewReader("12345")); err == nil || !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("over the signing limit: %v", err)
	}
	// A failing signer is an error, not an unsigned request.
	bad := &http.Client{Transport: &Transport{Signer: brokenSigner{ctl.PublicKey()}}}
	if _, err := bad.Get(srv.URL + "/"); err == nil || !strings.Contains(err.Error(), "hardware gone") {
		t.Fatalf("failing signer: %v", err)
	}
}

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

type brokenSigner struct{ pub []byte }

func (b brokenSigner) PublicKey() []byte                 { return b.pub }
func (b brokenSigner) SignDigest([]byte) ([]byte, error) { return nil, errors.New("hardware gone") }

// TestVersion2OverHTTP2 runs a TLS server with HTTP/2 that requires
// version 2 for its own authority: the scheme comes from the connection,
// the target from :path, the audience from :authority.
func TestVersion2OverHTTP2(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			ctl := testKey(t, 1)
			srv := httptest.NewUnstartedServer(nil)
			srv.EnableHTTP2 = true
			srv.StartTLS()
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "https://")
			m, _ := newMiddleware(t, Options{AllowList: Static(list(t, ctl)), Engine: eng, RequireV2: true, Authorities: []string{host}})
			srv.Config.Handler = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.ProtoMajor != 2 {
					http.Error(w, "not HTTP/2", 500)
					return
				}
				echo(w, r)
			}))
			base := srv.Client().Transport
			v2 := &http.Client{Transport: &Transport{Signer: ctl, Version: protocol.Version2, Base: base}}
			if status, body := do(t, v2, "POST", srv.URL+"/h2?x=1", strings.NewReader("data")); status != 200 {
				t.Fatalf("v2 over h2: %d %s", status, body)
			}
			v1 := &http.Client{Transport: &Transport{Signer: ctl, Base: base}}
			if status, body := do(t, v1, "GET", srv.URL+"/h2", nil); status != 400 || string(body) != `{"error":"unsupported_version"}` {
				t.Fatalf("v1 where v2 is required: %d %s", status, body)
			}
			// Signed for this server, sent to the same listener under
			// another name: the audience does not match.
			other := &http.Client{Transport: &Transport{Signer: ctl, Version: protocol.Version2, Base: &http.Transport{
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
				ForceAttemptHTTP2: true,
			}}}
			alias := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
			if status, _ := do(t, other, "GET", alias+"/h2", nil); status != 401 {
				t.Fatalf("other authority: %d", status)
			}
		})
	}
}
