// Package redisstate is a relay/state.Store on Redis, so that several
// amesh-relay instances behind a load balancer serve the same rooms: a
// target may wait on one instance while its controller joins through
// another, and a bootstrap token spent through one instance is spent for
// all of them.
//
// Every operation that reads and then writes (creating, joining, expiring
// and closing rooms with their wrong-attempt counts and tombstones, token
// buckets, delivery boxes) is one Lua script, which Redis runs atomically;
// one-time IDs are SET NX. Lifetimes run on Redis's clock (TIME inside the
// scripts, PX on keys), so instances with drifting clocks still agree.
// Frames between the two peers of a room travel over Redis pub/sub, on one
// subscriber connection per Store.
//
// Redis Cluster is not supported: the scripts touch keys they compute, and
// PUBLISH there counts only one node's subscribers, which the bus needs to
// tell a departed peer. A single Redis, or one with replicas and Sentinel
// (a redis.FailoverClient), serves any number of relay instances.
//
// When Redis cannot be reached, operations fail with errors that wrap
// state.ErrUnavailable (the relay then tells its clients "unavailable");
// go-redis reconnects by itself, and the Store resumes with the first
// command Redis answers. Frames published while the subscriber connection
// was down are lost: the sessions they belonged to fail and are retried by
// their devices.
package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/amesh-go/amesh/relay/state"
	"github.com/amesh-go/amesh/relay/wire"
)

// DefaultPrefix starts every key and channel when Options.Prefix is empty.
const DefaultPrefix = "amesh:relay:"

// DefaultLinger is the default of Options.Linger.
const DefaultLinger = 24 * time.Hour

// Options configure a Store.
type Options struct {
	// State holds the limits every store shares (wrong joins, tombstones,
	// delivery boxes).
	State state.Options
	// Prefix starts every key and channel, so that several relays (or
	// tests) can share one Redis. Empty means DefaultPrefix. Instances that
	// serve the same clients must use the same prefix.
	Prefix string
	// Linger bounds how long a room's keys outlive a relay instance that
	// died without closing it (default 24 h). Such a room only reserves
	// its pairing code meanwhile.
	Linger time.Duration
	// Logger receives one line when Redis becomes unavailable and one when
	// it answers again; nil means slog.Default().
	Logger *slog.Logger
}

// Store is a state.Store on Redis. It is safe for concurrent use.
type Store struct {
	c      redis.UniversalClient
	opts   state.Options
	prefix string
	linger time.Duration
	log    *slog.Logger
	down   atomic.Bool

	ps       *redis.PubSub
	psCtx    context.Context
	psCancel context.CancelFunc
	psDone   chan struct{}
	psMu     sync.Mutex // orders subscribe and unsubscribe commands with the local map
	pingSeq  atomic.Uint64

	mu    sync.Mutex
	subs  map[string]*subscription // by channel
	pongs map[string]chan struct{} // subscription confirmations by ping payload
}

type subscription struct{ fn func(state.Event) }

var _ state.Store = (*Store)(nil)

