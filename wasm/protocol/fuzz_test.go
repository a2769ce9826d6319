package protocol_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// seedFromVectors adds every header value and target of the vector files to
// the fuzz corpus, on top of the committed testdata/fuzz corpus.
func seedFromVectors(f *testing.F, add func(files []*vectors.File)) {
	paths, err := vectors.Paths()
	if err != nil {
		f.Fatal(err)
	}
	var files []*vectors.File
	for _, p := range paths {
		v, err := vectors.Read(p)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, v)
	}
	add(files)
}

func FuzzParseHeader(f *testing.F) {
	seedFromVectors(f, func(files []*vectors.File) {
		for _, file := range files {
			for _, h := range file.Header {
				f.Add(h.Value)
			}
			for _, r := range file.Request {
				f.Add(r.Authorization)
			}
		}
	})
	f.Fuzz(func(t *testing.T, value string) {
		h, err := protocol.ParseHeader(value)
		if err != nil {
			if h != nil {
				t.Fatal("header returned with an error")
			}
			return
		}
		if len(value) > protocol.MaxHeaderBytes {
			t.Fatalf("accepted %d bytes", len(value))
		}
		if h.V != "1" && h.V != "2" {
			t.Fatalf("accepted version %q", h.V)
		}
		for _, c := range h.TS {
			if c < '0' || c > '9' {
				t.Fatalf("accepted ts %q", h.TS)
			}
		}
		// The canonical spelling of an accepted header parses to the same
		// fields.
		again, err := protocol.ParseHeader(h.String())
		if err != nil {
			t.Fatalf("reformatted header %q: %v", h.String(), err)
		}
		if again.V != h.V || again.ID != h.ID || again.TS != h.TS || again.Nonce != h.Nonce || again.Sig != h.Sig {
			t.Fatalf("round trip changed fields: %+v vs %+v", again, h)
		}
	})
}

func FuzzCanonicalTarget(f *testing.F) {
	seedFromVectors(f, func(files []*vectors.File) {
		for _, file := range files {
			for _, c := range file.Canonical {
				f.Add(c.Target)
			}
			for _, r := range file.Request {
				f.Add(r.Target)
			}
		}
	})
	f.Fuzz(func(t *testing.T, input string) {
		// The verifier must cope with any bytes on the wire.
		wireCanon, wireErr := protocol.CanonicalTarget(input)
		if wireErr == nil {
			checkCanonicalForm(t, wireCanon)
		}
		client, err := protocol.ClientCanonicalTarget(input)
		if err != nil {
			return
		}
		checkCanonicalForm(t, client)
		// What the client sends must canonicalise, on the verifying side, to
		// what the client signed.
		wire, err := protocol.RequestTarget(input)
		if err != nil {
			t.Fatalf("RequestTarget(%q): %v, but ClientCanonicalTarget worked", input, err)
		}
		for i := 0; i < len(wire); i++ {
			if wire[i] <= 0x20 || wire[i] >= 0x7f || wire[i] == '#' {
				t.Fatalf("RequestTarget(%q) = %q holds byte %#x, not valid on the wire", input, wire, wire[i])
			}
		}
		server, err := protocol.CanonicalTarget(wire)
		if err != nil {
			t.Fatalf("CanonicalTarget(%q): %v", wire, err)
		}
		if server != client {
			t.Fatalf("input %q: signer %q, verifier %q (wire %q)", input, client, server, wire)
		}
		// Canonical targets are fixed points.
		if again, err := protocol.CanonicalTarget(client); err != nil || again != client {
			t.Fatalf("CanonicalTarget(%q) = %q, %v: not idempotent", client, again, err)
		}
	})
}

func checkCanonicalForm(t *testing.T, target string) {
	t.Helper()
	if !strings.HasPrefix(target, "/") {
		t.Fatalf("canonical target %q does not start with /", target)
	}
	if !utf8.ValidString(target) || strings.ContainsAny(target, "\n\r\t #") {
		t.Fatalf("canonical target %q holds bytes a canonical string cannot", target)
	}
}

// FuzzVerify feeds arbitrary requests to the verifier: it must never panic
// and never accept anything but a request signed by the allowed key.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, nil)
	genuine := fx.sign(f, protocol.SignParams{Body: []byte(`{"a":1}`), Target: "/api/x?b=2&a=1"})
	f.Add("POST", "/api/x?b=2&a=1", "api.example.test", genuine.Authorization[0], []byte(`{"a":1}`))
	seedFromVectors(f, func(files []*vectors.File) {
		for _, file := range files {
			for _, r := range file.Request {
				body, _ := r.Body()
				f.Add(r.Method, r.Target, r.HostHeader(), r.Authorization, body)
			}
		}
	})
	f.Fuzz(func(t *testing.T, method, target, host, auth string, body []byte) {
		v := newFixtureWithKey(t, fx.key)
		req := &protocol.Request{Method: method, Target: target, Host: host, Authorization: []string{auth}, Body: body}
		c, res := v.Begin(req, t0)
		if c == nil {
			if res.OK() {
				t.Fatal("Begin failed without a code")
			}
			return
		}
		if res := c.AddBody(body); !res.OK() {
			return
		}
		res = c.Finish(context.Background(), t0, c.VerifySignature())
		if !res.OK() {
			return
		}
		// Accepted: then the canonical string is exactly what the genuine
		// request signed, whatever bytes differed on the wire.
		gc, _ := v.Begin(genuine, t0)
		gc.AddBody(genuine.Body)
		if !bytes.Equal(c.Message(), gc.Message()) {
			t.Fatalf("accepted a request whose canonical string %q was never signed", c.Message())
		}
	})
}

func newFixtureWithKey(t testing.TB, key *protocol.PrivateKey) *protocol.Verifier {
	list, err := protocol.NewStaticAllowList(&protocol.Device{Role: protocol.RoleController, Key: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := protocol.NewVerifier(protocol.Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(16)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
