// Command amesh-relay is the rendezvous server through which two amesh
// devices pair (`amesh listen` on the target, `amesh invite CODE` on the
// controller). It forwards opaque, end-to-end encrypted frames between the
// two peers of a room and never sees keys or plaintext; see docs/PAIRING.md.
//
// Usage:
//
//	amesh-relay [--listen :8787] [--tls-cert FILE --tls-key FILE] [--trust-proxy] [--redis URL] [limits…]
//
// Endpoints: /ws (clients), /health (JSON), /metrics (Prometheus). SIGINT or
// SIGTERM starts a graceful shutdown: waiting rooms are told to go elsewhere,
// running sessions may finish within --drain-timeout.
//
// Alone, the relay keeps its state in memory. With --redis URL, rooms,
// attempt counts, rate limits, spent bootstrap tokens and stored deliveries
// live in Redis and frames between peers travel over Redis pub/sub, so that
// several instances behind a load balancer act as one relay.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/state/redisstate"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version, if any, is used.
var version = ""

func relayVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// EnvRedis names the Redis URL used when --redis is not given.
const EnvRedis = "AMESH_RELAY_REDIS"

// exit codes
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// usageError marks errors in the command line.
type usageError struct{ error }

// Unwrap lets errors.Is see flag.ErrHelp.
func (e usageError) Unwrap() error { return e.error }

type options struct {
	listen       string
	tlsCert      string
	tlsKey       string
	drain        time.Duration
	logLevel     string
	logFormat    string
	showVersion  bool
	wrongJoins   int
	tombstone    time.Duration
	cfg          server.Config
	rateCreate   string
	rateJoinFail string
	rateJoinOK   string
	rateDeliver  string
	rateCollect  string
	redisURL     string
	redisPrefix  string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	d := server.DefaultConfig()
	o := &options{}
	fs := flag.NewFlagSet("amesh-relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: amesh-relay [flags]\n\n"+
			"The amesh pairing relay. Devices pair through it with `amesh listen --relay URL`\n"+
			"and `amesh invite CODE --relay URL`; it only forwards their encrypted frames.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", ":8787", "address to listen on (host:port)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve wss:// and https://")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM), with --tls-cert")
	fs.BoolVar(&o.cfg.TrustProxy, "trust-proxy", false, "take client addresses from the last X-Forwarded-For entry (only behind a reverse proxy)")
	fs.DurationVar(&o.drain, "drain-timeout", 30*time.Second, "on shutdown, how long running sessions may take to finish")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or text")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")

	fs.IntVar(&o.cfg.MaxConns, "max-conns", d.MaxConns, "maximum open connections")
	fs.IntVar(&o.cfg.MaxConnsPerIP, "max-conns-per-ip", d.MaxConnsPerIP, "maximum open connections per client address (-1: no limit)")
	fs.IntVar(&o.cfg.MaxFrame, "max-frame", d.MaxFrame, "maximum frame payload in bytes")
	fs.Int64Var(&o.cfg.MaxSessionBytes, "max-session-bytes", d.MaxSessionBytes, "maximum bytes each peer may send in a session")
	fs.DurationVar(&o.cfg.RendezvousTTL, "rendezvous", d.RendezvousTTL, "how long a pairing code waits for a controller")
	fs.DurationVar(&o.cfg.SessionTimeout, "session-timeout", d.SessionTimeout, "maximum duration of a session after the join")
	fs.DurationVar(&o.cfg.IdleTimeout, "idle-timeout", d.IdleTimeout, "end a session after this long without data (must exceed the clients' handshake timeout, 3m)")
	fs.DurationVar(&o.cfg.HelloTimeout, "hello-timeout", d.HelloTimeout, "end a connection that neither creates nor joins a room within this time")
	fs.DurationVar(&o.cfg.PingInterval, "ping-interval", d.PingInterval, "interval between WebSocket pings")
	fs.DurationVar(&o.cfg.PongWait, "pong-wait", d.PongWait, "end a connection silent for this long (must exceed --ping-interval)")
	fs.StringVar(&o.rateCreate, "rate-create", server.FormatLimit(d.CreateLimit), "room creations per client address: N/DURATION or off")
	fs.StringVar(&o.rateJoinFail, "rate-join-fail", server.FormatLimit(d.JoinFailLimit), "failed joins per client address: N/DURATION or off")
	fs.StringVar(&o.rateJoinOK, "rate-join-ok", server.FormatLimit(d.JoinOKLimit), "successful joins per client address: N/DURATION or off")
	fs.StringVar(&o.rateDeliver, "rate-deliver", server.FormatLimit(d.DeliverLimit), "provisioning deliveries per client address: N/DURATION or off")
	fs.StringVar(&o.rateCollect, "rate-collect", server.FormatLimit(d.CollectLimit), "provisioning collect requests per client address: N/DURATION or off")
	fs.StringVar(&o.redisURL, "redis", "", "keep the relay's state in Redis (redis://[user:password@]host:port[/db], rediss://, unix://) so that several instances serve the same clients; default: in memory, one instance (also $AMESH_RELAY_REDIS)")
	fs.StringVar(&o.redisPrefix, "redis-prefix", redisstate.DefaultPrefix, "prefix of the relay's Redis keys and channels; instances behind one load balancer must share it")
	fs.IntVar(&o.wrongJoins, "wrong-join-limit", 5, "burn a live pairing code after this many wrong join attempts on its bucket")
	fs.DurationVar(&o.tombstone, "code-reserve", 2*time.Minute, "how long the code of an ended room stays reserved")

	if err := fs.Parse(args); err != nil {
		return nil, usageError{err}
	}
	if o.redisURL == "" {
		// The environment keeps a Redis password off the command line,
		// where other users of the machine could read it.
		o.redisURL = os.Getenv(EnvRedis)
	}
	if o.redisURL != "" {
		c, err := redisstate.NewClient(o.redisURL)
		if err != nil {
			return nil, usageError{fmt.Errorf("--redis: %w", err)}
		}
		c.Close()
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	var err error
	for _, l := range []struct {
		s   string
		dst *state.Limit
	}{{o.rateCreate, &o.cfg.CreateLimit}, {o.rateJoinFail, &o.cfg.JoinFailLimit}, {o.rateJoinOK, &o.cfg.JoinOKLimit},
		{o.rateDeliver, &o.cfg.DeliverLimit}, {o.rateCollect, &o.cfg.CollectLimit}} {
		if *l.dst, err = server.ParseLimit(l.s); err != nil {
			return nil, usageError{err}
		}
	}
	for name, v := range map[string]int64{"--max-conns": int64(o.cfg.MaxConns), "--max-frame": int64(o.cfg.MaxFrame),
		"--max-session-bytes": o.cfg.MaxSessionBytes, "--wrong-join-limit": int64(o.wrongJoins)} {
		if v <= 0 {
			return nil, usageError{fmt.Errorf("%s must be positive", name)}
		}
	}
	for name, v := range map[string]time.Duration{"--rendezvous": o.cfg.RendezvousTTL, "--session-timeout": o.cfg.SessionTimeout,
		"--idle-timeout": o.cfg.IdleTimeout, "--hello-timeout": o.cfg.HelloTimeout, "--ping-interval": o.cfg.PingInterval,
		"--pong-wait": o.cfg.PongWait, "--drain-timeout": o.drain, "--code-reserve": o.tombstone} {
		if v <= 0 {
			return nil, usageError{fmt.Errorf("%s must be positive", name)}
		}
	}
	if o.cfg.PongWait <= o.cfg.PingInterval {
		return nil, usageError{fmt.Errorf("--pong-wait %v must exceed --ping-interval %v", o.cfg.PongWait, o.cfg.PingInterval)}
	}
	return o, nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want json or text", format)}
}

