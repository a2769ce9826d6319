package httpauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

func TestMountPrefixes(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			ctl := testKey(t, 1)
			m, _ := newMiddleware(t, Options{AllowList: Static(list(t, ctl)), Engine: eng})
			protected := m.Handler(http.HandlerFunc(echo))
			mux := http.NewServeMux()
			mux.Handle("/", protected)
			mux.Handle("/api/", http.StripPrefix("/api", protected))
			mux.Handle("/v1/svc/", http.StripPrefix("/v1", http.StripPrefix("/svc", protected)))
			// A router that rewrites the URL as gorilla's and chi's
			// subrouters do (path and raw path), not RequestURI.
			mux.Handle("/mounted/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r2 := r.Clone(r.Context())
				r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/mounted")
				r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/mounted")
				protected.ServeHTTP(w, r2)
			}))
			srv := serve(t, mux)
			client := NewClient(ctl)
			cases := []struct{ path, handlerPath string }{
				{"/plain?b=2&a=1", "/plain"},
				{"/api/items/42?q=%7Ex&flag", "/items/42"},
				{"/api/items/a%2Fb?z=%20", "/items/a/b"},
				{"/api/items/./c/../d", "/items/d"}, // ServeMux redirects to the clean path; both are signed
				{"/v1/svc/deep/path", "/deep/path"},
				{"/mounted/x/y?k=v+w", "/x/y"},
			}
			for _, c := range cases {
				status, body := do(t, client, "GET", srv.URL+c.path, nil)
				var got echoed
				if status != 200 || json.Unmarshal(body, &got) != nil {
					t.Fatalf("%s: %d %s", c.path, status, body)
				}
				if got.Device != ctl.Public().DeviceID() || got.Path != c.handlerPath {
					t.Errorf("%s: handler saw device %s path %q, want %q", c.path, got.Device, got.Path, c.handlerPath)
				}
			}
			// Unsigned, and signed by a stranger: the protocol's JSON errors.
			status, body := do(t, http.DefaultClient, "GET", srv.URL+"/api/items", nil)
			if status != 400 || string(body) != `{"error":"missing_header"}` {
				t.Errorf("unsigned: %d %s", status, body)
			}
			status, body = do(t, NewClient(testKey(t, 9)), "GET", srv.URL+"/api/items", nil)
			if status != 401 || string(body) != `{"error":"unauthorized"}` {
				t.Errorf("stranger: %d %s", status, body)
			}
		})
	}
}

func TestRejectionResponseAndLog(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			ctl := testKey(t, 1)
			m, logs := newMiddleware(t, Options{AllowList: Static(list(t, ctl)), Engine: eng})
			srv := serve(t, m.Handler(http.HandlerFunc(echo)))
			stranger := testKey(t, 8)
			req, _ := http.NewRequest("GET", srv.URL+"/secret", nil)
			resp, err := NewClient(stranger).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || string(body) != `{"error":"unauthorized"}` ||
				resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("WWW-Authenticate") != "AuthMesh" {
				t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
			}
			if l := logs.String(); !strings.Contains(l, "reason=unknown_key") || !strings.Contains(l, "target=/secret") {
				t.Fatalf("log does not carry the private reason:\n%s", l)
			}
		})
	}
}

