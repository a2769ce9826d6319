//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// benchRelayArgs lift the per-address limits (every benchmark client comes
// from 127.0.0.1) and the timers that would end idle connections.
var benchRelayArgs = []string{
	"--max-conns", "30000", "--max-conns-per-ip", "-1",
	"--rate-create", "off", "--rate-join-fail", "off", "--rate-join-ok", "off",
	"--hello-timeout", "1h", "--rendezvous", "1h", "--ping-interval", "30s", "--pong-wait", "90s",
	"--log-level", "warn",
}

// raiseFileLimit lifts this process's open-file limit to its hard limit;
// the relay started from it inherits the limit.
func raiseFileLimit(b *testing.B, need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			b.Fatal(err)
		}
	}
	if uint64(lim.Cur) < need {
		b.Skipf("open-file limit %d is below the %d this benchmark needs", lim.Cur, need)
	}
}

// relayMemory reads the relay's Go heap and stack in use from /metrics,
// and its resident set size from /proc where there is one.
func relayMemory(b *testing.B, addr string, pid int) (goBytes, rss float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), " ")
		if name == "amesh_relay_go_heap_inuse_bytes" || name == "amesh_relay_go_stack_inuse_bytes" {
			f, _ := strconv.ParseFloat(v, 64)
			goBytes += f
		}
	}
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 64)
				rss = f * 1024
			}
		}
	}
	return goBytes, rss
}

const idleConns = 10_000

// BenchmarkRelayIdleConnections holds 10,000 concurrent WebSocket
// connections, each a target waiting in its own room, on one amesh-relay
// process, and reports the relay's memory per connection. The timed
// operation is a /health request answered under that load. (With b.Loop
// the function runs once, so the 10,000 connections are set up once.)
func BenchmarkRelayIdleConnections(b *testing.B) {
	raiseFileLimit(b, idleConns+1000)
	cmd, addr, _ := startBinary(b, benchRelayArgs...)
	pid := cmd.Process.Pid
	// The first connection pays for one-time allocations.
	warm := dialCreate(b, addr)
	defer warm.Close()
	goBefore, rssBefore := relayMemory(b, addr, pid)
	start := time.Now()
	conns := make([]*client.Conn, idleConns)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= idleConns {
					return
				}
				conns[i] = dialCreate(b, addr)
			}
		})
	}
	wg.Wait()
	setup := time.Since(start)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	// Let the relay's garbage collector clear what the setup left.
	time.Sleep(2 * time.Second)
	goAfter, rssAfter := relayMemory(b, addr, pid)

	for b.Loop() {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	goPer := (goAfter - goBefore) / idleConns
	// The resident set is what an operator sizes a machine by; the Go heap
	// and stacks stand in where /proc is missing.
	per := (rssAfter - rssBefore) / idleConns
	if rssBefore <= 0 {
		per = goPer
	}
	b.ReportMetric(per, "value:relay_bytes_per_conn")
	b.ReportMetric(goPer, "value:relay_go_bytes_per_conn")
	b.ReportMetric(idleConns, "conns")
	b.ReportMetric(setup.Seconds(), "setup_s")
}

func dialCreate(b *testing.B, addr string) *client.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.Create(ctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkRelayPairings runs complete pairings (Noise handshake,
// commitment, identity signatures, confirmation) between library peers
// through one amesh-relay process, many at once, and reports pairings per
// second. Both devices of every pairing run in this process, on the same
// two cores as the relay.
func BenchmarkRelayPairings(b *testing.B) {
	raiseFileLimit(b, 4096)
	_, addr, _ := startBinary(b, benchRelayArgs...)
	url := "ws://" + addr
	keys := make(chan [2]*protocol.PrivateKey, 64)
	for range cap(keys) {
		t, _ := protocol.GeneratePrivateKey(nil)
		c, _ := protocol.GeneratePrivateKey(nil)
		keys <- [2]*protocol.PrivateKey{t, c}
	}
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		k := <-keys
		for pb.Next() {
			if err := pairOnce(url, k[0], k[1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "value:relay_pairings_per_s")
}

func pairOnce(url string, tkey, ckey *protocol.PrivateKey) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	codes, shown := make(chan string, 1), make(chan string, 1)
	errs := make(chan error, 1)
	nop := func(context.Context, pairing.Peer) error { return nil }
	go func() {
		_, err := pairing.Listen(ctx, pairing.ListenOptions{
			Relay: pairing.RelayOptions{URL: url}, Signer: tkey, Name: "target",
			OnCode: func(c string, _ time.Time) { codes <- c },
			Prompt: func(ctx context.Context, _ pairing.Peer) (string, error) {
				select {
				case c := <-shown:
					return c, nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			},
			Commit: nop,
		})
		errs <- err
		close(codes)
	}()
	code, ok := <-codes
	if !ok {
		return fmt.Errorf("listen: %w", <-errs)
	}
	_, err := pairing.Invite(ctx, pairing.InviteOptions{
		Relay: pairing.RelayOptions{URL: url}, Code: code, Signer: ckey, Name: "controller",
		ShowCode: func(c string, _ pairing.Peer) { shown <- c },
		Commit:   nop,
	})
	if lerr := <-errs; lerr != nil {
		return fmt.Errorf("listen: %w", lerr)
	}
	return err
}