// New returns a Store on c. The caller keeps ownership of c (Close does not
// close it). c must not be a cluster client.
func New(c redis.UniversalClient, opts Options) (*Store, error) {
	if c == nil {
		return nil, errors.New("redisstate: nil client")
	}
	if _, ok := c.(*redis.ClusterClient); ok {
		return nil, errors.New("redisstate: Redis Cluster is not supported; use one Redis server (with Sentinel for failover)")
	}
	s := &Store{
		c:      c,
		opts:   opts.State.WithDefaults(),
		prefix: opts.Prefix,
		linger: opts.Linger,
		log:    opts.Logger,
		subs:   map[string]*subscription{},
		pongs:  map[string]chan struct{}{},
		psDone: make(chan struct{}),
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.linger <= 0 {
		s.linger = DefaultLinger
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.psCtx, s.psCancel = context.WithCancel(context.Background())
	// A PubSub without channels connects lazily; the receive loop then
	// reconnects and resubscribes after every failure.
	s.ps = c.Subscribe(s.psCtx)
	go s.receive()
	return s, nil
}

// NewClient returns a client for a redis:// (or rediss://, unix://) URL with
// the settings a relay wants: short timeouts, so that a Redis that stopped
// answering costs a client request about a second, and no automatic retry
// of commands (a script whose reply was lost may have run). Clients passed
// to New directly should be configured alike. Errors never quote the URL,
// which may hold a password.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error quotes the whole URL: keep only its reason.
			err = ue.Err
		}
		return nil, fmt.Errorf("redisstate: Redis URL: want redis://[user:password@]host:port[/db], rediss:// or unix://PATH: %w", err)
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 2 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 2 * time.Second
	}
	o.ContextTimeoutEnabled = true
	// One dial per command: the relay's clients retry, and failing fast
	// tells them sooner.
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	// A script whose reply was lost may have run: running it again could
	// join a room twice or spend a token twice, so commands are not
	// retried.
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	return redis.NewClient(o), nil
}

// Ping reports whether Redis answers; the relay's /health uses it.
func (s *Store) Ping(ctx context.Context) error {
	return s.check("ping", s.c.Ping(ctx).Err())
}

// check classifies a command's error. Connection failures, timeouts and
// the replies of a Redis that cannot serve (loading, read-only replica,
// failover) wrap state.ErrUnavailable; they also drive the down/up log
// lines. redis.Nil is the caller's business and is returned as is.
func (s *Store) check(op string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		if s.down.CompareAndSwap(true, false) {
			s.log.Info("relay state: Redis available again")
		}
		return err
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !unavailableReply(err) {
		return fmt.Errorf("redisstate: %s: %w", op, err)
	}
	if s.down.CompareAndSwap(false, true) {
		s.log.Error("relay state: Redis unavailable", "op", op, "err", err)
	}
	return fmt.Errorf("redisstate: %s: %w: %w", op, state.ErrUnavailable, err)
}