func TestBodies(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			ctl := testKey(t, 1)
			m, _ := newMiddleware(t, Options{AllowList: Static(list(t, ctl)), Engine: eng})
			mux := http.NewServeMux()
			mux.Handle("/raw", m.Handler(http.HandlerFunc(echo)))
			mux.Handle("/json", m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var v map[string]any
				if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				fmt.Fprint(w, v["amount"])
			})))
			mux.Handle("/form", m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				fmt.Fprint(w, r.PostForm.Get("name")+"|"+r.Form.Get("q"))
			})))
			mux.Handle("/multipart", m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseMultipartForm(1 << 20); err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				f, _, err := r.FormFile("file")
				if err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				data, _ := io.ReadAll(f)
				fmt.Fprintf(w, "%s|%x", r.FormValue("field"), sha256.Sum256(data))
			})))
			// A body-reading middleware in front (a logger, a parser that
			// keeps the raw bytes): the signature covers what it restored.
			mux.Handle("/parsed", bufferingParser(m.Handler(http.HandlerFunc(echo))))
			// Go's own body limit in front, larger than the body.
			mux.Handle("/limited", http.MaxBytesHandler(m.Handler(http.HandlerFunc(echo)), 1<<20))
			srv := serve(t, mux)
			client := NewClient(ctl)

			status, body := do(t, client, "POST", srv.URL+"/json", strings.NewReader(`{"amount": 100, "currency": "EUR"}`))
			if status != 200 || string(body) != "100" {
				t.Errorf("json: %d %s", status, body)
			}
			// Untyped, the form parser sees no form: the request is still
			// verified (the handler answers), the field is just empty.
			status, body = do(t, client, "POST", srv.URL+"/form?q=query", strings.NewReader(url.Values{"name": {"ä b&c"}}.Encode()))
			if status != 200 || string(body) != "|query" {
				t.Errorf("untyped form: %d %s", status, body)
			}
			req, _ := http.NewRequest("POST", srv.URL+"/form?q=query", strings.NewReader(url.Values{"name": {"ä b&c"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ä b&c|query" {
				t.Errorf("form: %d %s", resp.StatusCode, body)
			}

			var mp bytes.Buffer
			mw := multipart.NewWriter(&mp)
			mw.WriteField("field", "value")
			fw, _ := mw.CreateFormFile("file", "f.bin")
			blob := make([]byte, 70_000)
			for i := range blob {
				blob[i] = byte(i * 31)
			}
			fw.Write(blob)
			mw.Close()
			req, _ = http.NewRequest("POST", srv.URL+"/multipart", &mp)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			resp, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("value|%x", sha256.Sum256(blob)); resp.StatusCode != 200 || string(body) != want {
				t.Errorf("multipart: %d %s", resp.StatusCode, body)
			}

			for _, path := range []string{"/raw", "/parsed", "/limited"} {
				for _, b := range [][]byte{nil, {}, blob, []byte("\x00\xff\r\n binary")} {
					status, body := do(t, client, "PUT", srv.URL+path, bytes.NewReader(b))
					var got echoed
					if status != 200 || json.Unmarshal(body, &got) != nil || !bytes.Equal(got.Body, b) {
						t.Errorf("%s, %d-byte body: %d %.80s", path, len(b), status, body)
					}
				}
			}
		})
	}
}

// bufferingParser reads the whole body and puts it back, as logging and
// raw-body middlewares do.
func bufferingParser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		next.ServeHTTP(w, r)
	})
}

func TestOversizeBodies(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			ctl := testKey(t, 1)
			m, _ := newMiddleware(t, Options{AllowList: Static(list(t, ctl)), Engine: eng, MaxBodyBytes: 1024})
			called := 0
			var mu sync.Mutex
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				called++
				mu.Unlock()
				echo(w, r)
			}))
			mux := http.NewServeMux()
			mux.Handle("/", h)
			mux.Handle("/front-limit", http.MaxBytesHandler(h, 100))
			srv := serve(t, mux)
			client := NewClient(ctl)
			client.Transport.(*Transport).MaxBodyBytes = -1

			if status, _ := do(t, client, "POST", srv.URL+"/", bytes.NewReader(make([]byte, 1024))); status != 200 {
				t.Fatalf("body at the limit: %d", status)
			}
			status, body := do(t, client, "POST", srv.URL+"/", bytes.NewReader(make([]byte, 1025)))
			if status != 413 || string(body) != `{"error":"payload_too_large"}` {
				t.Fatalf("Content-Length over the limit: %d %s", status, body)
			}
			// No Content-Length: the body is read up to the limit + 1.
			big := make([]byte, 4096)
			signed := signRequest(t, ctl, "POST", srv.URL+"/chunked", big)
			signed.Body = io.NopCloser(io.MultiReader(bytes.NewReader(big)))
			signed.ContentLength = -1
			resp, err := http.DefaultClient.Do(signed)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 413 {
				t.Fatalf("chunked over the limit: %d", resp.StatusCode)
			}
			// A limit in front that stops the body: 413 as well.
			if status, _ := do(t, client, "POST", srv.URL+"/front-limit", bytes.NewReader(make([]byte, 200))); status != 413 {
				t.Fatalf("front limit: %d", status)
			}
			// Header problems come first: an unsigned oversized request is
			// a 400, an unknown key a 401.
			if status, _ := do(t, http.DefaultClient, "POST", srv.URL+"/", bytes.NewReader(make([]byte, 5000))); status != 400 {
				t.Fatalf("unsigned oversized: %d", status)
			}
			stranger := NewClient(testKey(t, 7))
			stranger.Transport.(*Transport).MaxBodyBytes = -1
			if status, _ := do(t, stranger, "POST", srv.URL+"/", bytes.NewReader(make([]byte, 5000))); status != 401 {
				t.Fatalf("stranger oversized: %d", status)
			}
			if called != 1 {
				t.Fatalf("handler called %d times, want 1", called)
			}
		})
	}
}

