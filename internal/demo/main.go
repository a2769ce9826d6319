// Command demo shows the amesh request protocol end to end on loopback: a
// server protected by the verification core and a client signing with a
// software key. `make demo` runs it.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// step is one request of the demo.
type step struct {
	label     string
	key       *protocol.PrivateKey
	version   string
	authority string // signed authority (v2); empty means the server's own
	sentBody  []byte // body sent, when it differs from the signed one
	age       time.Duration
	replay    bool   // send the previous request again, unchanged
	host      string // Host header, when not the server's own
}

func run(out io.Writer) error {
	controller, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		return err
	}
	stranger, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}
	self := ln.Addr().String()
	list, err := protocol.NewStaticAllowList(&protocol.Device{Name: "demo-laptop", Role: protocol.RoleController, Key: controller.Public()})
	if err != nil {
		return err
	}
	v, err := protocol.NewVerifier(protocol.Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(0), Authorities: []string{self}})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	lastReason := ""
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: protect(v, func(r protocol.Reason) {
		mu.Lock()
		lastReason = string(r)
		mu.Unlock()
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.Header.Get("X-Amesh-Device"))
	}))}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	fmt.Fprintf(out, "amesh demo: a server on http://%s trusts one controller, demo-laptop (%s)\n\n",
		self, controller.Public().DeviceID())
	body := []byte(`{"amount":100}`)
	steps := []step{
		{label: "signed request (v1)", key: controller, version: "1"},
		{label: "the same request again (replay)", replay: true},
		{label: "tampered body", key: controller, version: "1", sentBody: []byte(`{"amount":999}`)},
		{label: "timestamp 5 minutes old", key: controller, version: "1", age: 5 * time.Minute},
		// A request captured on its way to another server that trusts the
		// same controller, replayed here with its Host header intact.
		{label: "v2, replayed from another server", key: controller, version: "2", authority: "billing.internal:8443", host: "billing.internal:8443"},
		{label: "v2, signed for this server", key: controller, version: "2"},
		{label: "unknown device", key: stranger, version: "1"},
	}
	var prev *http.Request
	var prevBody []byte
	for _, s := range steps {
		req, sent := prev, prevBody
		if !s.replay {
			authority := s.authority
			if authority == "" {
				authority = self
			}
			signed, err := protocol.SignRequest(s.key, protocol.SignParams{Version: s.version, Method: "POST",
				Target: "/api/orders?b=2&a=1", Authority: authority, Body: body, Time: time.Now().Add(-s.age)})
			if err != nil {
				return err
			}
			sent = body
			if s.sentBody != nil {
				sent = s.sentBody
			}
			req, err = http.NewRequest("POST", "http://"+self+"/api/orders?b=2&a=1", nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", signed.Authorization)
			req.Header.Set("Content-Type", "application/json")
			if s.host != "" {
				req.Host = s.host
			}
		}
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(sent)), int64(len(sent))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		mu.Lock()
		reason := lastReason
		mu.Unlock()
		fmt.Fprintf(out, "%-34s -> %d %-28s (server log: %s)\n", s.label, resp.StatusCode, strings.TrimSpace(string(text)), reason)
		prev, prevBody = req, sent
	}
	fmt.Fprintln(out, "\nEvery 401 has the same body; only the server's log says why.")
	return nil
}

// protect is a minimal verifying handler for the demo; it reports each
// decision's private reason to logReason.
func protect(v *protocol.Verifier, logReason func(protocol.Reason), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, v.MaxBodyBytes()+1))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		res := v.Verify(r.Context(), &protocol.Request{Method: r.Method, Target: r.RequestURI, Host: r.Host,
			Scheme: "http", Authorization: r.Header.Values("Authorization"), Body: body}, time.Now())
		logReason(res.Reason)
		if !res.OK() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(res.Status())
			w.Write(res.Code.Body())
			return
		}
		r.Header.Set("X-Amesh-Device", res.Device.Name)
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