func unavailableReply(err error) bool {
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

func (s *Store) key(kind, name string) string { return s.prefix + kind + ":" + name }

// ms converts a duration to whole milliseconds, at least 1.
func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Lua: the current time in milliseconds on Redis's clock, and the end of a
// room (its keys go, a tombstone answers later joins for a while).
const luaCommon = `
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function endroom(p, rid, code, reason, tomb)
  redis.call('DEL', p .. 'room:' .. rid)
  if redis.call('GET', p .. 'code:' .. code) == rid then
    redis.call('DEL', p .. 'code:' .. code)
  end
  redis.call('HDEL', p .. 'bucket:' .. string.sub(code, 1, 3), rid)
  redis.call('SET', p .. 'tomb:' .. code, reason, 'PX', tomb)
end
`

// ARGV: prefix, room, ttl ms, linger ms, candidate codes…
var createScript = redis.NewScript(luaCommon + `
local p, rid, ttl, linger = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', p .. 'room:' .. rid) == 1 then return {'exists'} end
local now = nowms()
for i = 5, #ARGV do
  local code = ARGV[i]
  if redis.call('EXISTS', p .. 'code:' .. code) == 0 and redis.call('EXISTS', p .. 'tomb:' .. code) == 0 then
    redis.call('HSET', p .. 'room:' .. rid, 'code', code, 'state', 'w', 'deadline', string.format('%.0f', now + ttl))
    redis.call('PEXPIRE', p .. 'room:' .. rid, linger)
    redis.call('SET', p .. 'code:' .. code, rid, 'PX', linger)
    redis.call('HSET', p .. 'bucket:' .. string.sub(code, 1, 3), rid, 0)
    return {'ok', code}
  end
end
return {'full'}
`)

// ARGV: prefix, code, max wrong joins, tombstone ms. Returns {result,
// room or an empty string, burned rooms…}.
var joinScript = redis.NewScript(luaCommon + `
local p, code, maxw, tomb = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = nowms()
local bucket = p .. 'bucket:' .. string.sub(code, 1, 3)
local rid = redis.call('GET', p .. 'code:' .. code)
local res
if rid then
  local r = redis.call('HMGET', p .. 'room:' .. rid, 'state', 'deadline')
  if r[1] == 'w' and now < tonumber(r[2]) then
    redis.call('HSET', p .. 'room:' .. rid, 'state', 'j')
    redis.call('HDEL', bucket, rid)
    return {'ok', rid}
  elseif r[1] == 'j' then
    res = 'used'
  elseif r[1] == 'w' then
    endroom(p, rid, code, 'expired', tomb)
    res = 'expired'
  else
    res = 'unknown'
  end
else
  res = redis.call('GET', p .. 'tomb:' .. code) or 'unknown'
end
-- Every failed join is a wrong guess at each waiting room of the bucket.
local out = {res, ''}
for _, w in ipairs(redis.call('HKEYS', bucket)) do
  local r = redis.call('HMGET', p .. 'room:' .. w, 'state', 'code')
  if r[1] == 'w' then
    if redis.call('HINCRBY', bucket, w, 1) >= maxw then
      endroom(p, w, r[2], 'burned', tomb)
      table.insert(out, w)
    end
  elseif not r[1] then
    redis.call('HDEL', bucket, w)
  end
end
return out
`)

// ARGV: prefix, room, tombstone ms.
var expireScript = redis.NewScript(luaCommon + `
local p, rid, tomb = ARGV[1], ARGV[2], tonumber(ARGV[3])
local r = redis.call('HMGET', p .. 'room:' .. rid, 'state', 'code')
if r[1] ~= 'w' then return 0 end
endroom(p, rid, r[2], 'expired', tomb)
return 1
`)

// ARGV: prefix, room, tombstone ms.
var closeScript = redis.NewScript(luaCommon + `
local p, rid, tomb = ARGV[1], ARGV[2], tonumber(ARGV[3])
local r = redis.call('HMGET', p .. 'room:' .. rid, 'state', 'code')
if not r[1] then return 0 end
local reason = 'used'
if r[1] == 'w' then reason = 'closed' end
endroom(p, rid, r[2], reason, tomb)
return 1
`)

// Token bucket in microseconds. ARGV: key, burst, per µs, take (1) or
// refund (0). Returns {ok, retry-after µs}.
var bucketScript = redis.NewScript(`
local k, burst, per, take = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = redis.call('HMGET', k, 'tokens', 'last', 'burst', 'per')
local tokens, last
if v[1] and tonumber(v[3]) == burst and tonumber(v[4]) == per then
  tokens, last = tonumber(v[1]), tonumber(v[2])
  if now > last then
    tokens = math.min(burst, tokens + (now - last) * burst / per)
    last = now
  end
elseif take then
  tokens, last = burst, now
else
  return {1, 0}
end
local ok, wait = 1, 0
if take then
  if tokens >= 1 then
    tokens = tokens - 1
  else
    ok = 0
    wait = math.ceil((1 - tokens) * per / burst)
  end
else
  tokens = math.min(burst, tokens + 1)
end
redis.call('HSET', k, 'tokens', string.format('%.9f', tokens), 'last', string.format('%.0f', last),
  'burst', string.format('%.0f', burst), 'per', string.format('%.0f', per))
-- A bucket that has refilled is the same as none.
redis.call('PEXPIRE', k, math.ceil(per / 1000) + 1000)
return {ok, wait}
`)

// Deliveries are list items "expiry-ms:data". ARGV: key, data, ttl ms, max
// count. Returns 1, or 0 when the box is full.
var putScript = redis.NewScript(luaCommon + `
local k, data, ttl, maxn = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = nowms()
local live, last = {}, now + ttl
for _, it in ipairs(redis.call('LRANGE', k, 0, -1)) do
  local exp = tonumber(string.sub(it, 1, string.find(it, ':', 1, true) - 1))
  if exp > now then
    table.insert(live, it)
    if exp > last then last = exp end
  end
end
if #live >= maxn then return 0 end
redis.call('DEL', k)
for _, it in ipairs(live) do redis.call('RPUSH', k, it) end
redis.call('RPUSH', k, string.format('%.0f', now + ttl) .. ':' .. data)
redis.call('PEXPIRE', k, last - now)
return 1
`)

// ARGV: key. Returns the unexpired data, oldest first, and empties the box.
var takeScript = redis.NewScript(luaCommon + `
local k = ARGV[1]
local now = nowms()
local out = {}
for _, it in ipairs(redis.call('LRANGE', k, 0, -1)) do
  local sep = string.find(it, ':', 1, true)
  if tonumber(string.sub(it, 1, sep - 1)) > now then
    table.insert(out, string.sub(it, sep + 1))
  end
end
redis.call('DEL', k)
return out
`)

// randomCodes draws n uniform six-digit codes.
func randomCodes(n int) ([]any, error) {
	out := make([]any, 0, n)
	var b [8]byte
	for len(out) < n {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("redisstate: random code: %w", err)
		}
		v := binary.BigEndian.Uint64(b[:])
		const m = 1_000_000
		if v >= math.MaxUint64-math.MaxUint64%m {
			continue
		}
		out = append(out, fmt.Sprintf("%06d", v%m))
	}
	return out, nil
}

