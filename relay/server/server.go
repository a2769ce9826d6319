// Package server is amesh-relay: a WebSocket rendezvous that lets two
// devices that cannot reach each other directly run the pairing handshake.
//
// A target connects to /ws and creates a room; the relay answers with a
// six-digit pairing code. A controller connects and joins with that code.
// From then on the relay forwards data frames between the two, unchanged and
// unread: the pairing protocol is end-to-end encrypted and authenticated by
// its verification code, so the relay is not trusted with anything but
// availability.
//
// The relay's own job is to stay up and to make guessing expensive: bounded
// connections, frames and session bytes; per-address rate limits on room
// creation and on failed and successful joins; a live code burned after a few
// wrong joins; ping/pong and idle timeouts; a rendezvous lifetime separate
// from the session's; and a graceful shutdown that lets running sessions
// finish.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

// Server is an amesh-relay instance. Create it with New, serve it with Serve
// or ServeTLS (or mount Handler), stop it with Shutdown.
type Server struct {
	cfg      Config
	store    state.Store
	log      *slog.Logger
	m        metrics
	upgrader websocket.Upgrader

	mu       sync.Mutex
	conns    map[*conn]struct{}
	admitted int // connections admitted and not yet released
	perIP    map[string]int
	httpSrvs []*http.Server
	connsWG  sync.WaitGroup

	draining atomic.Bool
	connSeq  atomic.Uint64
}

// New returns a relay with cfg (zero fields take defaults) over store.
func New(cfg Config, store state.Store) (*Server, error) {
	if store == nil {
		return nil, errors.New("relay: new server: nil store")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:   cfg,
		store: store,
		log:   cfg.Logger,
		conns: map[*conn]struct{}{},
		perIP: map[string]int{},
	}
	s.upgrader = websocket.Upgrader{
		// Small read buffers and pooled write buffers keep an idle
		// connection cheap; relay frames are small.
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: 10 * time.Second,
		Subprotocols:     []string{wire.Subprotocol},
		// Clients are programs (amesh listen/invite), not browser pages;
		// a browser page of another origin has no business here.
		CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, "relay: "+reason.Error(), status)
		},
	}
	return s, nil
}

// Handler returns the relay's HTTP handler: /ws, /health and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /health", s.serveHealth)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	return mux
}

func (s *Server) newHTTPServer() *http.Server {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.draining.Load() {
		// Shutdown ran before Serve got here: a closed http.Server makes
		// Serve close the listener and return http.ErrServerClosed,
		// instead of serving forever.
		hs.Close()
	} else {
		s.httpSrvs = append(s.httpSrvs, hs)
	}
	s.mu.Unlock()
	return hs
}

// Serve accepts plain HTTP connections on l until Shutdown. It returns
// http.ErrServerClosed after a shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.newHTTPServer().Serve(l)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		err = fmt.Errorf("relay: serve: %w", err)
	}
	return err
}

// ServeTLS is Serve with TLS from a certificate and key file.
func (s *Server) ServeTLS(l net.Listener, certFile, keyFile string) error {
	err := s.newHTTPServer().ServeTLS(l, certFile, keyFile)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		err = fmt.Errorf("relay: serve TLS: %w", err)
	}
	return err
}

// Health is the JSON body of /health.
type Health struct {
	Status      string `json:"status"` // "ok", "draining" or "unavailable"
	Version     string `json:"version"`
	Connections int64  `json:"connections"`
	Sessions    int64  `json:"sessions"`
	Waiting     int64  `json:"waiting"`
	// Store is "ok" or "unavailable" for a shared store (Redis), absent
	// for the in-memory one.
	Store string `json:"store,omitempty"`
}

// pinger is implemented by stores with a backend that can be down.
type pinger interface {
	Ping(ctx context.Context) error
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok", Version: s.cfg.Version, Connections: s.m.connections.Load(),
		Sessions: s.m.sessions.Load(), Waiting: s.m.roomsWaiting.Load()}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if p, ok := s.store.(pinger); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		h.Store = "ok"
		if err := p.Ping(ctx); err != nil {
			h.Store, h.Status = "unavailable", "unavailable"
		}
		cancel()
	}
	if s.draining.Load() {
		// Load balancers take a draining instance out of rotation.
		h.Status = "draining"
	}
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.m.write(w, s.cfg.Version, s.draining.Load())
}

