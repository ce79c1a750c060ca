// Package graph runs the real terraform and tofu binaries over the http
// backend against the real server wiring (httpapi.NewServer over a bbolt
// store in t.TempDir(), on 127.0.0.1:0) and checks the dependency graph:
// declared and inferred edges, unit status, exit codes of `unit status`.
//
// Tools are found as in package e2e: OPENTACO_TERRAFORM (else terraform on
// PATH) and OPENTACO_TOFU (else the cache of .ci/tools.sh); a missing tool
// fails the test under CI and skips it elsewhere. (The helpers are copied
// rather than shared because test files of another package cannot be
// imported.) Every tool run gets its own HOME, an empty CLI config file,
// TF_DATA_DIR, TF_IN_AUTOMATION=1, CHECKPOINT_DISABLE=1 and TF_INPUT=0,
// and nothing else from the TF_* environment of the caller; the
// configurations use built-ins only (terraform_data,
// terraform_remote_state), so nothing leaves the loopback interface.
package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/cli"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// tool is one Terraform-compatible CLI.
type tool struct {
	name string // "terraform" or "tofu"
	path string
}

const tofuVersion = "v1.10.7" // keep in step with .ci/tools.sh

var toolVersions sync.Map // path → logged once

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
		out, _ := exec.Command(path, "version").Output()
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

// config is one Terraform configuration in its own sandbox (HOME, CLI
// config file, TF_DATA_DIR beside it).
type config struct {
	dir    string
	inited bool
}

// newConfig copies testdata/<fixture> into a fresh sandbox and adds
// backend.tf: the http backend of unit id on srv.
func newConfig(t *testing.T, srv *server, fixture, id string) *config {
	t.Helper()
	sandbox := t.TempDir()
	c := &config{dir: filepath.Join(sandbox, "cfg")}
	for _, d := range []string{c.dir, filepath.Join(sandbox, "home"), filepath.Join(sandbox, "tfdata")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(sandbox, "cli.tfrc"), nil)
	src := filepath.Join("testdata", fixture)
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
	addr := srv.backendURL(id)
	writeFile(t, filepath.Join(c.dir, "backend.tf"), fmt.Appendf(nil, `terraform {
  backend "http" {
    address        = %q
    lock_address   = %q
    unlock_address = %q
  }
}
`, addr, addr, addr))
	return c
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// run runs tl in c's directory with the sandboxed environment and fails
// the test unless it exits 0.
func (c *config) run(t *testing.T, tl tool, args ...string) string {
	t.Helper()
	sandbox := filepath.Dir(c.dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.path, args...)
	cmd.Dir = c.dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(sandbox, "home"),
		"TMPDIR=" + os.TempDir(),
		"TF_CLI_CONFIG_FILE=" + filepath.Join(sandbox, "cli.tfrc"),
		"TF_DATA_DIR=" + filepath.Join(sandbox, "tfdata"),
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"TF_INPUT=0",
	}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	text := ansi.ReplaceAllString(out.String(), "")
	t.Logf("%s %s → %v in %s", tl.name, strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tl.name, strings.Join(args, " "), err, tail(text, 3000))
	}
	return text
}

// apply runs init (once) and apply -auto-approve with the given -var
// assignments ("name=value").
func (c *config) apply(t *testing.T, tl tool, vars ...string) {
	t.Helper()
	if !c.inited {
		c.run(t, tl, "init", "-input=false")
		c.inited = true
	}
	args := []string{"apply", "-auto-approve", "-input=false"}
	for _, v := range vars {
		args = append(args, "-var", v)
	}
	c.run(t, tl, args...)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// server is the real server wiring on a loopback port, with
// authentication disabled.
type server struct {
	URL    string
	DB     *store.DB
	client *httpapi.Client
}

func startServer(t testing.TB) *server {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.Nop(), AuthDisabled: true}), ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &server{URL: url, DB: db, client: httpapi.NewClient(url, "")}
}

// backendURL is the http backend address of id, percent-encoded.
func (s *server) backendURL(id string) string {
	return s.URL + "/v1/backend/" + url.PathEscape(id)
}

// cliResult is one in-process run of the opentaco CLI.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs the opentaco CLI in-process against s.
func (s *server) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	all := append([]string{"--server", s.URL, "--config-dir", t.TempDir()}, args...)
	code := cli.Run(context.Background(), all, strings.NewReader(""), &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}