func (s *Store) roomArgs(extra ...any) []any {
	return append([]any{s.prefix}, extra...)
}

// CreateRoom implements state.Store.
func (s *Store) CreateRoom(ctx context.Context, room state.RoomID, ttl time.Duration) (string, error) {
	linger := max(s.linger, ttl+s.opts.TombstoneTTL)
	for range 8 {
		codes, err := randomCodes(8)
		if err != nil {
			return "", err
		}
		args := append(s.roomArgs(string(room), ms(ttl), ms(linger)), codes...)
		res, err := createScript.Run(ctx, s.c, nil, args...).Slice()
		if err := s.check("create room", err); err != nil {
			return "", err
		}
		switch res[0] {
		case "ok":
			return res[1].(string), nil
		case "exists":
			return "", fmt.Errorf("state: create room: %w", state.ErrRoomExists)
		}
	}
	return "", fmt.Errorf("state: create room: %w", state.ErrNoFreeCode)
}

var joinErrors = map[string]error{
	"used":    state.ErrCodeUsed,
	"expired": state.ErrCodeExpired,
	"burned":  state.ErrCodeBurned,
	"closed":  state.ErrCodeClosed,
	"unknown": state.ErrUnknownCode,
}

// JoinRoom implements state.Store.
func (s *Store) JoinRoom(ctx context.Context, code string) (state.JoinResult, error) {
	if !wire.ValidCode(code) {
		return state.JoinResult{}, fmt.Errorf("state: join: %w", state.ErrUnknownCode)
	}
	res, err := joinScript.Run(ctx, s.c, nil, s.roomArgs(code, s.opts.MaxWrongJoins, ms(s.opts.TombstoneTTL))...).StringSlice()
	if err := s.check("join room", err); err != nil {
		return state.JoinResult{}, err
	}
	if len(res) < 2 {
		return state.JoinResult{}, fmt.Errorf("redisstate: join room: unexpected reply %q", res)
	}
	if res[0] == "ok" {
		return state.JoinResult{Room: state.RoomID(res[1])}, nil
	}
	var jr state.JoinResult
	for _, b := range res[2:] {
		jr.Burned = append(jr.Burned, state.RoomID(b))
	}
	jerr, ok := joinErrors[res[0]]
	if !ok {
		jerr = state.ErrUnknownCode
	}
	return jr, fmt.Errorf("state: join: %w", jerr)
}

