// Package cloud runs the real terraform and tofu binaries against
// OpenTaco's Terraform Cloud surface (package tfe: the cloud block, the
// remote backend and the raw TFE API v2), over TLS, with the server wiring
// of main.go started in-process on 127.0.0.1:0.
//
// Tools are found as in package e2e: OPENTACO_TERRAFORM (else terraform on
// PATH) and OPENTACO_TOFU (else the cache of .ci/tools.sh); a missing tool
// fails the test under CI and skips it elsewhere. (The helpers are copied
// rather than shared because test files of another package cannot be
// imported.) Every tool run gets its own HOME, a CLI config file holding
// only a credentials block for the server, SSL_CERT_FILE = the server's CA,
// TF_IN_AUTOMATION=1, CHECKPOINT_DISABLE=1 and TF_INPUT=0, and nothing else
// from the TF_* environment of the caller. Configurations use built-ins
// only, so nothing leaves the loopback interface.
//
// Every test starts its own server per tool, so workspace names, tags and
// lock holders never leak between tests; the names still differ per tool
// so that a log line always says which run it came from.
package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// org is the organization every test uses.
const org = "acme"

// Tokens. With AuthDisabled any bearer token is accepted, and each
// distinct token is a distinct principal (a distinct lock holder).
const (
	tok  = "tok-alice-0123456789"
	tok2 = "tok-bob-0123456789"
	tok3 = "tok-carol-0123456789"
)

// ---------------------------------------------------------------------------
// Tools

// tool is one Terraform-compatible CLI.
type tool struct {
	name string // "terraform" or "tofu"
	path string
}

// short is a tag for workspace names: "tf" or "tofu".
func (tl tool) short() string {
	if tl.name == "terraform" {
		return "tf"
	}
	return tl.name
}

const tofuVersion = "v1.10.7" // keep in step with .ci/tools.sh

var toolVersions sync.Map // path → true once its version was logged

// findTool locates a tool, or fails (CI) / skips (elsewhere) the test.
func findTool(t *testing.T, name string) tool {
	t.Helper()
	var path, how string
	switch name {
	case "terraform":
		how = "set OPENTACO_TERRAFORM or put terraform on PATH"
		if path = os.Getenv("OPENTACO_TERRAFORM"); path == "" {
			path, _ = exec.LookPath("terraform")
		}
	case "tofu":
		how = "set OPENTACO_TOFU or run .ci/tools.sh tofu"
		if path = os.Getenv("OPENTACO_TOFU"); path == "" {
			if home, err := os.UserHomeDir(); err == nil {
				path = filepath.Join(home, ".cache", "opentaco-test", "tofu-"+tofuVersion)
			}
		}
	default:
		t.Fatalf("unknown tool %q", name)
	}
	if fi, err := os.Stat(path); path == "" || err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		msg := fmt.Sprintf("%s not found (looked at %q): %s", name, path, how)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, seen := toolVersions.LoadOrStore(path, true); !seen {
		cmd := exec.Command(path, "version")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1"}
		out, _ := cmd.Output()
		line, _, _ := strings.Cut(string(out), "\n")
		t.Logf("using %s: %s (%s)", name, line, path)
	}
	return tool{name: name, path: path}
}

// forEachTool runs fn as parallel subtests "terraform" and "tofu".
func forEachTool(t *testing.T, fn func(t *testing.T, tl tool)) {
	t.Helper()
	for _, name := range []string{"terraform", "tofu"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, findTool(t, name))
		})
	}
}

// ---------------------------------------------------------------------------
// Configurations and tool runs

// config is one sandboxed configuration directory: sandbox/cfg holds the
// fixture and backend.tf, sandbox/home is HOME, sandbox/cli.tfrc the CLI
// config with the credentials block.
type config struct {
	srv     *server
	sandbox string
	dir     string
}

