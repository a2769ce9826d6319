package command

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/relay/relaytest"
	"github.com/amesh-go/amesh/relay/server"
)

// startRelay runs a real amesh-relay on a loopback port.
func startRelay(t *testing.T) string {
	t.Helper()
	return relaytest.Start(t, server.DefaultConfig(), nil)
}

// cliEnv runs the test binary as the amesh command (and its test helpers)
// in separate processes, as a user would.
type cliEnv struct {
	t       *testing.T
	bin     string // directory holding the command names
	env     []string
	timeout string // the pairing commands' --timeout
}

func newCLIEnv(t *testing.T) *cliEnv {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range []string{"amesh", "amesh-testserver", "amesh-testtrust"} {
		// testscript.Main dispatches on the program's base name.
		if err := os.Symlink(exe, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "AUTH_MESH_PASSPHRASE=pairing-test-passphrase", "NO_COLOR=1",
		"AMESH_TPM_DEVICE="+filepath.Join(bin, "no-tpm"), "AMESH_RELAY_URL=")
	return &cliEnv{t: t, bin: bin, env: env, timeout: "20s"}
}

func (c *cliEnv) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Env = c.env
	return cmd
}

// run runs a command to completion and returns its stdout, failing the test
// unless it exits with want.
func (c *cliEnv) run(want int, name string, args ...string) string {
	c.t.Helper()
	cmd := c.cmd(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	if code != want {
		c.t.Fatalf("%s %v: exit %d, want %d\nstdout: %s\nstderr: %s", name, args, code, want, out, stderr.String())
	}
	return string(out)
}

// waitLine reads lines from r until one matches re, and returns the match.
func waitLine(t *testing.T, r *bufio.Reader, re *regexp.Regexp, transcript *strings.Builder) []string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		transcript.WriteString(line)
		if m := re.FindStringSubmatch(line); m != nil {
			return m
		}
		if err != nil {
			t.Fatalf("no line matching %v: %v\n%s", re, err, transcript.String())
		}
	}
}

type pairRun struct {
	listen, invite       *exec.Cmd
	listenErr, inviteErr strings.Builder
	listenOut, inviteOut strings.Builder
}

// pair runs `amesh listen` for target and `amesh invite` for controller
// through relay; answer turns the verification code into what the target's
// operator types (including any further answers).
func (c *cliEnv) pair(relay, target, controller string, answer func(code string) string, listenArgs ...string) (*pairRun, int, int) {
	t := c.t
	t.Helper()
	p := &pairRun{}
	p.listen = c.cmd("amesh", append([]string{"--dir", target, "listen", "--relay", relay, "--timeout", c.timeout}, listenArgs...)...)
	p.listen.Stderr = &p.listenErr
	stdin, err := p.listen.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	lout, err := p.listen.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.listen.Start(); err != nil {
		t.Fatal(err)
	}
	lr := bufio.NewReader(lout)
	code := waitLine(t, lr, regexp.MustCompile(`Pairing code: (\d{3}) (\d{3})`), &p.listenOut)
	p.invite = c.cmd("amesh", "--dir", controller, "invite", code[1]+code[2], "--relay", relay, "--timeout", c.timeout)
	p.invite.Stderr = &p.inviteErr
	iout, err := p.invite.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.invite.Start(); err != nil {
		t.Fatal(err)
	}
	ir := bufio.NewReader(iout)
	v := waitLine(t, ir, regexp.MustCompile(`Verification code: (\d{3}) (\d{3})`), &p.inviteOut)
	if a := answer(v[1] + v[2]); a != "" {
		io.WriteString(stdin, a)
		stdin.Close()
	} else {
		// Nobody answers: keep standard input open until the end.
		defer stdin.Close()
	}
	rest, _ := io.ReadAll(ir)
	p.inviteOut.Write(rest)
	rest, _ = io.ReadAll(lr)
	p.listenOut.Write(rest)
	return p, exitOf(p.listen.Wait()), exitOf(p.invite.Wait())
}

func exitOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

type listJSON struct {
	Trusted []struct {
		DeviceID string `json:"deviceId"`
		Role     string `json:"role"`
		Name     string `json:"friendlyName"`
	} `json:"trusted"`
}

func (c *cliEnv) trusted(dir string) listJSON {
	c.t.Helper()
	var l listJSON
	if err := json.Unmarshal([]byte(c.run(0, "amesh", "--dir", dir, "list", "--json")), &l); err != nil {
		c.t.Fatal(err)
	}
	return l
}

