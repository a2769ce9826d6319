// Package testenv finds the external programs tests need (redis-server,
// swtpm, node, chromium…) and free loopback ports.
//
// Outside CI a missing program skips the test with a message naming it.
// Under CI=true nothing is skipped: a missing program fails the test, so a
// CI run can never pass by testing less.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// LookPath returns the path of program, or skips (fails under CI) the test
// with a message that names it and how to get it.
func LookPath(t testing.TB, program, hint string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	Missing(t, program+" not found in PATH ("+hint+")")
	return ""
}

// Missing skips the test, or fails it under CI, for a missing dependency.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("missing dependency under CI=true: %s", what)
	}
	t.Skipf("missing dependency: %s", what)
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr formats a loopback address for port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