// ExpireRoom implements state.Store.
func (s *Store) ExpireRoom(ctx context.Context, room state.RoomID) (bool, error) {
	n, err := expireScript.Run(ctx, s.c, nil, s.roomArgs(string(room), ms(s.opts.TombstoneTTL))...).Int()
	if err := s.check("expire room", err); err != nil {
		return false, err
	}
	return n == 1, nil
}

// CloseRoom implements state.Store.
func (s *Store) CloseRoom(ctx context.Context, room state.RoomID) error {
	err := closeScript.Run(ctx, s.c, nil, s.roomArgs(string(room), ms(s.opts.TombstoneTTL))...).Err()
	return s.check("close room", err)
}

func (s *Store) bucket(ctx context.Context, key string, lim state.Limit, take bool) (bool, time.Duration, error) {
	per := max(lim.Per.Microseconds(), 1)
	flag := "0"
	if take {
		flag = "1"
	}
	res, err := bucketScript.Run(ctx, s.c, nil, s.key("rate", key), lim.Burst, per, flag).Int64Slice()
	if err := s.check("rate limit", err); err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("redisstate: rate limit: unexpected reply %v", res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

// Take implements state.Store.
func (s *Store) Take(ctx context.Context, key string, lim state.Limit) (bool, time.Duration, error) {
	if lim.Unlimited() {
		return true, 0, nil
	}
	return s.bucket(ctx, key, lim, true)
}

// Refund implements state.Store.
func (s *Store) Refund(ctx context.Context, key string, lim state.Limit) error {
	if lim.Unlimited() {
		return nil
	}
	_, _, err := s.bucket(ctx, key, lim, false)
	return err
}

// UseOnce implements state.Store with SET NX PX.
func (s *Store) UseOnce(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ok, err := s.c.SetNX(ctx, s.key("once", id), 1, time.Duration(ms(ttl))*time.Millisecond).Result()
	if err := s.check("use once", err); err != nil {
		return false, err
	}
	return ok, nil
}

// PutDelivery implements state.Store.
func (s *Store) PutDelivery(ctx context.Context, box string, data []byte, ttl time.Duration) error {
	if len(data) > s.opts.MaxDeliveryBytes {
		return fmt.Errorf("state: delivery of %d bytes, limit %d: %w", len(data), s.opts.MaxDeliveryBytes, state.ErrTooMany)
	}
	n, err := putScript.Run(ctx, s.c, nil, s.key("box", box), data, ms(ttl), s.opts.MaxDeliveries).Int()
	if err := s.check("put delivery", err); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("state: delivery box holds %d: %w", s.opts.MaxDeliveries, state.ErrTooMany)
	}
	return nil
}

// TakeDeliveries implements state.Store.
func (s *Store) TakeDeliveries(ctx context.Context, box string) ([][]byte, error) {
	res, err := takeScript.Run(ctx, s.c, nil, s.key("box", box)).StringSlice()
	if err := s.check("take deliveries", err); err != nil {
		return nil, err
	}
	out := make([][]byte, len(res))
	for i, d := range res {
		out[i] = []byte(d)
	}
	return out, nil
}

func (s *Store) channel(room state.RoomID, side state.Side) string {
	return s.prefix + "bus:" + string(room) + ":" + strconv.Itoa(int(side))
}

func encodeEvent(ev state.Event) string {
	return string(append([]byte{byte(ev.Kind), byte(ev.Reason)}, ev.Data...))
}

func decodeEvent(p string) (state.Event, bool) {
	if len(p) < 2 {
		return state.Event{}, false
	}
	ev := state.Event{Kind: state.EventKind(p[0]), Reason: wire.Reason(p[1])}
	if len(p) > 2 {
		ev.Data = []byte(p[2:])
	}
	return ev, true
}

// Subscribe implements state.Store. It returns once Redis has confirmed
// the subscription, so that every event published afterwards arrives. A
// side has at most one subscriber per Store; across instances the relay's
// rooms guarantee it (a room's ID is fresh and only one join wins).
func (s *Store) Subscribe(ctx context.Context, room state.RoomID, side state.Side, fn func(state.Event)) (func(), error) {
	ch := s.channel(room, side)
	sub := &subscription{fn: fn}
	s.psMu.Lock()
	s.mu.Lock()
	if _, ok := s.subs[ch]; ok {
		s.mu.Unlock()
		s.psMu.Unlock()
		return nil, fmt.Errorf("state: subscribe %s of room: already subscribed", side)
	}
	s.subs[ch] = sub
	s.mu.Unlock()
	err := s.ps.Subscribe(ctx, ch)
	if err == nil {
		err = s.confirm(ctx)
	}
	if err != nil {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
		// Also drops the channel from the set go-redis resubscribes.
		s.ps.Unsubscribe(context.Background(), ch)
		s.psMu.Unlock()
		return nil, s.check("subscribe", err)
	}
	s.psMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.psMu.Lock()
			defer s.psMu.Unlock()
			s.mu.Lock()
			mine := s.subs[ch] == sub
			if mine {
				delete(s.subs, ch)
			}
			s.mu.Unlock()
			if mine {
				// Confirmed, so that a Publish after unsubscribe returns
				// reports no subscriber.
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if s.ps.Unsubscribe(ctx, ch) == nil {
					s.confirm(ctx)
				}
				cancel()
			}
		})
	}, nil
}