// signRequest builds a request signed by k, to send with a plain client.
func signRequest(t testing.TB, k protocol.Signer, method, rawURL string, body []byte) *http.Request {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.SignRequest(k, protocol.SignParams{Method: method, Target: u.RequestURI(), Body: body, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, rawURL, bytes.NewReader(body))
	req.Header.Set("Authorization", s.Authorization)
	return req
}

// testListFile is the allow-list file format of these tests: devices and
// an HMAC over them, standing in for host/device's sealed list.
type testListFile struct {
	Devices []struct {
		PublicKey string `json:"public_key"`
		Role      string `json:"role"`
	} `json:"devices"`
	MAC string `json:"mac"`
}

var testListKey = []byte("device-local secret")

func writeListFile(t testing.TB, path string, tamper bool, keys ...*protocol.PrivateKey) {
	t.Helper()
	var f testListFile
	for _, k := range keys {
		f.Devices = append(f.Devices, struct {
			PublicKey string `json:"public_key"`
			Role      string `json:"role"`
		}{k.Public().String(), protocol.RoleController})
	}
	devs, _ := json.Marshal(f.Devices)
	mac := hmac.New(sha256.New, testListKey)
	mac.Write(devs)
	f.MAC = hex.EncodeToString(mac.Sum(nil))
	data, _ := json.Marshal(f)
	if tamper {
		data = bytes.Replace(data, []byte("controller"), []byte("controllex"), 1)
	}
	// Replace the file as writers of sealed files do: a new inode.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func parseListFile(data []byte) (protocol.StaticAllowList, error) {
	var f testListFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrIntegrity, err)
	}
	devs, _ := json.Marshal(f.Devices)
	mac := hmac.New(sha256.New, testListKey)
	mac.Write(devs)
	if got, _ := hex.DecodeString(f.MAC); !hmac.Equal(got, mac.Sum(nil)) {
		return nil, fmt.Errorf("%w: MAC mismatch", protocol.ErrIntegrity)
	}
	var out []*protocol.Device
	for _, d := range f.Devices {
		k, err := protocol.DecodePublicKey(d.PublicKey)
		if err != nil {
			return nil, err
		}
		out = append(out, &protocol.Device{Role: d.Role, Key: k})
	}
	return protocol.NewStaticAllowList(out...)
}

// TestAllowListFile runs a server on an allow-list file and changes the
// file under it: tamper (500), revoke (401), restore (200).
func TestAllowListFile(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			ctl, other := testKey(t, 1), testKey(t, 2)
			path := filepath.Join(t.TempDir(), "allow_list.json")
			writeListFile(t, path, false, ctl, other)
			m, logs := newMiddleware(t, Options{AllowList: FileSource(path, parseListFile), Engine: eng, ReloadInterval: -1})
			srv := serve(t, m.Handler(http.HandlerFunc(echo)))
			client := NewClient(ctl)
			expect := func(step string, want int, wantBody string) {
				t.Helper()
				status, body := do(t, client, "GET", srv.URL+"/x", nil)
				if status != want || (wantBody != "" && string(body) != wantBody) {
					t.Fatalf("%s: %d %s, want %d", step, status, body, want)
				}
			}
			expect("start", 200, "")
			writeListFile(t, path, true, ctl, other)
			expect("tampered", 500, `{"error":"allow_list_integrity_failure"}`)
			if !strings.Contains(logs.String(), "MAC mismatch") {
				t.Errorf("integrity failure not logged:\n%s", logs.String())
			}
			writeListFile(t, path, false, other)
			expect("revoked", 401, `{"error":"unauthorized"}`)
			os.Remove(path)
			expect("file gone", 500, "")
			writeListFile(t, path, false, ctl)
			expect("restored", 200, "")
		})
	}
}