// clientAddr returns the client's address and the key its per-address limits
// use: the address itself, or its /64 for IPv6, where one host usually owns a
// whole /64.
func (s *Server) clientAddr(r *http.Request) (addr, key string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if s.cfg.TrustProxy {
		// The proxy appends the address it saw; everything before it is
		// whatever the client claimed.
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				host = ip.String()
			}
		}
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host, host
	}
	if ip.To4() == nil {
		return ip.String(), ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String(), ip.String()
}

// admit counts a new connection against the global and per-address limits.
func (s *Server) admit(key string) (wire.Reason, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return wire.ReasonShutdown, false
	}
	if s.cfg.MaxConns > 0 && s.admitted >= s.cfg.MaxConns {
		return wire.ReasonMaxConns, false
	}
	if s.cfg.MaxConnsPerIP > 0 && s.perIP[key] >= s.cfg.MaxConnsPerIP {
		return wire.ReasonMaxConns, false
	}
	s.perIP[key]++
	s.admitted++
	return wire.ReasonNone, true
}

func (s *Server) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitted--
	if s.perIP[key]--; s.perIP[key] <= 0 {
		delete(s.perIP, key)
	}
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	addr, key := s.clientAddr(r)
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "relay: /ws expects a WebSocket upgrade", http.StatusBadRequest)
		return
	}
	offered := false
	for _, p := range websocket.Subprotocols(r) {
		offered = offered || p == wire.Subprotocol
	}
	if !offered {
		s.m.reject(wire.ReasonProtocol)
		http.Error(w, "relay: client must offer subprotocol "+wire.Subprotocol, http.StatusBadRequest)
		return
	}
	if reason, ok := s.admit(key); !ok {
		s.m.reject(reason)
		s.log.Warn("connection refused", "ip", addr, "reason", reason.String())
		w.Header().Set("Retry-After", "5")
		http.Error(w, "relay: "+reason.String(), http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.release(key)
		s.m.reject(wire.ReasonProtocol)
		return
	}
	c := s.newConn(ws, addr, key)
	if c == nil {
		return
	}
	// A fresh goroutine, so that net/http's connection goroutine (with its
	// request, response and buffers) ends here: an idle connection then
	// costs a small stack instead of the whole HTTP serving state.
	go c.run()
}

// Shutdown stops accepting connections, ends every connection that is not
// in a session (waiting targets are told the relay is shutting down, so that
// they can retry elsewhere), and waits for running sessions to finish. When
// ctx ends first, the remaining sessions are cut and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	srvs := s.httpSrvs
	var idle []*conn
	for c := range s.conns {
		idle = append(idle, c)
	}
	s.mu.Unlock()
	s.log.Info("shutting down: draining sessions", "connections", len(idle))

	var errs []error
	for _, hs := range srvs {
		// Hijacked WebSocket connections are not tracked by net/http, so
		// this returns once the listeners are closed and plain HTTP
		// requests are done.
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range idle {
		c.endUnlessJoined(wire.ReasonShutdown)
	}
	done := make(chan struct{})
	go func() { s.connsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		var rest []*conn
		for c := range s.conns {
			rest = append(rest, c)
		}
		s.mu.Unlock()
		for _, c := range rest {
			c.end(errorFrame(wire.ReasonShutdown, 0), wire.ReasonShutdown)
		}
		<-done
		errs = append(errs, fmt.Errorf("relay: shutdown cut %d sessions: %w", len(rest), ctx.Err()))
	}
	s.log.Info("shut down")
	return errors.Join(errs...)
}

// newRoomID makes an unguessable room name; it appears in logs, the code never
// does.
func newRoomID() (state.RoomID, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("relay: room id: %w", err)
	}
	return state.RoomID(hex.EncodeToString(b[:])), nil
}

func errorFrame(r wire.Reason, retry time.Duration) []byte {
	return wire.Frame{Type: wire.Error, Reason: r, RetryAfter: retry}.Encode()
}

func goneFrame(r wire.Reason) []byte {
	return wire.Frame{Type: wire.PeerGone, Reason: r}.Encode()
}

var (
	peerFrame = wire.Frame{Type: wire.Peer}.Encode()
)
