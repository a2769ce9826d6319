//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// loopbackEnvoy puts a real HTTP listener on 127.0.0.1 in front of the
// emulator: each request becomes a filter stream the way Envoy builds one
// (pseudo-headers from the request line, request.time from the clock, the
// body in chunks), and a request the filter lets through goes to the
// upstream, also on 127.0.0.1, with the headers the filter left it.
type loopbackEnvoy struct {
	mu       sync.Mutex // the emulator runs one stream at a time
	e        *envoy
	upstream string
	client   *http.Client
}

func (l *loopbackEnvoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := request{Method: r.Method, Target: r.RequestURI, Authority: r.Host, Scheme: "http", Body: body,
		Chunks: (len(body) + 16383) / 16384, NoContentLength: r.ContentLength < 0}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "content-length") {
			continue // added by request from the body
		}
		for _, v := range vs {
			req.Headers = append(req.Headers, [2]string{strings.ToLower(k), v})
		}
	}
	l.mu.Lock()
	l.e.setTime(time.Now())
	res := l.e.do(req)
	l.mu.Unlock()
	if !res.Forwarded {
		for _, kv := range res.Headers {
			w.Header().Add(kv[0], kv[1])
		}
		w.WriteHeader(res.Status)
		w.Write(res.Body)
		return
	}
	up, err := http.NewRequest(r.Method, "http://"+l.upstream+r.RequestURI, bytes.NewReader(res.UpstreamBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for _, kv := range res.Upstream {
		switch {
		case kv[0] == ":authority":
			up.Host = kv[1]
		case strings.HasPrefix(kv[0], ":"), kv[0] == "content-length":
		default:
			up.Header.Add(kv[0], kv[1])
		}
	}
	resp, err := l.client.Do(up)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// echo is what the upstream saw.
type echo struct {
	Method        string   `json:"method"`
	URI           string   `json:"uri"`
	Host          string   `json:"host"`
	DeviceID      []string `json:"device_id"`
	DeviceName    []string `json:"device_name"`
	Authorization []string `json:"authorization"`
	Body          string   `json:"body"`
}

func upstreamEcho(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	json.NewEncoder(w).Encode(echo{
		Method: r.Method, URI: r.RequestURI, Host: r.Host,
		DeviceID: r.Header.Values("X-Amesh-Device-Id"), DeviceName: r.Header.Values("X-Amesh-Device-Name"),
		Authorization: r.Header.Values("Authorization"), Body: string(b),
	})
}

// signingTransport is a minimal amesh client: it signs each request with
// key over the request-target Go sends and the exact body bytes.
type signingTransport struct {
	key     *protocol.PrivateKey
	version string
	base    http.RoundTripper
	// last keeps the last signed request, for replays.
	last struct {
		auth string
		body []byte
	}
}

func (s *signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		body = b
	}
	p := protocol.SignParams{Version: s.version, Method: r.Method, Target: r.URL.RequestURI(), Body: body, Time: time.Now()}
	if s.version == protocol.Version2 {
		a, err := protocol.Authority(r.URL.Host, r.URL.Scheme)
		if err != nil {
			return nil, err
		}
		p.Authority = a
	}
	sg, err := protocol.SignRequest(s.key, p)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", sg.Authorization)
	if r.ContentLength >= 0 || body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.ContentLength >= 0 {
			r.ContentLength = int64(len(body))
		}
	}
	s.last.auth, s.last.body = sg.Authorization, body
	return s.base.RoundTrip(r)
}

