package pairing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/relaytest"
	"github.com/amesh-go/amesh/relay/server"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// startRelay runs a real amesh-relay on a loopback port and returns its URL.
func startRelay(t *testing.T, cfg server.Config) string {
	t.Helper()
	return relaytest.Start(t, cfg, nil)
}

func newKey(t testing.TB) *protocol.PrivateKey {
	t.Helper()
	k, err := protocol.GeneratePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// book records what a device's Commit callback was asked to store, the way
// the CLI would write its allow list.
type book struct {
	mu    sync.Mutex
	peers []Peer
	seq   []int // global order of commits across books
	fail  error // returned by Commit when set
}

var commitSeq struct {
	sync.Mutex
	n int
}

func (b *book) commit(_ context.Context, p Peer) error {
	if b.fail != nil {
		return b.fail
	}
	commitSeq.Lock()
	commitSeq.n++
	n := commitSeq.n
	commitSeq.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peers = append(b.peers, p)
	b.seq = append(b.seq, n)
	return nil
}

func (b *book) list() []Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Peer(nil), b.peers...)
}

// device is one side of a pairing in a test: its key, its book, and what
// its screen showed.
type device struct {
	key  *protocol.PrivateKey
	name string
	book *book
}

func newDevice(t *testing.T, name string) *device {
	return &device{key: newKey(t), name: name, book: &book{}}
}

// operator stands for the person who reads the controller's screen and
// types the code into the target.
type operator struct {
	shown chan string // codes the controller showed
	typed func(shown string) string
}

func newOperator() *operator {
	return &operator{shown: make(chan string, 1), typed: func(s string) string { return s }}
}

func (o *operator) show(code string, _ Peer) { o.shown <- code }

func (o *operator) prompt(ctx context.Context, _ Peer) (string, error) {
	select {
	case c := <-o.shown:
		return o.typed(c), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

type outcome struct {
	peer Peer
	err  error
}

// pairRun runs Listen and Invite concurrently against relayURL. invite is
// called with the pairing code once the target shows it.
type pairRun struct {
	target, controller *device
	op                 *operator
	timeout            time.Duration
	listenOpts         func(*ListenOptions)
	inviteOpts         func(*InviteOptions)
	inviteCtx          context.Context
}

func (r *pairRun) run(t *testing.T, relayURL string) (tgt, ctl outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r.op == nil {
		r.op = newOperator()
	}
	if r.timeout == 0 {
		r.timeout = 5 * time.Second
	}
	codes := make(chan string, 1)
	lo := ListenOptions{
		Relay:  RelayOptions{URL: relayURL},
		Signer: r.target.key, Name: r.target.name,
		OnCode:           func(code string, _ time.Time) { codes <- code },
		Prompt:           r.op.prompt,
		Commit:           r.target.book.commit,
		HandshakeTimeout: r.timeout,
	}
	if r.listenOpts != nil {
		r.listenOpts(&lo)
	}
	tch := make(chan outcome, 1)
	go func() {
		p, err := Listen(ctx, lo)
		tch <- outcome{p, err}
		close(codes)
	}()
	code, ok := <-codes
	if !ok {
		return <-tch, outcome{err: errors.New("target never showed a code")}
	}
	io := InviteOptions{
		Relay: RelayOptions{URL: relayURL}, Code: code,
		Signer: r.controller.key, Name: r.controller.name,
		ShowCode:         r.op.show,
		Commit:           r.controller.book.commit,
		HandshakeTimeout: r.timeout,
	}
	if r.inviteOpts != nil {
		r.inviteOpts(&io)
	}
	ictx := ctx
	if r.inviteCtx != nil {
		ictx = r.inviteCtx
	}
	p, err := Invite(ictx, io)
	ctl = outcome{p, err}
	tgt = <-tch
	return tgt, ctl
}

// noOneSidedTrust is the invariant of every run: if the target trusts the
// controller, the controller knows the target.
func noOneSidedTrust(t *testing.T, target, controller *device) {
	t.Helper()
	if len(target.book.list()) > 0 && len(controller.book.list()) == 0 {
		t.Fatal("the target recorded the controller, but the controller did not record the target")
	}
	for _, p := range target.book.list() {
		if !p.PublicKey.Equal(controller.key.Public()) {
			t.Fatalf("the target recorded a key that is not the controller's: %s", p.DeviceID)
		}
	}
}
