// Command amesh manages this device's amesh identity: create it, pair with
// other devices, list and revoke trusted devices, and make signed requests.
//
//	go install github.com/amesh-go/amesh/cli/amesh@latest
package main

import (
	"os"

	"github.com/amesh-go/amesh/cli/command"
)

func main() {
	os.Exit(command.Main(os.Args[1:], command.StdIO()))
}