// TestEndToEndLoopback sends real signed HTTP requests from a Go client
// through the filter to an upstream, all on 127.0.0.1.
func TestEndToEndLoopback(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		upstream := httptest.NewServer(http.HandlerFunc(upstreamEcho))
		defer upstream.Close()
		front := httptest.NewUnstartedServer(nil)
		addr := front.Listener.Addr().String()
		cfg := baseConfig()
		cfg["authorities"] = []string{addr}
		cfg["require_v2"] = true
		cfg["max_body_bytes"] = 64 << 10
		lb := &loopbackEnvoy{
			e:        newEnvoy(t, m, mustJSON(t, cfg), withEnvoyCrypto),
			upstream: strings.TrimPrefix(upstream.URL, "http://"),
			client:   &http.Client{Timeout: 10 * time.Second},
		}
		lb.e.mustStart()
		front.Config.Handler = lb
		front.Start()
		defer front.Close()

		signer := &signingTransport{key: ctrlKey, version: protocol.Version2, base: http.DefaultTransport}
		client := &http.Client{Transport: signer, Timeout: 10 * time.Second}
		base := "http://" + addr

		// GET with a query; a spoofed identity header is replaced.
		req, _ := http.NewRequest("GET", base+"/api/items?b=2&a=1&q=caf%C3%A9", nil)
		req.Header.Set("X-Amesh-Device-Id", "am_forgedforgedforg")
		var got echo
		status := roundTrip(t, client, req, &got)
		if status != 200 || len(got.DeviceID) != 1 || got.DeviceID[0] != ctrlKey.Public().DeviceID() ||
			len(got.DeviceName) != 1 || got.DeviceName[0] != ctrlName || len(got.Authorization) != 0 {
			t.Fatalf("GET: %d %+v", status, got)
		}
		if got.URI != "/api/items?b=2&a=1&q=caf%C3%A9" {
			t.Errorf("upstream saw %q", got.URI)
		}

		// POST: the exact body bytes arrive upstream, in several chunks.
		payload := bytes.Repeat([]byte(`{"k":"v", "n": 1.50}`), 2000) // 40 KB
		req, _ = http.NewRequest("POST", base+"/api/orders", bytes.NewReader(payload))
		got = echo{}
		if status := roundTrip(t, client, req, &got); status != 200 || got.Body != string(payload) {
			t.Fatalf("POST: %d, body intact %v", status, got.Body == string(payload))
		}

		// The same Authorization header again: a replay.
		replay, _ := http.NewRequest("POST", base+"/api/orders", bytes.NewReader(signer.last.body))
		replay.Header.Set("Authorization", signer.last.auth)
		if status, body := plain(t, replay); status != 401 || body != `{"error":"unauthorized"}` {
			t.Errorf("replay: %d %s", status, body)
		}

		// A streamed body without Content-Length.
		pr, pw := io.Pipe()
		go func() {
			for i := range 5 {
				fmt.Fprintf(pw, "line %d\n", i)
			}
			pw.Close()
		}()
		req, _ = http.NewRequest("PUT", base+"/api/stream", pr)
		got = echo{}
		if status := roundTrip(t, client, req, &got); status != 200 || !strings.HasPrefix(got.Body, "line 0\n") {
			t.Errorf("streamed PUT: %d %q", status, got.Body)
		}

		// Over the body limit.
		req, _ = http.NewRequest("POST", base+"/api/orders", bytes.NewReader(make([]byte, 65<<10)))
		if status, body := plainWith(t, client, req); status != 413 || body != `{"error":"payload_too_large"}` {
			t.Errorf("large body: %d %s", status, body)
		}

		// No signature at all; a key not in the allow list; version 1.
		req, _ = http.NewRequest("GET", base+"/api/items", nil)
		if status, body := plain(t, req); status != 400 || body != `{"error":"missing_header"}` {
			t.Errorf("unsigned: %d %s", status, body)
		}
		stranger := &http.Client{Transport: &signingTransport{key: unknownKey, version: protocol.Version2, base: http.DefaultTransport}}
		req, _ = http.NewRequest("GET", base+"/api/items", nil)
		if status, body := plainWith(t, stranger, req); status != 401 || body != `{"error":"unauthorized"}` {
			t.Errorf("unknown key: %d %s", status, body)
		}
		v1 := &http.Client{Transport: &signingTransport{key: ctrlKey, version: protocol.Version1, base: http.DefaultTransport}}
		req, _ = http.NewRequest("GET", base+"/api/items", nil)
		if status, body := plainWith(t, v1, req); status != 400 || body != `{"error":"unsupported_version"}` {
			t.Errorf("v1 where v2 is required: %d %s", status, body)
		}
		// Signed for this proxy but sent to another authority name.
		req, _ = http.NewRequest("GET", base+"/api/items", nil)
		req.Host = "localhost:" + strings.Split(addr, ":")[1]
		if status, body := plainWith(t, client, req); status != 401 || body != `{"error":"unauthorized"}` {
			t.Errorf("other authority: %d %s", status, body)
		}
	})
}

func roundTrip(t *testing.T, c *http.Client, req *http.Request, out *echo) int {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("upstream answer %q: %v", b, err)
		}
	} else {
		t.Logf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func plain(t *testing.T, req *http.Request) (int, string) {
	return plainWith(t, &http.Client{Timeout: 10 * time.Second}, req)
}

func plainWith(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 && ct != "application/json" {
		t.Errorf("%d answer with content-type %q", resp.StatusCode, ct)
	}
	return resp.StatusCode, string(b)
}