// run is main without the process: it returns the exit code. ready, if not
// nil, receives the address actually listened on.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "amesh-relay:", err)
		return exitUsage
	}
	if o.showVersion {
		fmt.Fprintln(stdout, "amesh-relay", relayVersion())
		return exitOK
	}
	log, err := newLogger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "amesh-relay:", err)
		return exitUsage
	}
	if err := serve(ctx, o, log, ready); err != nil {
		log.Error("amesh-relay stopped", "err", err)
		return exitError
	}
	return exitOK
}

func serve(ctx context.Context, o *options, log *slog.Logger, ready func(string)) error {
	o.cfg.Version = relayVersion()
	o.cfg.Logger = log
	store, storeName, closeStore, err := newStore(o, log)
	if err != nil {
		return err
	}
	defer closeStore()
	srv, err := server.New(o.cfg, store)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	addr := l.Addr().String()
	served := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			served <- srv.ServeTLS(l, o.tlsCert, o.tlsKey)
		} else {
			served <- srv.Serve(l)
		}
	}()
	scheme := "ws"
	if o.tlsCert != "" {
		scheme = "wss"
	}
	log.Info("amesh-relay listening", "addr", addr, "url", scheme+"://"+addr+"/ws", "version", o.cfg.Version,
		"trust_proxy", o.cfg.TrustProxy, "rendezvous", o.cfg.RendezvousTTL.String(), "state", storeName)
	if ready != nil {
		ready(addr)
	}
	select {
	case err := <-served:
		// The listener failed before any shutdown (for instance a bad
		// certificate).
		return err
	case <-ctx.Done():
	}
	log.Info("signal received: shutting down", "drain_timeout", o.drain.String())
	dctx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	err = srv.Shutdown(dctx)
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// Cutting sessions at the drain deadline is the documented
		// outcome of a slow drain, not a failure of the relay.
		log.Warn("drain timeout: remaining sessions were cut")
		return nil
	}
	return err
}

// newStore returns the relay's state: in memory, or in Redis with --redis.
// The name it returns is safe to log (no password).
func newStore(o *options, log *slog.Logger) (state.Store, string, func(), error) {
	opts := state.Options{MaxWrongJoins: o.wrongJoins, TombstoneTTL: o.tombstone}
	if o.redisURL == "" {
		m := state.NewMemory(opts, nil)
		return m, "memory", func() { m.Close() }, nil
	}
	// go-redis's own log lines (dial failures while Redis is down) go to
	// the relay's log, at debug level: the store logs the outage once.
	redis.SetLogger(redisLogger{log})
	c, err := redisstate.NewClient(o.redisURL)
	if err != nil {
		return nil, "", nil, err
	}
	s, err := redisstate.New(c, redisstate.Options{State: opts, Prefix: o.redisPrefix, Logger: log})
	if err != nil {
		c.Close()
		return nil, "", nil, err
	}
	name := "redis " + redactURL(o.redisURL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		// Not fatal: Redis may start after the relay (containers), and
		// the relay answers "unavailable" until it does.
		log.Error("Redis does not answer yet; clients are told the relay is unavailable until it does", "redis", redactURL(o.redisURL))
	}
	return s, name, func() { s.Close(); c.Close() }, nil
}

// redactURL hides the password of a Redis URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

type redisLogger struct{ log *slog.Logger }

// Printf logs go-redis's line at debug level.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