// TestRevocationWhileRunning revokes a key while clients keep sending:
// within the reload interval every request of the revoked key fails, and
// the other key keeps working throughout.
func TestRevocationWhileRunning(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			ctl, other := testKey(t, 1), testKey(t, 2)
			src := &swapSource{devices: list(t, ctl, other)}
			interval := 50 * time.Millisecond
			m, _ := newMiddleware(t, Options{AllowList: src, Engine: eng, ReloadInterval: interval})
			srv := serve(t, m.Handler(http.HandlerFunc(echo)))
			stop := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 4 {
				wg.Go(func() {
					c := NewClient(other)
					for {
						select {
						case <-stop:
							return
						default:
						}
						req, _ := http.NewRequest("GET", srv.URL+"/keep", nil)
						resp, err := c.Do(req)
						if err != nil {
							errs <- err
							return
						}
						resp.Body.Close()
						if resp.StatusCode != 200 {
							errs <- fmt.Errorf("other key got %d", resp.StatusCode)
							return
						}
					}
				})
			}
			if status, _ := do(t, NewClient(ctl), "GET", srv.URL+"/", nil); status != 200 {
				t.Fatalf("before revocation: %d", status)
			}
			src.set(list(t, other), nil)
			revoked := time.Now()
			deadline := revoked.Add(5 * time.Second)
			for {
				status, _ := do(t, NewClient(ctl), "GET", srv.URL+"/", nil)
				if status == 401 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("revoked key still gets %d", status)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("revocation took effect after %v (interval %v)", time.Since(revoked).Round(time.Millisecond), interval)
			for range 10 {
				if status, _ := do(t, NewClient(ctl), "GET", srv.URL+"/", nil); status != 401 {
					t.Fatalf("revoked key accepted again: %d", status)
				}
			}
			src.set(list(t, other), fmt.Errorf("%w: sealed list rolled back", protocol.ErrIntegrity))
			time.Sleep(2 * interval)
			if status, _ := do(t, NewClient(other), "GET", srv.URL+"/", nil); status != 500 {
				t.Fatalf("integrity failure: %d", status)
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				if !strings.Contains(err.Error(), "500") {
					t.Error(err)
				}
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	for _, o := range []Options{
		{},
		{AllowList: Static(nil), ClockSkew: time.Millisecond},
		{AllowList: Static(nil), Scheme: "ftp"},
		{AllowList: Static(nil), Engine: Engine(9)},
		{AllowList: Static(nil), Authorities: []string{"bad host"}},
	} {
		o.Logger = quiet
		if _, err := New(o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := Require(Options{AllowList: Static(nil), Logger: quiet}); err != nil {
		t.Fatal(err)
	}
}

// TestInProcessRequest covers handlers called without http.Server, which
// leaves RequestURI empty.
func TestInProcessRequest(t *testing.T) {
	ctl := testKey(t, 1)
	m, _ := newMiddleware(t, Options{AllowList: Static(list(t, ctl))})
	req := signRequest(t, ctl, "POST", "http://api.example.test/in/process?x=1", []byte("b"))
	rec := &responseRecorder{header: http.Header{}}
	m.Handler(http.HandlerFunc(echo)).ServeHTTP(rec, req.WithContext(context.Background()))
	var got echoed
	if rec.status != 0 || json.Unmarshal(rec.body.Bytes(), &got) != nil || got.Device != ctl.Public().DeviceID() || string(got.Body) != "b" {
		t.Fatalf("%d %s", rec.status, rec.body.String())
	}
}

type responseRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *responseRecorder) Header() http.Header         { return r.header }
func (r *responseRecorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *responseRecorder) WriteHeader(s int)           { r.status = s }
