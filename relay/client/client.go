// Package client is the client side of amesh-relay's framing: it connects
// to a relay, creates or joins a room and exchanges opaque data frames with
// the other peer. The pairing protocol (package pairing) runs on top of it.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amesh-go/amesh/relay/wire"
)

// RelayError is an error reported by the relay: a refusal (Error frame) or
// the other peer's departure (PeerGone frame). Compare it with errors.Is
// against the Err* values of this package.
type RelayError struct {
	// Reason is the relay's reason.
	Reason wire.Reason
	// RetryAfter is set for wire.ReasonRateLimited.
	RetryAfter time.Duration
	// PeerGone is true when the other peer left (or was removed) rather
	// than this client being refused.
	PeerGone bool
}

// Error describes the refusal or departure for a person, with advice.
func (e *RelayError) Error() string {
	if e.PeerGone {
		if e.Reason == wire.ReasonPeerLeft || e.Reason == wire.ReasonNone {
			return "relay: the other device disconnected"
		}
		return "relay: the other device was disconnected (" + e.Reason.String() + ")"
	}
	msg, ok := messages[e.Reason]
	if !ok {
		msg = "relay refused: " + e.Reason.String()
	}
	if e.Reason == wire.ReasonRateLimited && e.RetryAfter > 0 {
		msg += fmt.Sprintf("; retry in %v", e.RetryAfter.Round(time.Second))
	}
	return "relay: " + msg
}

// Is matches the Err* values of this package: by reason for refusals, and
// ErrPeerGone for any departure of the peer.
func (e *RelayError) Is(target error) bool {
	t, ok := target.(*RelayError)
	if !ok {
		return false
	}
	if t.PeerGone {
		return e.PeerGone
	}
	return !e.PeerGone && t.Reason == e.Reason
}

var messages = map[wire.Reason]string{
	wire.ReasonUnknownCode:  "no pairing is waiting on this code; check the code shown by `amesh listen`",
	wire.ReasonCodeBurned:   "this pairing code was burned by too many wrong attempts; start `amesh listen` again for a new code",
	wire.ReasonCodeExpired:  "the pairing code expired; start `amesh listen` again for a new code",
	wire.ReasonCodeUsed:     "another device already used this pairing code",
	wire.ReasonCodeClosed:   "the target stopped waiting on this pairing code",
	wire.ReasonRateLimited:  "too many attempts from this address",
	wire.ReasonFrameTooBig:  "frame too large",
	wire.ReasonQuota:        "session exceeded its byte quota",
	wire.ReasonIdle:         "idle for too long",
	wire.ReasonSessionLimit: "session lasted too long",
	wire.ReasonShutdown:     "the relay is shutting down; retry",
	wire.ReasonMaxConns:     "the relay has too many connections; retry later",
	wire.ReasonInternal:     "internal relay error",
	wire.ReasonProtocol:     "protocol error",
	wire.ReasonBadFrame:     "malformed frame",
	wire.ReasonSlowPeer:     "a peer was too slow",
	wire.ReasonPingTimeout:  "connection timed out",
	wire.ReasonTokenUsed:    "this bootstrap token was already used; issue a new one with `amesh provision`",
	wire.ReasonTokenExpired: "this bootstrap token expired; issue a new one with `amesh provision`",
	wire.ReasonUnavailable:  "the relay's shared state (Redis) is unavailable; retry later",
	wire.ReasonMailboxFull:  "the controller's mailbox on the relay is full",
}

// Errors to compare with errors.Is.
var (
	ErrUnknownCode  = &RelayError{Reason: wire.ReasonUnknownCode}
	ErrCodeBurned   = &RelayError{Reason: wire.ReasonCodeBurned}
	ErrCodeExpired  = &RelayError{Reason: wire.ReasonCodeExpired}
	ErrCodeUsed     = &RelayError{Reason: wire.ReasonCodeUsed}
	ErrCodeClosed   = &RelayError{Reason: wire.ReasonCodeClosed}
	ErrRateLimited  = &RelayError{Reason: wire.ReasonRateLimited}
	ErrShutdown     = &RelayError{Reason: wire.ReasonShutdown}
	ErrTokenUsed    = &RelayError{Reason: wire.ReasonTokenUsed}
	ErrTokenExpired = &RelayError{Reason: wire.ReasonTokenExpired}
	ErrUnavailable  = &RelayError{Reason: wire.ReasonUnavailable}
	ErrMailboxFull  = &RelayError{Reason: wire.ReasonMailboxFull}
	// ErrPeerGone matches any departure of the other peer.
	ErrPeerGone = &RelayError{PeerGone: true}
	// ErrDisconnected means the connection to the relay ended without the
	// relay saying why.
	ErrDisconnected = errors.New("relay: connection to the relay lost")
	// ErrProtocol means the relay sent something this client does not
	// expect.
	ErrProtocol = errors.New("relay: unexpected frame from the relay")
)

// Options configure Dial.
type Options struct {
	// TLSConfig is used for wss:// URLs; nil means the system roots.
	TLSConfig *tls.Config
	// Header is sent with the upgrade request.
	Header http.Header
	// MaxFrame bounds the frames accepted from the relay (default 64 KiB).
	MaxFrame int
}

// Conn is a connection to a relay. Its methods may be called from one
// goroutine at a time, except Close, which may be called any time.
type Conn struct {
	ws     *websocket.Conn
	frames chan wire.Frame
	done   chan struct{} // closed when the connection has ended
	err    error         // why frames stopped; valid once frames is closed

	wmu       sync.Mutex
	closeOnce sync.Once
}

