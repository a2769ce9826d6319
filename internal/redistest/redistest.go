// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and stops and restarts them on demand, for every package
// of the module.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
)

// Server is a redis-server started by a test.
type Server struct {
	t    testing.TB
	path string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts redis-server on a free loopback port, with no persistence,
// and stops it when the test ends. Without redis-server the test is
// skipped, or failed under CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	path := testenv.LookPath(t, "redis-server", "Debian package redis-server: apt-get install -y redis-server")
	s := &Server{t: t, path: path, port: testenv.FreePort(t)}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Addr returns host:port.
func (s *Server) Addr() string { return testenv.Addr(s.port) }

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Stop stops the server and waits for it to exit. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server (again) on the same port and waits until it
// answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	cmd := exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(s.Addr()); err == nil {
			return
		} else if time.Now().After(deadline) {
			s.t.Fatalf("redistest: redis-server on %s does not answer: %v\n%s", s.Addr(), err, out.String())
		}
		select {
		case <-s.done:
			s.t.Fatalf("redistest: redis-server exited:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping speaks just enough RESP to know the server is ready.
func ping(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
