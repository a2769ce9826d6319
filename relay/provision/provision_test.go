package provision

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/relay/relaytest"
	"github.com/amesh-go/amesh/wasm/protocol"
)

func TestMain(m *testing.M) {
	relaytest.QuietRedis()
	os.Exit(m.Run())
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// book stands for the allow list a Commit or OnTarget callback writes.
type book[T any] struct {
	mu    sync.Mutex
	items []T
	fail  error
}

func (b *book[T]) record(_ context.Context, x T) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	b.items = append(b.items, x)
	return nil
}

func (b *book[T]) list() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]T(nil), b.items...)
}

// device is a target in a test: its key and what it recorded.
type device struct {
	key  *protocol.PrivateKey
	book *book[Controller]
}

func newDevice(t *testing.T) *device {
	return &device{key: newKey(t), book: &book[Controller]{}}
}

func (d *device) deliver(ctx context.Context, tok *Token, relayURL string) (Controller, error) {
	return Deliver(ctx, tok, DeliverOptions{Signer: d.key, Name: "target-self", RelayURL: relayURL, Commit: d.book.record})
}

func collect(ctx context.Context, ctl *protocol.PrivateKey, relayURL string, wait bool, toks ...*Token) (Result, *book[Target], error) {
	b := &book[Target]{}
	res, err := Collect(ctx, CollectOptions{Controller: ctl.Public(), Tokens: toks, Wait: wait, RelayURL: relayURL,
		OnTarget: b.record, RetryInterval: 100 * time.Millisecond})
	return res, b, err
}

// TestRoundTripAcrossInstances issues a token naming instance A, delivers
// through A and collects through B: the delivery and the spent ID live in
// the shared Redis.
func TestRoundTripAcrossInstances(t *testing.T) {
	cl := relaytest.StartCluster(t, 2, relaytest.Config())
	a, b := cl.Relays[0], cl.Relays[1]
	ctx := tctx(t)
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: a.URL, ControllerName: "laptop", TargetName: "api-1"})

	// The target reads the token from its environment.
	parsed, err := Parse(tok.Encode())
	if err != nil {
		t.Fatal(err)
	}
	target := newDevice(t)
	ctl, err := target.deliver(ctx, parsed, "")
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if got := target.book.list(); len(got) != 1 || !got[0].PublicKey.Equal(ctlKey.Public()) ||
		got[0].Role != pairing.RoleController || got[0].Name != "laptop" || got[0] != ctl {
		t.Fatalf("the target recorded %+v", got)
	}

	res, targets, err := collect(ctx, ctlKey, b.URL, false, tok)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	got := targets.list()
	if len(got) != 1 || len(res.Targets) != 1 || len(res.Pending)+len(res.Expired)+len(res.Rejected) != 0 {
		t.Fatalf("collect: %+v, recorded %+v", res, got)
	}
	tg := got[0]
	if !tg.PublicKey.Equal(target.key.Public()) || tg.DeviceID != target.key.Public().DeviceID() ||
		tg.Role != pairing.RoleTarget || tg.Name != "api-1" || tg.ClaimedName != "target-self" || tg.Token.ID() != tok.ID() {
		t.Fatalf("the controller recorded %+v", tg)
	}
	// Taken once: a second collect finds nothing and the token is
	// pending (the caller dropped it after recording, normally).
	res, targets, err = collect(ctx, ctlKey, a.URL, false, tok)
	if err != nil || len(targets.list()) != 0 || len(res.Pending) != 1 {
		t.Fatalf("second collect: %+v, %v", res, err)
	}
}

