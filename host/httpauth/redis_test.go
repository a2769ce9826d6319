package httpauth

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/amesh-go/amesh/host/redisnonce"
	"github.com/amesh-go/amesh/internal/redistest"
)

// TestSharedRedis runs two middleware instances, one per engine, on two
// servers that share a real Redis: 64 concurrent sends of one signed
// request across both get exactly one 200. With Redis stopped a new
// request gets 503; after a restart, 200 again with no intervention.
func TestSharedRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctl := testKey(t, 1)
	var urls []string
	for _, eng := range []Engine{Native, Wasm} {
		c := redisnonce.NewClient(nil, srv.Addr())
		t.Cleanup(func() { c.Close() })
		m, _ := newMiddleware(t, Options{AllowList: Static(list(t, ctl)), Engine: eng,
			Nonces: redisnonce.New(c, redisnonce.Options{Timeout: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})})
		urls = append(urls, serve(t, m.Handler(http.HandlerFunc(echo))).URL)
	}

	// One signed request, replayed 64 times at once across both servers.
	signed := signRequest(t, ctl, "POST", urls[0]+"/transfer", []byte(`{"amount":1}`))
	auth := signed.Header.Get("Authorization")
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", urls[i%2]+"/transfer", stringsReader(`{"amount":1}`))
			req.Header.Set("Authorization", auth)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if counts[200] != 1 || counts[401] != 63 {
		t.Fatalf("64 replays across two servers: %v, want one 200 and 63 401", counts)
	}

	client := NewClient(ctl)
	srv.Stop()
	for _, u := range urls {
		if status, body := do(t, client, "GET", u+"/during-outage", nil); status != 503 || string(body) != `{"error":"service_unavailable"}` {
			t.Fatalf("Redis down: %d %s", status, body)
		}
	}
	srv.Restart()
	for _, u := range urls {
		deadline := time.Now().Add(5 * time.Second)
		for {
			status, _ := do(t, client, "GET", u+"/after-restart", nil)
			if status == 200 {
				break
			}
			if status != 503 || time.Now().After(deadline) {
				t.Fatalf("after Redis restart: %d", status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
