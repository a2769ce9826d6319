package provision_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/amesh-go/amesh/relay/provision"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// The controller issues a token and prints it for the deployment system;
// it keeps the text form to collect the delivery later.
func ExampleIssue() {
	controllerKey, _ := protocol.GeneratePrivateKey(nil) // the device key, from the keystore
	tok, err := provision.Issue(controllerKey, provision.IssueOptions{
		RelayURL:       "wss://relay.example.com",
		TTL:            time.Hour,
		ControllerName: "alice-laptop",
		TargetName:     "api-1",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Printf("%s=%s\n", provision.EnvToken, tok.Encode())
}

// The target reads the token from its environment, creates its device key
// and delivers its identity; it records the controller only once the relay
// has accepted the delivery.
func ExampleDeliver() {
	ctx := context.Background()
	tok, err := provision.Parse(os.Getenv(provision.EnvToken))
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // ErrMalformed or ErrTampered
		return
	}
	if err := tok.Check(time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, err) // ErrExpired: create nothing
		return
	}
	targetKey, _ := protocol.GeneratePrivateKey(nil) // a new device key, not yet saved
	_, err = provision.Deliver(ctx, tok, provision.DeliverOptions{
		Signer: targetKey,
		Commit: func(ctx context.Context, c provision.Controller) error {
			// Save the key and identity, and add c to the allow list
			// with role controller.
			return nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // ErrUsed, ErrExpired, ErrRelay…: discard the key
	}
}

// The controller collects the deliveries of its pending tokens, waiting up
// to ten minutes for the targets to start.
func ExampleCollect() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	controllerKey, _ := protocol.GeneratePrivateKey(nil)
	var pending []*provision.Token // parsed from the texts kept at issue time
	res, err := provision.Collect(ctx, provision.CollectOptions{
		Controller: controllerKey.Public(),
		Tokens:     pending,
		Wait:       true,
		OnTarget: func(ctx context.Context, t provision.Target) error {
			// Add t to the allow list with role target; forget t.Token.
			fmt.Println("enrolled", t.Name, t.DeviceID)
			return nil
		},
	})
	for _, rj := range res.Rejected {
		fmt.Println("refused:", rj.Err)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
