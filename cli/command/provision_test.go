package command

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/amesh-go/amesh/relay/provision"
)

// TestProvisioningThroughRelay: the controller issues a token, a server
// enrols with it from the environment, the controller collects it; then the
// controller's requests are accepted by the server, and the token cannot be
// used again.
func TestProvisioningThroughRelay(t *testing.T) {
	c := newCLIEnv(t)
	relay := startRelay(t)
	work := t.TempDir()
	controller, target := filepath.Join(work, "controller"), filepath.Join(work, "target")
	c.run(0, "amesh", "--dir", controller, "init", "--name", "laptop", "--backend", "encrypted-file")
	controllerID := strings.TrimSpace(c.run(0, "amesh", "--dir", controller, "whoami"))

	out := c.run(0, "amesh", "--dir", controller, "provision", "--name", "api-1", "--relay", relay, "--ttl", "10m")
	m := regexp.MustCompile(`(?m)^AMESH_BOOTSTRAP_TOKEN=(amesh-bt1\.[A-Za-z0-9_-]+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("provision printed %q", out)
	}
	token := m[1]
	if info, err := os.Stat(filepath.Join(controller, "provisions.json")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("pending tokens file: %v %v", info, err)
	}

	// The server enrols from its environment, with the name the controller chose.
	env := c.withEnv(provision.EnvToken + "=" + token)
	out = env.run(0, "amesh", "--dir", target, "init", "--backend", "encrypted-file")
	if !strings.Contains(out, "Friendly Name:  api-1") || !strings.Contains(out, "Controller:     "+controllerID+" (laptop), trusted") {
		t.Fatalf("init --token printed:\n%s", out)
	}
	targetID := strings.TrimSpace(c.run(0, "amesh", "--dir", target, "whoami"))

	out = c.run(0, "amesh", "--dir", controller, "provision", "collect")
	if !strings.Contains(out, "Recorded "+targetID+" (api-1) as a target") {
		t.Fatalf("collect printed:\n%s", out)
	}
	if l := c.trusted(controller); len(l.Trusted) != 1 || l.Trusted[0].Role != "target" || l.Trusted[0].DeviceID != targetID {
		t.Fatalf("controller records %+v", l.Trusted)
	}
	if l := c.trusted(target); len(l.Trusted) != 1 || l.Trusted[0].Role != "controller" || l.Trusted[0].DeviceID != controllerID {
		t.Fatalf("target trusts %+v", l.Trusted)
	}
	if out := c.run(0, "amesh", "--dir", controller, "provision", "collect"); !strings.Contains(out, "No tokens are waiting") {
		t.Fatalf("second collect: %s", out)
	}

	// The enrolled server accepts the controller.
	urlFile := filepath.Join(work, "url")
	srv := c.cmd("amesh-testserver", target, urlFile)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if out := c.run(0, "amesh", "--dir", controller, "curl", "--fail", waitFile(t, urlFile)+"/x"); !strings.Contains(out, "hello laptop") {
		t.Fatalf("request: %s", out)
	}

	// Used, tampered and garbage tokens are refused and create nothing.
	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 0x01
	for _, tc := range []struct{ token, want string }{
		{token, "already used"},
		{string(tampered), "damaged or was altered"},
		{"amesh-bt1.AAAA", "damaged or was altered"},
	} {
		dir := filepath.Join(work, "refused")
		cmd := c.cmd("amesh", "--dir", dir, "init", "--token", tc.token, "--backend", "encrypted-file")
		b, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != ExitError || !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), "nothing was created") {
			t.Errorf("token %.20s…: exit %d: %s", tc.token, cmd.ProcessState.ExitCode(), b)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("a refused token left %s behind", dir)
		}
	}
	// --force and a token do not mix.
	cmd := c.cmd("amesh", "--dir", target, "init", "--token", token, "--force")
	if b, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != ExitUsage {
		t.Errorf("--force with --token: exit %d %s", cmd.ProcessState.ExitCode(), b)
	}
}

// provision --wait records the server as soon as it enrols.
func TestProvisionWait(t *testing.T) {
	c := newCLIEnv(t)
	relay := startRelay(t)
	work := t.TempDir()
	controller, target := filepath.Join(work, "controller"), filepath.Join(work, "target")
	c.run(0, "amesh", "--dir", controller, "init", "--name", "laptop", "--backend", "encrypted-file")
	wait := c.cmd("amesh", "--dir", controller, "provision", "--name", "api-2", "--relay", relay, "--wait", "--timeout", "30s")
	stdout, err := wait.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	wait.Stderr = &stderr
	if err := wait.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	var transcript strings.Builder
	token := waitLine(t, r, regexp.MustCompile(`^AMESH_BOOTSTRAP_TOKEN=(\S+)`), &transcript)[1]
	c.run(0, "amesh", "--dir", target, "init", "--token", token, "--backend", "encrypted-file")
	targetID := strings.TrimSpace(c.run(0, "amesh", "--dir", target, "whoami"))
	rest, _ := bufio.NewReader(r).ReadString(0)
	if code := exitOf(wait.Wait()); code != 0 {
		t.Fatalf("provision --wait: exit %d\n%s%s", code, rest, stderr.String())
	}
	if !strings.Contains(rest, "Recorded "+targetID+" (api-2) as a target") {
		t.Fatalf("provision --wait printed %q", rest)
	}
}

// withEnv returns a copy of c whose commands get extra environment.
func (c *cliEnv) withEnv(kv ...string) *cliEnv {
	d := *c
	d.env = append(append([]string(nil), c.env...), kv...)
	return &d
}
