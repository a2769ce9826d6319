package server

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/amesh-go/amesh/relay/state"
)

// Config is the relay's limits and behaviour. Zero fields take the defaults
// of DefaultConfig; a negative count or limit burst means "no limit".
type Config struct {
	// Version is reported by /health and /metrics.
	Version string
	// TrustProxy takes the client address from the last X-Forwarded-For
	// entry, as appended by a reverse proxy in front of the relay. Without
	// a proxy it must stay off, or clients choose their own address.
	TrustProxy bool

	// MaxConns bounds open WebSocket connections.
	MaxConns int
	// MaxConnsPerIP bounds open connections from one client address (an
	// IPv6 client counts per /64).
	MaxConnsPerIP int
	// MaxFrame bounds one frame's payload in bytes; a larger frame ends the
	// connection with close code 1009.
	MaxFrame int
	// MaxSessionBytes bounds the data bytes each peer may send in a
	// session.
	MaxSessionBytes int64

	// RendezvousTTL is how long a pairing code waits for a controller. It
	// ends when the controller joins; the session that follows has its own
	// limits, and the pairing handshake its own deadline.
	RendezvousTTL time.Duration
	// SessionTimeout bounds a session from the join to its end.
	SessionTimeout time.Duration
	// IdleTimeout ends a session in which no data frame travelled for this
	// long.
	IdleTimeout time.Duration
	// HelloTimeout ends a connection that neither creates nor joins a room
	// within this time.
	HelloTimeout time.Duration
	// PingInterval is how often the relay pings each client.
	PingInterval time.Duration
	// PongWait ends a connection from which nothing (not even a pong)
	// arrived for this long. It must exceed PingInterval.
	PongWait time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration

	// CreateLimit bounds room creations per client address.
	CreateLimit state.Limit
	// JoinFailLimit bounds failed joins per client address. A join is
	// refused outright once it is exhausted, so guessing stops.
	JoinFailLimit state.Limit
	// JoinOKLimit bounds successful joins per client address. It is
	// separate so that a busy but honest client never exhausts its failure
	// budget, and failures never block honest joins from other addresses.
	JoinOKLimit state.Limit
	// DeliverLimit bounds provisioning deliveries per client address. Each
	// stored delivery occupies the store for up to a day.
	DeliverLimit state.Limit
	// CollectLimit bounds collect requests per client address.
	CollectLimit state.Limit
	// CollectPoll is how often a waiting collector's mailboxes are looked
	// into even without a notification (notifications lost while a shared
	// store was unreachable are then made up for).
	CollectPoll time.Duration

	// Logger receives structured logs; nil means slog.Default(). Pairing
	// codes and payloads are never logged.
	Logger *slog.Logger
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Version:         "dev",
		MaxConns:        20000,
		MaxConnsPerIP:   64,
		MaxFrame:        16 << 10,
		MaxSessionBytes: 64 << 10,
		RendezvousTTL:   60 * time.Second,
		SessionTimeout:  10 * time.Minute,
		IdleTimeout:     5 * time.Minute,
		HelloTimeout:    10 * time.Second,
		PingInterval:    20 * time.Second,
		PongWait:        45 * time.Second,
		WriteTimeout:    10 * time.Second,
		CreateLimit:     state.Limit{Burst: 20, Per: time.Minute},
		JoinFailLimit:   state.Limit{Burst: 10, Per: time.Minute},
		JoinOKLimit:     state.Limit{Burst: 60, Per: time.Minute},
		DeliverLimit:    state.Limit{Burst: 20, Per: time.Minute},
		CollectLimit:    state.Limit{Burst: 60, Per: time.Minute},
		CollectPoll:     10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig and checks the result.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	setDefault(&c.Version, d.Version)
	setDefault(&c.MaxConns, d.MaxConns)
	setDefault(&c.MaxConnsPerIP, d.MaxConnsPerIP)
	setDefault(&c.MaxFrame, d.MaxFrame)
	setDefault(&c.MaxSessionBytes, d.MaxSessionBytes)
	setDefault(&c.RendezvousTTL, d.RendezvousTTL)
	setDefault(&c.SessionTimeout, d.SessionTimeout)
	setDefault(&c.IdleTimeout, d.IdleTimeout)
	setDefault(&c.HelloTimeout, d.HelloTimeout)
	setDefault(&c.PingInterval, d.PingInterval)
	setDefault(&c.PongWait, d.PongWait)
	setDefault(&c.WriteTimeout, d.WriteTimeout)
	setDefault(&c.CreateLimit, d.CreateLimit)
	setDefault(&c.JoinFailLimit, d.JoinFailLimit)
	setDefault(&c.JoinOKLimit, d.JoinOKLimit)
	setDefault(&c.DeliverLimit, d.DeliverLimit)
	setDefault(&c.CollectLimit, d.CollectLimit)
	setDefault(&c.CollectPoll, d.CollectPoll)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PongWait <= c.PingInterval {
		return c, fmt.Errorf("relay: config: pong wait %v must exceed ping interval %v", c.PongWait, c.PingInterval)
	}
	for _, d := range []time.Duration{c.RendezvousTTL, c.SessionTimeout, c.IdleTimeout, c.HelloTimeout, c.PingInterval, c.WriteTimeout, c.CollectPoll} {
		if d < 0 {
			return c, errors.New("relay: config: negative duration")
		}
	}
	if c.MaxFrame < 0 || c.MaxFrame > 1<<20 {
		return c, fmt.Errorf("relay: config: max frame %d outside 1..1048576", c.MaxFrame)
	}
	return c, nil
}

func setDefault[T comparable](p *T, d T) {
	var zero T
	if *p == zero {
		*p = d
	}
}

// ParseLimit parses a rate limit written "N/DURATION" (for example "20/1m":
// a burst of 20, refilled over a minute) or "off".
func ParseLimit(s string) (state.Limit, error) {
	if s == "off" {
		return state.Limit{Burst: -1}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return state.Limit{}, fmt.Errorf("relay: rate limit %q: want N/DURATION (like 20/1m) or off", s)
	}
	burst, err := strconv.Atoi(n)
	if err != nil || burst < 1 {
		return state.Limit{}, fmt.Errorf("relay: rate limit %q: %q is not a positive count", s, n)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return state.Limit{}, fmt.Errorf("relay: rate limit %q: %q is not a positive duration", s, per)
	}
	return state.Limit{Burst: burst, Per: d}, nil
}

// FormatLimit is the inverse of ParseLimit.
func FormatLimit(l state.Limit) string {
	if l.Unlimited() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", l.Burst, l.Per)
}
