//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/testenv"
	"github.com/amesh-go/amesh/relay/client"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// TestMain removes the binary built for the tests and benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// relayBinary builds amesh-relay once per test process.
func relayBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		goBin := testenv.LookPath(tb, "go", "install Go 1.26")
		binDir, buildErr = os.MkdirTemp("", "amesh-relay-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "amesh-relay")
		out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		tb.Fatalf("build amesh-relay: %v", buildErr)
	}
	return binPath
}

// startBinary runs the amesh-relay binary on a free loopback port and waits
// until it answers /health.
func startBinary(tb testing.TB, args ...string) (*exec.Cmd, string, *testenv.Logs) {
	tb.Helper()
	addr := testenv.Addr(testenv.FreePort(tb))
	cmd := exec.Command(relayBinary(tb), append([]string{"--listen", addr}, args...)...)
	logs := &testenv.Logs{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			return cmd, addr, logs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("amesh-relay did not come up: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The real binary drains on SIGTERM: a waiting target is told, and the
// process exits 0.
func TestBinaryGracefulSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmd, addr, logs := startBinary(t, "--drain-timeout", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := c.WaitPeer(ctx); !errors.Is(err, client.ErrShutdown) {
		t.Fatalf("waiting target during shutdown: %v, want ErrShutdown", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs)
	}
	var sawListening, sawShutdown bool
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		sawListening = sawListening || strings.Contains(sc.Text(), `"msg":"amesh-relay listening"`)
		sawShutdown = sawShutdown || strings.Contains(sc.Text(), `"msg":"shut down"`)
	}
	if !sawListening || !sawShutdown {
		t.Fatalf("structured logs lack startup or shutdown:\n%s", logs)
	}
}
