package wasmhost

import (
	"context"
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	e, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compile %v (total %v)", e.CompileTime, time.Since(start))
	start = time.Now()
	inst, err := e.NewInstance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("instance %v", time.Since(start))
	k, _ := protocol.GeneratePrivateKey(nil)
	list, _ := protocol.NewStaticAllowList(&protocol.Device{Role: protocol.RoleController, Key: k.Public(), Name: "c"})
	if err := inst.Configure(ctx, &Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(0)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := protocol.SignRequest(k, protocol.SignParams{Method: "POST", Target: "/x?b=1&a=2", Body: []byte("hi"), Time: now})
	if err != nil {
		t.Fatal(err)
	}
	req := &protocol.Request{Method: "POST", Target: "/x?b=1&a=2", Host: "h", Authorization: []string{s.Authorization}, Body: []byte("hi")}
	res := inst.Verify(ctx, req, now)
	t.Logf("%+v", res)
	res = inst.Verify(ctx, req, now)
	t.Logf("%+v", res)
	for range 3 {
		s, _ := protocol.SignRequest(k, protocol.SignParams{Method: "POST", Target: "/x?b=1&a=2", Body: []byte("hi"), Time: now})
		req.Authorization = []string{s.Authorization}
		st := time.Now()
		res = inst.Verify(ctx, req, now)
		t.Logf("%v %v", res.Code, time.Since(st))
	}
	signed, err := inst.Sign(ctx, k, protocol.SignParams{Method: "GET", Target: "/y", Time: now})
	t.Logf("%v %v", signed, err)
}
