package client

import (
	"context"
	"fmt"
	"time"

	"github.com/amesh-go/amesh/relay/wire"
)

// Deliver stores a sealed provisioning delivery in the mailbox at address
// mailbox, spending the bootstrap token's one-time ID, and returns once the
// relay has stored it. A used or expired token is ErrTokenUsed or
// ErrTokenExpired. The relay closes the connection afterwards.
func (c *Conn) Deliver(ctx context.Context, tokenID []byte, expires time.Time, mailbox, sealed []byte) error {
	f := wire.Frame{Type: wire.Deliver, TokenID: tokenID, Expires: expires, Mailbox: mailbox, Payload: sealed}
	if err := c.send(ctx, f); err != nil {
		return fmt.Errorf("relay: deliver: %w", err)
	}
	r, err := c.next(ctx)
	if err != nil {
		return fmt.Errorf("relay: deliver: %w", err)
	}
	if r.Type != wire.Accepted {
		return fmt.Errorf("relay: deliver: %w: %v", ErrProtocol, r.Type)
	}
	return nil
}

// Mail is one delivery taken from a mailbox by Collect.
type Mail struct {
	// Mailbox is the address of the mailbox it was stored in.
	Mailbox [wire.MailboxLen]byte
	// Sealed is the delivery as the target sealed it.
	Sealed []byte
}

// Collect asks the relay for the deliveries stored in the mailboxes of keys;
// read them with NextMail. With wait, the relay keeps the connection open
// and sends later deliveries as they arrive.
func (c *Conn) Collect(ctx context.Context, keys [][]byte, wait bool) error {
	if err := c.send(ctx, wire.Frame{Type: wire.Collect, Keys: keys, Wait: wait}); err != nil {
		return fmt.Errorf("relay: collect: %w", err)
	}
	return nil
}

// NextMail returns the next delivery after Collect. It returns batchEnd true
// (and no mail) once every delivery stored so far has been sent: the
// caller then acknowledges what it handled with Ack.
func (c *Conn) NextMail(ctx context.Context) (m Mail, batchEnd bool, err error) {
	f, err := c.next(ctx)
	if err != nil {
		return Mail{}, false, fmt.Errorf("relay: collect: %w", err)
	}
	switch f.Type {
	case wire.Batch:
		return Mail{}, true, nil
	case wire.Mail:
		copy(m.Mailbox[:], f.Mailbox)
		m.Sealed = append([]byte(nil), f.Payload...)
		return m, false, nil
	}
	return Mail{}, false, fmt.Errorf("relay: collect: %w: %v", ErrProtocol, f.Type)
}

// Ack tells the relay that the first n deliveries of this connection are
// handled, so that it forgets them. Deliveries that are not acknowledged
// when the connection ends go back into their mailboxes.
func (c *Conn) Ack(ctx context.Context, n uint32) error {
	if err := c.send(ctx, wire.Frame{Type: wire.Ack, Count: n}); err != nil {
		return fmt.Errorf("relay: ack: %w", err)
	}
	return nil
}
