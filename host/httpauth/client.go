package httpauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// DefaultClientMaxBodyBytes bounds the bodies a Transport reads to sign,
// when Transport.MaxBodyBytes is zero: the servers' default limit.
const DefaultClientMaxBodyBytes = protocol.DefaultMaxBodyBytes

// Transport is an http.RoundTripper that signs every request with Signer
// before passing it to Base. The signature covers the method, the
// request-target exactly as it goes on the wire, the body bytes, and for
// version 2 the authority (Host): whatever the request's body is (bytes,
// a reader, nothing), it is read once, signed, and sent as those bytes,
// with GetBody set so that net/http can resend it.
//
// Each round trip gets a new timestamp and nonce, so redirects that
// net/http follows are signed afresh. A request that net/http itself
// retries on a dead keep-alive connection goes out again with the same
// signature: when the first attempt reached the server, the retry is
// answered 401 as a replay, which is the protocol working as intended.
type Transport struct {
	// Signer is the device key, from a keystore backend or a
	// protocol.PrivateKey.
	Signer protocol.Signer
	// Base sends the signed requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Version is protocol.Version1 (the default: every server accepts it)
	// or protocol.Version2, which binds the signature to the server's
	// authority.
	Version string
	// MaxBodyBytes bounds the body read for signing; zero means
	// DefaultClientMaxBodyBytes, negative means no bound.
	MaxBodyBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewClient returns an http.Client that signs every request with signer,
// with protocol version 1 and http.DefaultTransport underneath.
func NewClient(signer protocol.Signer) *http.Client {
	return &http.Client{Transport: &Transport{Signer: signer}}
}

// errBodyTooLarge is returned for a body above Transport.MaxBodyBytes.
var errBodyTooLarge = errors.New("httpauth: request body exceeds the signing limit (Transport.MaxBodyBytes)")

// RoundTrip implements http.RoundTripper. It does not modify req; it
// closes req.Body, as the interface requires, also on errors.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := t.readBody(req)
	if err != nil {
		return nil, err
	}
	signed := req.Clone(req.Context())
	if body != nil {
		signed.Body = io.NopCloser(bytes.NewReader(body))
		signed.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		signed.ContentLength = int64(len(body))
	} else {
		signed.Body, signed.GetBody, signed.ContentLength = nil, nil, 0
	}
	p := protocol.SignParams{Version: t.Version, Method: signed.Method, Body: body}
	if p.Method == "" {
		p.Method = http.MethodGet
	}
	// What net/http writes as the request-target for an origin server.
	p.Target = signed.URL.RequestURI()
	if p.Version == protocol.Version2 {
		host := signed.Host
		if host == "" {
			host = signed.URL.Host
		}
		if p.Authority, err = protocol.Authority(host, signed.URL.Scheme); err != nil {
			return nil, fmt.Errorf("httpauth: sign %s: %w", signed.URL.Redacted(), err)
		}
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	p.Time = now()
	s, err := protocol.SignRequest(t.Signer, p)
	if err != nil {
		return nil, fmt.Errorf("httpauth: sign %s: %w", signed.URL.Redacted(), err)
	}
	signed.Header.Set("Authorization", s.Authorization)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(signed)
}

// readBody reads and closes the request's body.
func (t *Transport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	limit := t.MaxBodyBytes
	if limit == 0 {
		limit = DefaultClientMaxBodyBytes
	}
	var r io.Reader = req.Body
	if limit > 0 {
		r = io.LimitReader(req.Body, limit+1)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("httpauth: read request body to sign it: %w", err)
	}
	if limit > 0 && int64(len(body)) > limit {
		return nil, errBodyTooLarge
	}
	return body, nil
}