// TestSingleUseAcrossInstances: a token delivers once, whatever instance
// and however many devices race with it; the losers record nothing.
func TestSingleUseAcrossInstances(t *testing.T) {
	cl := relaytest.StartCluster(t, 2, relaytest.Config())
	ctx := tctx(t)
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: cl.Relays[0].URL})

	var wins atomic.Int32
	var wg sync.WaitGroup
	devices := make([]*device, 8)
	for i := range devices {
		devices[i] = newDevice(t)
		wg.Go(func() {
			_, err := devices[i].deliver(ctx, tok, cl.Relays[i%2].URL)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrUsed):
				t.Errorf("device %d: %v, want ErrUsed", i, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d deliveries of one token succeeded", wins.Load())
	}
	recorded := 0
	for _, d := range devices {
		recorded += len(d.book.list())
	}
	if recorded != 1 {
		t.Fatalf("%d targets recorded the controller, want 1", recorded)
	}
	// Later, through either instance: used, with a message that says what
	// to do.
	d := newDevice(t)
	_, err := d.deliver(ctx, tok, cl.Relays[1].URL)
	if !errors.Is(err, ErrUsed) || !strings.Contains(err.Error(), "amesh provision") || len(d.book.list()) != 0 {
		t.Fatalf("late delivery: %v", err)
	}
	res, targets, err := collect(ctx, ctlKey, cl.Relays[1].URL, false, tok)
	if err != nil || len(targets.list()) != 1 || len(res.Rejected) != 0 {
		t.Fatalf("collect after the race: %+v, %v", res, err)
	}
}

// TestWaitingControllerAcrossInstances: the controller waits on instance
// B, the target delivers through A, and B hears of it over Redis pub/sub
// (well before its periodic look).
func TestWaitingControllerAcrossInstances(t *testing.T) {
	cfg := relaytest.Config()
	cfg.CollectPoll = time.Hour
	cl := relaytest.StartCluster(t, 2, cfg)
	ctx := tctx(t)
	ctlKey := newKey(t)
	toks := []*Token{
		issue(t, ctlKey, IssueOptions{RelayURL: cl.Relays[0].URL}),
		issue(t, ctlKey, IssueOptions{RelayURL: cl.Relays[0].URL}),
	}
	type out struct {
		res Result
		got []Target
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, b, err := collect(ctx, ctlKey, cl.Relays[1].URL, true, toks...)
		done <- out{res, b.list(), err}
	}()
	testenv.Eventually(t, 10*time.Second, "the controller waits on B", func() bool {
		return strings.Contains(cl.Relays[1].Logs.String(), "collecting deliveries")
	})
	for _, tok := range toks {
		if _, err := newDevice(t).deliver(ctx, tok, ""); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case o := <-done:
		if o.err != nil || len(o.got) != 2 || len(o.res.Pending) != 0 {
			t.Fatalf("waiting collect: %+v, %v", o.res, o.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting controller never received the deliveries")
	}
}

// TestControllerOffline: the delivery waits at the relay until the
// controller collects it; a one-shot collect before that finds the token
// pending.
func TestControllerOffline(t *testing.T) {
	r := relaytest.StartInstance(t, relaytest.Memory(t), relaytest.Config())
	ctx := tctx(t)
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: r.URL})
	res, targets, err := collect(ctx, ctlKey, "", false, tok)
	if err != nil || len(targets.list()) != 0 || len(res.Pending) != 1 || res.Pending[0] != tok {
		t.Fatalf("collect before delivery: %+v, %v", res, err)
	}
	if _, err := newDevice(t).deliver(ctx, tok, ""); err != nil {
		t.Fatal(err)
	}
	if _, targets, err = collect(ctx, ctlKey, "", false, tok); err != nil || len(targets.list()) != 1 {
		t.Fatalf("collect after delivery: %v, %v", targets.list(), err)
	}
}

// TestRecordFailureKeepsDelivery: when recording a target fails, the
// delivery is not acknowledged and stays at the relay for the next collect.
func TestRecordFailureKeepsDelivery(t *testing.T) {
	r := relaytest.StartInstance(t, relaytest.Memory(t), relaytest.Config())
	ctx := tctx(t)
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: r.URL})
	if _, err := newDevice(t).deliver(ctx, tok, ""); err != nil {
		t.Fatal(err)
	}
	disk := errors.New("disk full")
	failing := &book[Target]{fail: disk}
	_, err := Collect(ctx, CollectOptions{Controller: ctlKey.Public(), Tokens: []*Token{tok}, OnTarget: failing.record})
	if !errors.Is(err, disk) {
		t.Fatalf("collect with a failing OnTarget: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the relay put the delivery back", func() bool {
		return strings.Contains(r.Logs.String(), "returned to their mailboxes")
	})
	if _, targets, err := collect(ctx, ctlKey, "", false, tok); err != nil || len(targets.list()) != 1 {
		t.Fatalf("collect after the failure: %v, %v", targets.list(), err)
	}
}