// TestPairingThroughRelay pairs two CLIs (separate state directories)
// through a real relay, the verification code typed into the target's
// standard input; then the controller's requests are accepted by a server on
// the target's allow list, and the target cannot authenticate to the
// controller.
func TestPairingThroughRelay(t *testing.T) {
	c := newCLIEnv(t)
	relay := startRelay(t)
	work := t.TempDir()
	target, controller := filepath.Join(work, "target"), filepath.Join(work, "controller")
	c.run(0, "amesh", "--dir", target, "init", "--name", "api-server", "--backend", "encrypted-file")
	c.run(0, "amesh", "--dir", controller, "init", "--name", "laptop", "--backend", "encrypted-file")
	controllerID := strings.TrimSpace(c.run(0, "amesh", "--dir", controller, "whoami"))
	targetID := strings.TrimSpace(c.run(0, "amesh", "--dir", target, "whoami"))

	p, lcode, icode := c.pair(relay, target, controller, func(code string) string { return code + "\n" })
	if lcode != 0 || icode != 0 {
		t.Fatalf("listen exit %d, invite exit %d\nlisten: %s%s\ninvite: %s%s", lcode, icode,
			p.listenOut.String(), p.listenErr.String(), p.inviteOut.String(), p.inviteErr.String())
	}
	if !strings.Contains(p.listenOut.String(), "Paired: this device now accepts requests from "+controllerID) {
		t.Errorf("listen output:\n%s", p.listenOut.String())
	}
	if !strings.Contains(p.listenErr.String(), "Controller "+controllerID+" (laptop) wants to pair") {
		t.Errorf("listen did not show the controller's identity:\n%s", p.listenErr.String())
	}
	if !strings.Contains(p.inviteOut.String(), "Target "+targetID+" (api-server) answered") {
		t.Errorf("invite output:\n%s", p.inviteOut.String())
	}
	tl, cl := c.trusted(target), c.trusted(controller)
	if len(tl.Trusted) != 1 || tl.Trusted[0].DeviceID != controllerID || tl.Trusted[0].Role != "controller" {
		t.Fatalf("target trusts %+v", tl.Trusted)
	}
	if len(cl.Trusted) != 1 || cl.Trusted[0].DeviceID != targetID || cl.Trusted[0].Role != "target" {
		t.Fatalf("controller records %+v", cl.Trusted)
	}

	// The controller's requests pass a server on the target's allow list.
	urlFile := filepath.Join(work, "target.url")
	srv := c.cmd("amesh-testserver", target, urlFile)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	url := waitFile(t, urlFile)
	if out := c.run(0, "amesh", "--dir", controller, "curl", "--fail", url+"/orders"); !strings.Contains(out, "hello laptop") {
		t.Fatalf("controller's request: %s", out)
	}
	// The trust is one-way: the target cannot authenticate to a server on
	// the controller's allow list (it is recorded there as a target).
	urlFile2 := filepath.Join(work, "controller.url")
	srv2 := c.cmd("amesh-testserver", controller, urlFile2)
	if err := srv2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Process.Kill(); srv2.Wait() })
	url2 := waitFile(t, urlFile2)
	if out := c.run(1, "amesh", "--dir", target, "curl", "--fail", url2+"/orders"); !strings.Contains(out, `{"error":"unauthorized"}`) {
		t.Fatalf("target's request to the controller: %s", out)
	}
}

// A wrong verification code aborts both sides with a non-zero exit and
// changes no file.
func TestPairingWrongCode(t *testing.T) {
	c := newCLIEnv(t)
	relay := startRelay(t)
	work := t.TempDir()
	target, controller := filepath.Join(work, "target"), filepath.Join(work, "controller")
	c.run(0, "amesh", "--dir", target, "init", "--name", "t", "--backend", "encrypted-file")
	c.run(0, "amesh", "--dir", controller, "init", "--name", "c", "--backend", "encrypted-file")
	before := snapshot(t, target, controller)
	p, lcode, icode := c.pair(relay, target, controller, func(code string) string {
		wrong := []byte(code)
		wrong[0] = '0' + (wrong[0]-'0'+1)%10
		return string(wrong) + "\n"
	})
	if lcode != ExitAborted {
		t.Errorf("listen exit %d, want %d: %s", lcode, ExitAborted, p.listenErr.String())
	}
	if icode == 0 {
		t.Errorf("invite exit 0 after a wrong code: %s", p.inviteOut.String())
	}
	if !strings.Contains(p.listenErr.String(), "verification codes do not match") {
		t.Errorf("listen stderr: %s", p.listenErr.String())
	}
	if after := snapshot(t, target, controller); after != before {
		t.Errorf("files changed after an aborted pairing")
	}
}

