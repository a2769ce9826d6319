// Command amesh-js-interop is the Go side of the JS package's interop
// tests (js/test/interop.test.js): it verifies requests that JavaScript
// signed, with the native protocol core, and signs requests with the Go
// client (host/httpauth) for a JavaScript verifier to check. It reads one
// JSON document on standard input and writes one on standard output.
//
//	amesh-js-interop verify   {"allow_list":[...],"now":0,"requests":[...]}
//	amesh-js-interop send     {"private_hex":"...","version":"1","requests":[...]}
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/amesh-go/amesh/host/httpauth"
	"github.com/amesh-go/amesh/wasm/protocol"
)

type allowEntry struct {
	PublicKey string `json:"public_key"`
	Role      string `json:"role"`
	Name      string `json:"name"`
}

type verifyInput struct {
	AllowList []allowEntry `json:"allow_list"`
	// Now is the verifier's clock in Unix seconds; zero means the real clock.
	Now      int64 `json:"now"`
	Requests []struct {
		Method        string   `json:"method"`
		Target        string   `json:"target"`
		Host          string   `json:"host"`
		Scheme        string   `json:"scheme"`
		Authorization []string `json:"authorization"`
		BodyB64       string   `json:"body_b64"`
	} `json:"requests"`
}

type verdict struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Device string `json:"device,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func verify(in []byte) (any, error) {
	var v verifyInput
	if err := json.Unmarshal(in, &v); err != nil {
		return nil, err
	}
	var devs []*protocol.Device
	for _, e := range v.AllowList {
		k, err := protocol.DecodePublicKey(e.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("allow list key %q: %w", e.PublicKey, err)
		}
		devs = append(devs, &protocol.Device{Name: e.Name, Role: e.Role, Key: k})
	}
	list, err := protocol.NewStaticAllowList(devs...)
	if err != nil {
		return nil, err
	}
	// One store for the whole input, so that a replay among the requests
	// is seen as one.
	ver, err := protocol.NewVerifier(protocol.Config{AllowList: list, Nonces: protocol.NewMemoryNonceStore(0)})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if v.Now != 0 {
		now = time.Unix(v.Now, 0)
	}
	out := []verdict{}
	for _, r := range v.Requests {
		body, err := base64.StdEncoding.DecodeString(r.BodyB64)
		if err != nil {
			return nil, fmt.Errorf("body_b64: %w", err)
		}
		res := ver.Verify(context.Background(), &protocol.Request{Method: r.Method, Target: r.Target, Host: r.Host,
			Scheme: r.Scheme, Authorization: r.Authorization, Body: body}, now)
		d := verdict{Status: res.Status(), Error: string(res.Code), Reason: string(res.Reason)}
		if res.Device != nil {
			d.Device = res.Device.ID
		}
		if res.Err != nil {
			d.Detail = res.Err.Error()
		}
		out = append(out, d)
	}
	return out, nil
}

type sendInput struct {
	PrivateHex string `json:"private_hex"`
	Version    string `json:"version"`
	Requests   []struct {
		Method      string `json:"method"`
		URL         string `json:"url"`
		BodyB64     string `json:"body_b64"`
		ContentType string `json:"content_type"`
	} `json:"requests"`
}

type response struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// send signs each request with the Go client, httpauth.Transport, and
// reports the answers.
func send(in []byte) (any, error) {
	var s sendInput
	if err := json.Unmarshal(in, &s); err != nil {
		return nil, err
	}
	scalar, err := hex.DecodeString(s.PrivateHex)
	if err != nil {
		return nil, fmt.Errorf("private_hex: %w", err)
	}
	key, err := protocol.ParsePrivateKey(scalar)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &httpauth.Transport{Signer: key, Version: s.Version}}
	out := []response{}
	for _, r := range s.Requests {
		body, err := base64.StdEncoding.DecodeString(r.BodyB64)
		if err != nil {
			return nil, fmt.Errorf("body_b64: %w", err)
		}
		var rd io.Reader
		if len(body) > 0 {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(r.Method, r.URL, rd)
		if err != nil {
			return nil, err
		}
		if r.ContentType != "" {
			req.Header.Set("Content-Type", r.ContentType)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, response{Status: resp.StatusCode, Body: string(b)})
	}
	return out, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: amesh-js-interop verify|send < input.json")
		os.Exit(2)
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "amesh-js-interop:", err)
		os.Exit(1)
	}
	var out any
	switch os.Args[1] {
	case "verify":
		out, err = verify(in)
	case "send":
		out, err = send(in)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "amesh-js-interop:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "amesh-js-interop:", err)
		os.Exit(1)
	}
}