// newConfig copies the fixture testdata/cloud/<fixture> into a fresh sandbox,
// adds backend.tf holding backendHCL, and writes a CLI config whose
// credentials block gives token for the server's host.
func newConfig(t *testing.T, srv *server, fixture, backendHCL, token string) *config {
	t.Helper()
	sandbox := t.TempDir()
	c := &config{srv: srv, sandbox: sandbox, dir: filepath.Join(sandbox, "cfg")}
	for _, d := range []string{c.dir, filepath.Join(sandbox, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join("testdata", "cloud", fixture)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatalf("fixture %s: %v", src, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(c.dir, e.Name()), b)
	}
	writeFile(t, filepath.Join(c.dir, "backend.tf"), []byte(backendHCL))
	c.setToken(t, token)
	return c
}

// setToken rewrites the CLI config so that later runs use token.
func (c *config) setToken(t *testing.T, token string) {
	t.Helper()
	writeFile(t, filepath.Join(c.sandbox, "cli.tfrc"), fmt.Appendf(nil, "credentials %q {\n  token = %q\n}\n", c.srv.Host, token))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// cloudBlock is the cloud block for workspace ws (name strategy).
func cloudBlock(host, ws string) string {
	return fmt.Sprintf(`terraform {
  cloud {
    hostname     = %q
    organization = %q
    workspaces {
      name = %q
    }
  }
}
`, host, org, ws)
}

// result is the outcome of one tool run. Output has ANSI colours removed.
type result struct {
	stdout, stderr string
	code           int // -1 when the run did not finish
	dur            time.Duration
}

// out is stdout and stderr together, for message checks.
func (r result) out() string { return r.stdout + "\n" + r.stderr }

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

const defaultRunTimeout = 3 * time.Minute

// command builds the sandboxed command for one run.
func (c *config) command(ctx context.Context, tl tool, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tl.path, args...)
	cmd.Dir = c.dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(c.sandbox, "home"),
		"TMPDIR=" + os.TempDir(),
		"TF_CLI_CONFIG_FILE=" + filepath.Join(c.sandbox, "cli.tfrc"),
		"SSL_CERT_FILE=" + c.srv.CAPath,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"TF_INPUT=0",
	}
	cmd.WaitDelay = 5 * time.Second // a local-exec child may hold the pipes
	return cmd
}

// run runs tl in c with the default timeout and an empty stdin.
func (c *config) run(t *testing.T, tl tool, args ...string) result {
	t.Helper()
	return c.runStdin(t, tl, "", args...)
}

// runStdin is run with stdin as the tool's standard input (for the
// prompts that the CLI shows even with TF_INPUT=0).
func (c *config) runStdin(t *testing.T, tl tool, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultRunTimeout)
	defer cancel()
	cmd := c.command(ctx, tl, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: ansi.ReplaceAllString(stdout.String(), ""), stderr: ansi.ReplaceAllString(stderr.String(), ""), dur: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.code = -1
		t.Errorf("%s %s: timed out after %s", tl.name, strings.Join(args, " "), defaultRunTimeout)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		res.code = -1
		t.Errorf("%s %s: %v", tl.name, strings.Join(args, " "), err)
	}
	t.Logf("%s %s → exit %d in %s", tl.name, strings.Join(args, " "), res.code, res.dur.Round(time.Millisecond))
	if res.code != 0 {
		t.Logf("output:\n%s", tail(res.out(), 3000))
	}
	return res
}

// mustRun runs tl and fails the test unless it exits 0.
func (c *config) mustRun(t *testing.T, tl tool, args ...string) result {
	t.Helper()
	res := c.run(t, tl, args...)
	if res.code != 0 {
		t.Fatalf("%s %s: exit %d, want 0", tl.name, strings.Join(args, " "), res.code)
	}
	return res
}

// mustFail runs tl and fails the test unless it exits 1 with an output
// containing want (when want is not empty).
func (c *config) mustFail(t *testing.T, tl tool, want string, args ...string) result {
	t.Helper()
	res := c.run(t, tl, args...)
	if res.code != 1 {
		t.Errorf("%s %s: exit %d, want 1; output:\n%s", tl.name, strings.Join(args, " "), res.code, tail(res.out(), 2000))
	} else if want != "" && !strings.Contains(res.out(), want) {
		t.Errorf("%s %s: output lacks %q:\n%s", tl.name, strings.Join(args, " "), want, tail(res.out(), 2000))
	}
	return res
}

// statePull runs `state pull` and returns its output without the one
// trailing newline the CLI adds; it fails the test if that newline is
// missing.
func (c *config) statePull(t *testing.T, tl tool) []byte {
	t.Helper()
	out, ok := strings.CutSuffix(c.mustRun(t, tl, "state", "pull").stdout, "\n")
	if !ok {
		t.Fatalf("%s state pull: output does not end in a newline", tl.name)
	}
	return []byte(out)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// ---------------------------------------------------------------------------
// States

// stateDoc is the part of a state file the tests look at.
type stateDoc struct {
	Version int64  `json:"version"`
	Serial  int64  `json:"serial"`
	Lineage string `json:"lineage"`
	Outputs map[string]struct {
		Value any `json:"value"`
	} `json:"outputs"`
}

func parseState(t *testing.T, b []byte) stateDoc {
	t.Helper()
	var s stateDoc
	mustJSON(t, b, &s)
	return s
}

// editState returns state with serial (and lineage, when not empty)
// replaced; other fields are kept.
func editState(t *testing.T, state []byte, serial int64, lineage string) []byte {
	t.Helper()
	var m map[string]any
	mustJSON(t, state, &m)
	m["serial"] = serial
	if lineage != "" {
		m["lineage"] = lineage
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// sameJSON reports whether a and b hold equal JSON values.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	mustJSON(t, a, &va)
	mustJSON(t, b, &vb)
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// hostOf returns the host:port of an absolute URL, or "" if it is not one.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() {
		return ""
	}
	return p.Host
}
