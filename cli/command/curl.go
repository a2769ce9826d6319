package command

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/amesh-go/amesh/host/httpauth"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newCurl) }

type curlFlags struct {
	method        string
	headers       []string
	data          []string
	dataBinary    []string
	include       bool
	output        string
	fail          bool
	audienceBound bool
	insecure      bool
	cacert        string
	maxTime       time.Duration
}

func newCurl(g *globals) *cobra.Command {
	var f curlFlags
	cmd := &cobra.Command{
		Use:   "curl [flags] URL",
		Short: "Make one signed HTTP request with this device's key",
		Long: `Make one HTTP request signed with this device's key and print the response:
a way to try a service protected by amesh. The flags follow curl's.

With --audience-bound the request uses protocol version 2, which binds it to
the server's authority (host[:port]) so that it cannot be replayed to another
server.`,
		Example: `  amesh curl https://api.internal/health
  amesh curl -X POST -H 'Content-Type: application/json' -d '{"a":1}' https://api.internal/orders
  amesh curl --audience-bound --fail -i https://api.internal/orders`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("curl needs exactly one URL")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runCurl(cmd.Context(), g, &f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.method, "request", "X", "", "HTTP method (default GET, or POST with data)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "extra header 'Name: value' (repeatable)")
	fl.StringArrayVarP(&f.data, "data", "d", nil, "request body; @FILE reads a file, @- standard input (repeated values are joined with &)")
	fl.StringArrayVar(&f.dataBinary, "data-binary", nil, "request body, like --data")
	fl.BoolVarP(&f.include, "include", "i", false, "print the status line and response headers")
	fl.StringVarP(&f.output, "output", "o", "", "write the response body to FILE")
	fl.BoolVarP(&f.fail, "fail", "f", false, "exit 1 when the HTTP status is 400 or above")
	fl.BoolVar(&f.audienceBound, "audience-bound", false, "sign with protocol version 2, bound to the server's authority")
	fl.BoolVarP(&f.insecure, "insecure", "k", false, "do not verify the server's TLS certificate")
	fl.StringVar(&f.cacert, "cacert", "", "trust the CA certificates in this PEM file")
	fl.DurationVarP(&f.maxTime, "max-time", "m", 30*time.Second, "give up after this long")
	return cmd
}

func runCurl(ctx context.Context, g *globals, f *curlFlags, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("%q is not an http:// or https:// URL", rawURL)
	}
	body, hasBody, err := readCurlData(g.io.In, f)
	if err != nil {
		return err
	}
	method := f.method
	if method == "" {
		method = "GET"
		if hasBody {
			method = "POST"
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return usageErrorf("bad request: %v", err)
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return usageErrorf("header %q is not 'Name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if hasBody && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if req.Header.Get("Authorization") != "" {
		return usageErrorf("an Authorization header would replace the signature: remove -H 'Authorization: …'")
	}
	s, err := g.openState()
	if err != nil {
		return err
	}
	defer s.Close()
	version := protocol.Version1
	if f.audienceBound {
		version = protocol.Version2
		if _, err := protocol.Authority(u.Host, u.Scheme); err != nil {
			return usageErrorf("cannot bind to %q: %v", u.Host, err)
		}
	}
	client, err := curlClient(f, &httpauth.Transport{Signer: s.Key(), Version: version, MaxBodyBytes: -1})
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

	resp, err := client.Do(req)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failf(err, "no answer from %s within %v: raise --max-time or check the server", u.Redacted(), f.maxTime)
	}
	if err != nil {
		return errorf(err, "request to %s failed (signed with the %s key)", u.Redacted(), s.Key().Backend())
	}
	defer resp.Body.Close()
	return writeCurlResponse(g, f, resp)
}

// curlClient returns a client that signs with signer over a transport
// configured by the TLS flags.
func curlClient(f *curlFlags, signer *httpauth.Transport) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsConf := &tls.Config{InsecureSkipVerify: f.insecure} //nolint:gosec // the user asked for -k
	if f.cacert != "" {
		pem, err := os.ReadFile(f.cacert)
		if err != nil {
			return nil, usageErrorf("--cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--cacert: no PEM certificate in %s", f.cacert)
		}
		tlsConf.RootCAs = pool
	}
	tr.TLSClientConfig = tlsConf
	signer.Base = tr
	return &http.Client{
		Transport: signer,
		Timeout:   f.maxTime,
		// A redirect would need a new signature for the new target; show
		// it instead, as curl does without -L.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// readCurlData assembles the body from -d and --data-binary as curl does:
// several values are joined with "&", and -d drops carriage returns and
// newlines from what it reads from a file (--data-binary keeps every byte).
func readCurlData(stdin io.Reader, f *curlFlags) ([]byte, bool, error) {
	type part struct {
		v      string
		binary bool
	}
	var parts []part
	for _, d := range f.data {
		parts = append(parts, part{d, false})
	}
	for _, d := range f.dataBinary {
		parts = append(parts, part{d, true})
	}
	if len(parts) == 0 {
		return nil, false, nil
	}
	var body []byte
	for i, p := range parts {
		if i > 0 {
			body = append(body, '&')
		}
		if !strings.HasPrefix(p.v, "@") {
			body = append(body, p.v...)
			continue
		}
		var b []byte
		var err error
		if p.v == "@-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(p.v[1:])
		}
		if err != nil {
			return nil, false, usageErrorf("cannot read the body: %v", err)
		}
		if !p.binary {
			b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
		}
		body = append(body, b...)
	}
	return body, true, nil
}

func writeCurlResponse(g *globals, f *curlFlags, resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return errorf(err, "reading the response")
	}
	out := g.out()
	if out.json {
		headers := map[string]string{}
		for k, v := range resp.Header {
			headers[k] = strings.Join(v, ", ")
		}
		if err := out.emitJSON(struct {
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body"`
		}{resp.StatusCode, headers, string(body)}); err != nil {
			return err
		}
	} else {
		if f.include {
			out.printf("%s %s\n", resp.Proto, resp.Status)
			keys := make([]string, 0, len(resp.Header))
			for k := range resp.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, v := range resp.Header[k] {
					out.printf("%s: %s\n", k, v)
				}
			}
			out.printf("\n")
		}
		if f.output != "" {
			if err := os.WriteFile(f.output, body, 0o644); err != nil {
				return errorf(err, "writing %s", f.output)
			}
		} else if _, err := g.io.Out.Write(body); err != nil {
			return err
		}
	}
	if f.fail && resp.StatusCode >= 400 {
		return failf(nil, "the server answered %s", resp.Status)
	}
	return nil
}
