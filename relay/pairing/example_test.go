package pairing_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// The target side of `amesh listen`: show the pairing code, ask for the
// verification code, and record the controller only when asked to.
func ExampleListen() {
	key, _ := protocol.GeneratePrivateKey(nil) // the device key, from the keystore
	in := bufio.NewScanner(os.Stdin)
	peer, err := pairing.Listen(context.Background(), pairing.ListenOptions{
		Relay:  pairing.RelayOptions{URL: "wss://relay.example"},
		Signer: key,
		Name:   "web-01",
		OnCode: func(code string, expires time.Time) {
			fmt.Printf("Pairing code: %s (valid until %s)\n", code, expires.Format(time.Kitchen))
		},
		Prompt: func(ctx context.Context, c pairing.Peer) (string, error) {
			fmt.Printf("%s (%s) wants to control this device.\nVerification code shown on it: ", c.Name, c.DeviceID)
			// A real prompt also returns when ctx ends.
			in.Scan()
			return in.Text(), nil
		},
		Commit: func(ctx context.Context, c pairing.Peer) error {
			// Write the allow-list entry: c.PublicKey, c.DeviceID, c.Name,
			// role c.Role ("controller").
			return nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // and exit non-zero: nothing was recorded
		return
	}
	fmt.Println("Paired with", peer.Name)
}

// The controller side of `amesh invite CODE`.
func ExampleInvite() {
	key, _ := protocol.GeneratePrivateKey(nil)
	peer, err := pairing.Invite(context.Background(), pairing.InviteOptions{
		Relay:  pairing.RelayOptions{URL: "wss://relay.example"},
		Code:   "123456",
		Signer: key,
		Name:   "alice's laptop",
		ShowCode: func(code string, t pairing.Peer) {
			fmt.Printf("Enter %s %s on %s (%s)\n", code[:3], code[3:], t.Name, t.DeviceID)
		},
		Commit: func(ctx context.Context, t pairing.Peer) error {
			// Record the target with role t.Role ("target").
			return nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println("Paired with", peer.Name)
}