// NormalizeURL turns a relay URL as a user writes it into the WebSocket URL
// of its /ws endpoint: http(s) becomes ws(s), and an empty path becomes /ws.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("relay: URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("relay: URL %q: want ws://, wss://, http:// or https://", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("relay: URL %q has no host", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	u.Fragment = ""
	return u.String(), nil
}

// Dial connects to the relay at rawURL (see NormalizeURL).
func Dial(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	if opts == nil {
		opts = &Options{}
	}
	u, err := NormalizeURL(rawURL)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{
		TLSClientConfig:  opts.TLSConfig,
		HandshakeTimeout: 15 * time.Second,
		Subprotocols:     []string{wire.Subprotocol},
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		Proxy:            http.ProxyFromEnvironment,
	}
	ws, resp, err := d.DialContext(ctx, u, opts.Header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("relay: connect to %s: %s: %w", u, resp.Status, err)
		}
		return nil, fmt.Errorf("relay: connect to %s: %w", u, err)
	}
	if ws.Subprotocol() != wire.Subprotocol {
		ws.Close()
		return nil, fmt.Errorf("relay: %s does not speak %s", u, wire.Subprotocol)
	}
	max := opts.MaxFrame
	if max <= 0 {
		max = 64 << 10
	}
	ws.SetReadLimit(int64(max) + 1)
	c := &Conn{ws: ws, frames: make(chan wire.Frame, 16), done: make(chan struct{})}
	go c.reader()
	return c, nil
}

func (c *Conn) reader() {
	defer close(c.done)
	c.err = c.readFrames()
	close(c.frames)
	// Keep reading so that the relay's close frame is answered (gorilla
	// replies while reading) and the relay need not wait for it.
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return
		}
	}
}

// readFrames delivers frames until the relay ends the session or the
// connection breaks, and returns why.
func (c *Conn) readFrames() error {
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			return ErrDisconnected
		}
		if mt != websocket.BinaryMessage {
			return fmt.Errorf("%w: text message", ErrProtocol)
		}
		f, err := wire.Parse(data)
		if err != nil || !f.Type.FromRelay() {
			return fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		c.frames <- f
		if f.Type == wire.Error || f.Type == wire.PeerGone {
			return frameErr(f)
		}
	}
}

func frameErr(f wire.Frame) error {
	return &RelayError{Reason: f.Reason, RetryAfter: f.RetryAfter, PeerGone: f.Type == wire.PeerGone}
}

// next returns the next frame from the relay.
func (c *Conn) next(ctx context.Context) (wire.Frame, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			// c.err was set before frames was closed.
			return wire.Frame{}, c.err
		}
		if f.Type == wire.Error || f.Type == wire.PeerGone {
			return wire.Frame{}, frameErr(f)
		}
		return f, nil
	case <-ctx.Done():
		return wire.Frame{}, ctx.Err()
	}
}

func (c *Conn) send(ctx context.Context, f wire.Frame) error {
	b, err := f.Append(nil)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		c.ws.SetWriteDeadline(dl)
	} else {
		c.ws.SetWriteDeadline(time.Time{})
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return fmt.Errorf("relay: send: %w", ErrDisconnected)
	}
	return nil
}

// Create asks for a room and returns its pairing code and how long it waits
// for a controller.
func (c *Conn) Create(ctx context.Context) (code string, lifetime time.Duration, err error) {
	if err := c.send(ctx, wire.Frame{Type: wire.Create}); err != nil {
		return "", 0, err
	}
	f, err := c.next(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("relay: create room: %w", err)
	}
	if f.Type != wire.Created {
		return "", 0, fmt.Errorf("relay: create room: %w: %v", ErrProtocol, f.Type)
	}
	return f.Code, f.Lifetime, nil
}

// WaitPeer waits, after Create, until a controller joins.
func (c *Conn) WaitPeer(ctx context.Context) error {
	f, err := c.next(ctx)
	if err != nil {
		return fmt.Errorf("relay: wait for the controller: %w", err)
	}
	if f.Type != wire.Peer {
		return fmt.Errorf("relay: wait for the controller: %w: %v", ErrProtocol, f.Type)
	}
	return nil
}

// Join enters the room of code and returns once the relay confirms.
func (c *Conn) Join(ctx context.Context, code string) error {
	if !wire.ValidCode(code) {
		return fmt.Errorf("relay: join: pairing code must be %d digits", wire.CodeLen)
	}
	if err := c.send(ctx, wire.Frame{Type: wire.Join, Code: code}); err != nil {
		return err
	}
	f, err := c.next(ctx)
	if err != nil {
		return fmt.Errorf("relay: join: %w", err)
	}
	if f.Type != wire.Peer {
		return fmt.Errorf("relay: join: %w: %v", ErrProtocol, f.Type)
	}
	return nil
}

// Send sends payload to the other peer.
func (c *Conn) Send(ctx context.Context, payload []byte) error {
	return c.send(ctx, wire.Frame{Type: wire.Data, Payload: payload})
}

// Recv returns the next payload from the other peer.
func (c *Conn) Recv(ctx context.Context) ([]byte, error) {
	f, err := c.next(ctx)
	if err != nil {
		return nil, err
	}
	if f.Type != wire.Data {
		return nil, fmt.Errorf("%w: %v while waiting for data", ErrProtocol, f.Type)
	}
	return f.Payload, nil
}

// Done is closed when the connection to the relay has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection, telling the relay first.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.ws.Close()
	})
	return nil
}