// TestRefusedTokensChangeNothing: expired, tampered, foreign and
// unexpected-controller tokens are refused with their own error before the
// target records anything.
func TestRefusedTokensChangeNothing(t *testing.T) {
	r := relaytest.StartInstance(t, relaytest.Memory(t), relaytest.Config())
	ctx := tctx(t)
	ctlKey := newKey(t)
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired := issue(t, ctlKey, IssueOptions{RelayURL: r.URL, Now: past})
	fresh := issue(t, ctlKey, IssueOptions{RelayURL: r.URL})

	tests := []struct {
		name string
		tok  *Token
		opts func(*DeliverOptions)
		want error
	}{
		{"expired", expired, nil, ErrExpired},
		{"unexpected controller", fresh, func(o *DeliverOptions) { o.ExpectController = newKey(t).Public().DeviceID() }, ErrForeign},
		// The target's clock is behind: the relay's clock decides.
		{"expired at the relay", expired, func(o *DeliverOptions) { o.Now = past }, ErrExpired},
		{"relay unreachable", fresh, func(o *DeliverOptions) { o.RelayURL = "ws://" + testenv.Addr(testenv.FreePort(t)) }, ErrRelay},
	}
	for _, tc := range tests {
		d := newDevice(t)
		o := DeliverOptions{Signer: d.key, Commit: d.book.record}
		if tc.opts != nil {
			tc.opts(&o)
		}
		if _, err := Deliver(ctx, tc.tok, o); !errors.Is(err, tc.want) {
			t.Errorf("%s: Deliver = %v, want %v", tc.name, err, tc.want)
		}
		if len(d.book.list()) != 0 {
			t.Errorf("%s: the target recorded the controller", tc.name)
		}
	}
	// The relay refused the expired token without spending anything, and
	// the pinned controller is accepted.
	d := newDevice(t)
	if _, err := Deliver(ctx, fresh, DeliverOptions{Signer: d.key, Commit: d.book.record, ExpectController: ctlKey.Public().DeviceID()}); err != nil {
		t.Fatalf("pinned controller: %v", err)
	}
	// The controller itself cannot deliver its own token.
	if _, err := Deliver(ctx, issue(t, ctlKey, IssueOptions{RelayURL: r.URL}), DeliverOptions{Signer: ctlKey, Commit: d.book.record}); err == nil {
		t.Fatal("the controller delivered its own token")
	}

	// Controller side: a foreign token is rejected, an expired one
	// reported, and the valid one still collected.
	foreign := issue(t, newKey(t), IssueOptions{RelayURL: r.URL})
	var rejected []error
	b := &book[Target]{}
	res, err := Collect(ctx, CollectOptions{Controller: ctlKey.Public(), Tokens: []*Token{foreign, expired, fresh},
		OnTarget: b.record, OnReject: func(_ *Token, err error) { rejected = append(rejected, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0].Err, ErrForeign) || res.Rejected[0].Token != foreign ||
		len(rejected) != 1 || len(res.Expired) != 1 || res.Expired[0] != expired || len(b.list()) != 1 {
		t.Fatalf("collect: %+v (rejected %v)", res, rejected)
	}
}

// TestForgedDeliveries: deliveries that do not open with the token's
// secret, or whose signature does not verify, are rejected as tampered;
// the token stays pending and the real delivery still gets through.
func TestForgedDeliveries(t *testing.T) {
	r := relaytest.StartInstance(t, relaytest.Memory(t), relaytest.Config())
	ctx := tctx(t)
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: r.URL})
	other := issue(t, ctlKey, IssueOptions{RelayURL: r.URL})
	_, addr, _ := tok.keys()
	targetKey := newKey(t)

	// Whoever learns the mailbox address (the relay, an observer of the
	// target's traffic) can put things in it, with IDs of its own.
	forged := map[string][]byte{}
	junk := make([]byte, 100)
	junk[0] = deliveryVersion
	forged["random bytes"] = junk
	sealedForOther, err := sealDelivery(other, targetKey, "x")
	if err != nil {
		t.Fatal(err)
	}
	forged["sealed with another token's secret"] = sealedForOther
	// A holder of the secret that signs for a key it does not hold.
	_, _, sealKey := tok.keys()
	liar := identity{key: newKey(t).Public().Bytes(), name: "liar"}
	liar.sig, _ = signDigest(targetKey, targetKey.Public(), identityDigest(tok.digest(), targetKey.Public().Bytes(), "liar"))
	nonce := make([]byte, nonceLen)
	forged["signature by another key"] = newGCM(sealKey).Seal(append([]byte{deliveryVersion}, nonce...), nonce, liar.marshal(), aad(tok, addr[:]))
	forged["identity of the controller"] = func() []byte {
		self := identity{key: ctlKey.Public().Bytes(), name: "me"}
		self.sig, _ = signDigest(ctlKey, ctlKey.Public(), identityDigest(tok.digest(), self.key, "me"))
		return newGCM(sealKey).Seal(append([]byte{deliveryVersion}, nonce...), nonce, self.marshal(), aad(tok, addr[:]))
	}()
	for name, sealed := range forged {
		c, err := client.Dial(ctx, r.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := make([]byte, idLen)
		copy(id, name)
		if err := c.Deliver(ctx, id, tok.expires, addr[:], sealed); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.Close()
	}
	res, targets, err := collect(ctx, ctlKey, "", false, tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets.list()) != 0 || len(res.Rejected) != len(forged) || len(res.Pending) != 1 {
		t.Fatalf("forged deliveries: %+v", res)
	}
	for _, rj := range res.Rejected {
		if !errors.Is(rj.Err, ErrTampered) {
			t.Errorf("rejection %v, want ErrTampered", rj.Err)
		}
	}
	if _, err := Deliver(ctx, tok, DeliverOptions{Signer: targetKey, Commit: (&book[Controller]{}).record}); err != nil {
		t.Fatal(err)
	}
	if _, targets, err = collect(ctx, ctlKey, "", false, tok); err != nil || len(targets.list()) != 1 ||
		!targets.list()[0].PublicKey.Equal(targetKey.Public()) {
		t.Fatalf("the real delivery after the forged ones: %v, %v", targets.list(), err)
	}
}

// TestRedisDownAndBack: with Redis stopped, delivering and collecting fail
// with ErrRelay and the relay's "unavailable" message, /health says so,
// and both work again once Redis is back.
func TestRedisDownAndBack(t *testing.T) {
	cl := relaytest.StartCluster(t, 2, relaytest.Config())
	ctx := tctx(t)
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: cl.Relays[0].URL})

	cl.Redis.Stop()
	d := newDevice(t)
	_, err := d.deliver(ctx, tok, "")
	if !errors.Is(err, ErrRelay) || !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "unavailable; retry later") {
		t.Fatalf("deliver with Redis down: %v", err)
	}
	if len(d.book.list()) != 0 {
		t.Fatal("the target recorded the controller although nothing was delivered")
	}
	if _, _, err := collect(ctx, ctlKey, cl.Relays[1].URL, false, tok); !errors.Is(err, ErrRelay) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("collect with Redis down: %v", err)
	}
	resp, err := http.Get("http://" + cl.Relays[1].Addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/health with Redis down: %s", resp.Status)
	}

	// A waiting controller keeps retrying and gets the delivery once
	// Redis is back.
	type out struct {
		got []Target
		err error
	}
	done := make(chan out, 1)
	var relayErrs atomic.Int32
	go func() {
		b := &book[Target]{}
		_, err := Collect(ctx, CollectOptions{Controller: ctlKey.Public(), Tokens: []*Token{tok}, Wait: true,
			RelayURL: cl.Relays[1].URL, OnTarget: b.record, RetryInterval: 100 * time.Millisecond,
			OnRelayError: func(string, error) { relayErrs.Add(1) }})
		done <- out{b.list(), err}
	}()
	testenv.Eventually(t, 10*time.Second, "the waiting controller reports the outage", func() bool { return relayErrs.Load() > 0 })
	cl.Redis.Restart()
	testenv.Eventually(t, 10*time.Second, "a delivery goes through again", func() bool {
		_, err := d.deliver(ctx, tok, "")
		return err == nil
	})
	select {
	case o := <-done:
		if o.err != nil || len(o.got) != 1 {
			t.Fatalf("waiting collect across the outage: %v, %v", o.got, o.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting controller never got the delivery")
	}
}

// TestRelayNeverLogsSecrets runs a provisioning through a relay that logs
// at debug level and looks for every secret in its logs.
func TestRelayNeverLogsSecrets(t *testing.T) {
	r := relaytest.StartInstance(t, relaytest.Memory(t), relaytest.Config())
	ctx := tctx(t)
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: r.URL})
	if _, err := newDevice(t).deliver(ctx, tok, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := collect(ctx, ctlKey, "", false, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := newDevice(t).deliver(ctx, tok, ""); !errors.Is(err, ErrUsed) {
		t.Fatal(err)
	}
	mk, addr, sk := tok.keys()
	logs := r.Logs.String()
	if !strings.Contains(logs, "delivery stored") || !strings.Contains(logs, "already used") {
		t.Fatalf("the relay did not log the provisioning:\n%s", logs)
	}
	for name, s := range map[string]string{
		"token":               tok.Encode(),
		"secret":              hex.EncodeToString(tok.secret[:]),
		"secret (base64url)":  base64.RawURLEncoding.EncodeToString(tok.secret[:])[:16],
		"mailbox key":         hex.EncodeToString(mk[:]),
		"mailbox key (b64)":   base64.StdEncoding.EncodeToString(mk[:])[:16],
		"mailbox address":     hex.EncodeToString(addr[:]),
		"seal key":            hex.EncodeToString(sk),
		"token ID":            hex.EncodeToString(tok.id[:]),
		"token ID (b64)":      tok.ID()[3:],
		"controller key":      base64.StdEncoding.EncodeToString(ctlKey.Public().Bytes())[:16],
		"controller deviceID": ctlKey.Public().DeviceID(),
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the relay logged the %s", name)
		}
	}
}

// TestCollectDeadline: a one-shot collect that runs out of time says so; a
// waiting one returns what it has with ctx's cause.
func TestCollectDeadline(t *testing.T) {
	// A TCP listener that never answers the WebSocket upgrade stands for
	// a relay that hangs.
	l, err := net.Listen("tcp", testenv.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctlKey := newKey(t)
	tok := issue(t, ctlKey, IssueOptions{RelayURL: "ws://" + l.Addr().String()})
	for _, wait := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		res, _, err := collect(ctx, ctlKey, "", wait, tok)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || len(res.Pending) != 1 {
			t.Errorf("wait %v: %+v, %v; want the token pending and DeadlineExceeded", wait, res, err)
		}
	}
}
