package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"
)

// TestAddBodyDigest holds AddBodyDigest to AddBody: same canonical string,
// same limit, same verdicts.
func TestAddBodyDigest(t *testing.T) {
	k, err := ParsePrivateKey(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	list, _ := NewStaticAllowList(&Device{Role: RoleController, Key: k.Public()})
	v, err := NewVerifier(Config{AllowList: list, Nonces: NewMemoryNonceStore(0), MaxBodyBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	for _, body := range [][]byte{nil, []byte("0123456789"), []byte("0123456789a")} {
		s, err := SignRequest(k, SignParams{Method: "POST", Target: "/p?b&a", Body: body, Time: now})
		if err != nil {
			t.Fatal(err)
		}
		req := &Request{Method: "POST", Target: "/p?b&a", Authorization: []string{s.Authorization}}
		c1, _ := v.Begin(req, now)
		c2, _ := v.Begin(req, now)
		r1 := c1.AddBody(body)
		r2 := c2.AddBodyDigest(int64(len(body)), sha256.Sum256(body))
		if r1.Code != r2.Code || r1.Reason != r2.Reason || !bytes.Equal(c1.Message(), c2.Message()) {
			t.Fatalf("body %q: AddBody %s %q, AddBodyDigest %s %q", body, r1.Reason, c1.Message(), r2.Reason, c2.Message())
		}
		if r1.OK() {
			if res := c2.Finish(context.Background(), now, c2.VerifySignature()); !res.OK() {
				t.Fatalf("body %q: %s", body, res.Reason)
			}
		}
	}
	c, _ := v.Begin(&Request{Method: "GET", Target: "/", Authorization: []string{mustSign(t, k, now)}}, now)
	if r := c.AddBodyDigest(-1, [32]byte{}); r.Code != CodePayloadTooLarge {
		t.Fatalf("negative size: %s", r.Code)
	}
}

func mustSign(t *testing.T, k Signer, now time.Time) string {
	s, err := SignRequest(k, SignParams{Method: "GET", Target: "/", Time: now})
	if err != nil {
		t.Fatal(err)
	}
	return s.Authorization
}