// confirm waits until Redis has processed every command sent so far on the
// subscriber connection: it sends a PING with a unique payload there and
// waits for its PONG, which Redis sends after the replies to the earlier
// commands.
func (s *Store) confirm(ctx context.Context) error {
	token := "confirm-" + strconv.FormatUint(s.pingSeq.Add(1), 10)
	done := make(chan struct{})
	s.mu.Lock()
	s.pongs[token] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pongs, token)
		s.mu.Unlock()
	}()
	if err := s.ps.Ping(ctx, token); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("subscription not confirmed: %w", ctx.Err())
	case <-s.psCtx.Done():
		return errors.New("store closed")
	}
}

// Publish implements state.Store: the event is delivered when some relay
// instance has a subscriber for (room, to).
func (s *Store) Publish(ctx context.Context, room state.RoomID, to state.Side, ev state.Event) (bool, error) {
	n, err := s.c.Publish(ctx, s.channel(room, to), encodeEvent(ev)).Result()
	if err := s.check("publish", err); err != nil {
		return false, err
	}
	return n > 0, nil
}

// idleCheck is how long the subscriber connection may stay silent before
// it is pinged, so that a dead connection is noticed and replaced.
const idleCheck = 15 * time.Second

// receive dispatches what arrives on the subscriber connection until Close.
func (s *Store) receive() {
	defer close(s.psDone)
	backoff := 20 * time.Millisecond
	for {
		msg, err := s.ps.ReceiveTimeout(s.psCtx, idleCheck)
		if s.psCtx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.ps.Ping(s.psCtx, "idle")
				continue
			}
			s.check("subscriber connection", err)
			select {
			case <-time.After(backoff):
			case <-s.psCtx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 20 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Message:
			s.mu.Lock()
			sub := s.subs[m.Channel]
			s.mu.Unlock()
			if ev, ok := decodeEvent(m.Payload); ok && sub != nil {
				sub.fn(ev)
			}
		case *redis.Pong:
			s.mu.Lock()
			if done, ok := s.pongs[m.Payload]; ok {
				close(done)
				delete(s.pongs, m.Payload)
			}
			s.mu.Unlock()
		}
	}
}

// Close stops the subscriber connection. It does not close the client.
func (s *Store) Close() error {
	s.psCancel()
	err := s.ps.Close()
	<-s.psDone
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisstate: close: %w", err)
	}
	return nil
}