// The target's limit of one controller: pairing a second asks to replace;
// declining keeps the first (exit 3), --replace replaces it.
func TestPairingReplaceController(t *testing.T) {
	c := newCLIEnv(t)
	relay := startRelay(t)
	work := t.TempDir()
	target, c1, c2 := filepath.Join(work, "target"), filepath.Join(work, "c1"), filepath.Join(work, "c2")
	for _, d := range []string{target, c1, c2} {
		c.run(0, "amesh", "--dir", d, "init", "--name", filepath.Base(d), "--backend", "encrypted-file")
	}
	id1 := strings.TrimSpace(c.run(0, "amesh", "--dir", c1, "whoami"))
	id2 := strings.TrimSpace(c.run(0, "amesh", "--dir", c2, "whoami"))
	if _, l, i := c.pair(relay, target, c1, func(code string) string { return code + "\n" }); l != 0 || i != 0 {
		t.Fatalf("first pairing: %d %d", l, i)
	}
	before := snapshot(t, target)
	p, l, _ := c.pair(relay, target, c2, func(code string) string { return code + "\nn\n" })
	if l != ExitAborted || !strings.Contains(p.listenErr.String(), "Replace existing controller(s)? [y/N]") {
		t.Fatalf("declined replace: exit %d\n%s", l, p.listenErr.String())
	}
	if snapshot(t, target) != before {
		t.Fatal("declining the replacement changed the target's files")
	}
	// Re-pairing a known controller updates it without asking.
	if p, l, i := c.pair(relay, target, c1, func(code string) string { return code + "\n" }); l != 0 || i != 0 {
		t.Fatalf("re-pairing: %d %d\n%s", l, i, p.listenErr.String())
	}
	if _, l, i := c.pair(relay, target, c2, func(code string) string { return code + "\n" }, "--replace"); l != 0 || i != 0 {
		t.Fatalf("--replace: %d %d", l, i)
	}
	tl := c.trusted(target)
	if len(tl.Trusted) != 1 || tl.Trusted[0].DeviceID != id2 {
		t.Fatalf("after --replace the target trusts %+v, want only %s (not %s)", tl.Trusted, id2, id1)
	}
}

// An operator who never answers: both sides give up at the deadline, exit
// non-zero, and change nothing.
func TestPairingTimeout(t *testing.T) {
	c := newCLIEnv(t)
	c.timeout = "2s"
	relay := startRelay(t)
	work := t.TempDir()
	target, controller := filepath.Join(work, "target"), filepath.Join(work, "controller")
	c.run(0, "amesh", "--dir", target, "init", "--name", "t", "--backend", "encrypted-file")
	c.run(0, "amesh", "--dir", controller, "init", "--name", "c", "--backend", "encrypted-file")
	before := snapshot(t, target, controller)
	p, l, i := c.pair(relay, target, controller, func(string) string { return "" })
	if l == 0 || i == 0 {
		t.Fatalf("listen exit %d, invite exit %d after a timeout", l, i)
	}
	if !strings.Contains(p.listenErr.String(), "timed out") {
		t.Errorf("listen stderr: %s", p.listenErr.String())
	}
	if snapshot(t, target, controller) != before {
		t.Fatal("files changed after a timed-out pairing")
	}
}

func TestPairingNeedsRelay(t *testing.T) {
	c := newCLIEnv(t)
	dir := filepath.Join(t.TempDir(), "d")
	c.run(0, "amesh", "--dir", dir, "init", "--name", "d", "--backend", "encrypted-file")
	cmd := c.cmd("amesh", "--dir", dir, "listen")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	if !strings.Contains(string(out), "no relay configured") || !strings.Contains(string(out), "amesh-relay --listen") {
		t.Fatalf("no-relay message: %s", out)
	}
	// A relay that is not there.
	cmd = c.cmd("amesh", "--dir", dir, "invite", "123456", "--relay", "http://127.0.0.1:1")
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != ExitError || !strings.Contains(string(out), "cannot use the relay") {
		t.Fatalf("unreachable relay: exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

// snapshot returns the contents of every file in dirs, to compare.
func snapshot(t *testing.T, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(p + "\n" + string(data) + "\n")
			return nil
		})
	}
	return b.String()
}
