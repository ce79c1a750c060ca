// Package login runs `terraform login` and `tofu login` against the real
// server wiring (httpapi + tfe over self-signed TLS, in-process on
// 127.0.0.1:0), with and without a real OpenID provider: the example
// server of zitadel/oidc, started as a process on a free port.
//
// The test plays the browser: it reads the login URL the tool prints,
// follows it with a cookie-jar HTTP client (through the provider's login
// form, or OpenTaco's own token page), and delivers the final redirect to
// the tool's loopback listener. A stub xdg-open in PATH keeps a real
// browser from opening.
//
// Programs are found through OPENTACO_TERRAFORM (else terraform on PATH),
// OPENTACO_TOFU and OPENTACO_OIDC_SERVER (else the cache of .ci/tools.sh).
// A missing one fails the test under CI and skips it elsewhere.
package login

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Programs

const (
	tofuVersion = "v1.10.7" // keep in step with .ci/tools.sh
	oidcVersion = "v3.52.0" // keep in step with .ci/tools.sh
	opClient    = "web"     // a confidential client of the example OP
	opSecret    = "secret"  // its secret
	opPassword  = "verysecure"
	opSubject   = "id1" // the user test-user@localhost
)

// tool is one Terraform-compatible CLI.
type tool struct {
	name string // "terraform" or "tofu"
	path string
}

func (tl tool) short() string {
	if tl.name == "terraform" {
		return "tf"
	}
	return tl.name
}

var versionsLogged sync.Map

// need locates a program, or fails (CI) / skips (elsewhere) the test.
func need(t *testing.T, name, path, how string) string {
	t.Helper()
	if fi, err := os.Stat(path); path == "" || err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		msg := fmt.Sprintf("%s not found (looked at %q): %s", name, path, how)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

func cached(file string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "opentaco-test", file)
}

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
			path = cached("tofu-" + tofuVersion)
		}
	}
	path = need(t, name, path, how)
	if _, seen := versionsLogged.LoadOrStore(path, true); !seen {
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
// Tool runs

// sandbox is a HOME, a configuration directory and a bin directory whose
// stub xdg-open records URLs instead of opening them.
//
// No TF_CLI_CONFIG_FILE is set: with it, terraform and tofu skip the CLI
// config directory, and with it credentials.tfrc.json, so the token that
// `login` stores would never be read. HOME is the sandbox's own.
type sandbox struct {
	srv  *server
	root string
	home string
	dir  string
}

func newSandbox(t *testing.T, tl tool, srv *server) *sandbox {
	t.Helper()
	root := t.TempDir()
	sb := &sandbox{srv: srv, root: root, home: filepath.Join(root, "home"), dir: filepath.Join(root, "cfg")}
	dirs := []string{sb.home, sb.dir, filepath.Join(root, "bin")}
	if tl.name == "terraform" {
		// Terraform 1.11 cannot save the token unless ~/.terraform.d exists
		// (it does not create it; checkpoint, which we disable, usually has).
		dirs = append(dirs, filepath.Join(sb.home, ".terraform.d"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	stub := "#!/bin/sh\necho \"$1\" >> " + filepath.Join(root, "opened.txt") + "\n"
	for _, name := range []string{"xdg-open", "x-www-browser", "www-browser", "open", "sensible-browser"} {
		writeFile(t, filepath.Join(root, "bin", name), []byte(stub), 0o700)
	}
	return sb
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

func (sb *sandbox) env(extra ...string) []string {
	return append([]string{
		"PATH=" + filepath.Join(sb.root, "bin") + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + sb.home,
		"TMPDIR=" + os.TempDir(),
		"SSL_CERT_FILE=" + sb.srv.CAPath,
		"CHECKPOINT_DISABLE=1",
	}, extra...)
}

// result is the outcome of one tool run, ANSI colours removed.
type result struct {
	stdout, stderr string
	code           int
	dur            time.Duration
}

func (r result) out() string { return r.stdout + "\n" + r.stderr }

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// urlRE finds the login URL the tool prints.
var urlRE = regexp.MustCompile(`https://\S+/oauth/authorization\?\S+`)

// login runs `<tool> login <host>`, answers "yes", waits for the login URL
// it prints, passes it to browse (which returns the loopback redirect) and
// delivers that redirect.
func (sb *sandbox) login(t *testing.T, tl tool, browse func(authURL string) string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.path, "login", sb.srv.Host)
	cmd.Dir = sb.dir
	cmd.Env = sb.env()
	cmd.Stdin = strings.NewReader("yes\n")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr syncBuffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, pw), &stderr
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := urlRE.FindString(ansi.ReplaceAllString(sc.Text(), "")); m != "" {
				select {
				case found <- m:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	var err error
	select {
	case authURL := <-found:
		deliver(t, browse(authURL))
		err = <-exited
	case err = <-exited:
		t.Errorf("%s login exited before printing a login URL", tl.name)
	}
	res := result{stdout: ansi.ReplaceAllString(stdout.String(), ""), stderr: ansi.ReplaceAllString(stderr.String(), ""), dur: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.code = -1
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		res.code = -1
	}
	t.Logf("%s login %s → exit %d in %s", tl.name, sb.srv.Host, res.code, res.dur.Round(time.Millisecond))
	if res.code != 0 {
		t.Fatalf("%s login: exit %d:\n%s", tl.name, res.code, tail(res.out(), 3000))
	}
	return res
}

// storedToken reads the token the tool stored for the server.
func (sb *sandbox) storedToken(t *testing.T, tl tool) string {
	t.Helper()
	path := filepath.Join(sb.home, ".terraform.d", "credentials.tfrc.json")
	b, err := os.ReadFile(path)
	if err != nil {
		var found []string
		_ = filepath.WalkDir(sb.home, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				found = append(found, p)
			}
			return nil
		})
		t.Fatalf("%s: %v; files under HOME: %v", tl.name, err, found)
	}
	var doc struct {
		Credentials map[string]struct {
			Token string `json:"token"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Credentials[sb.srv.Host].Token == "" {
		t.Fatalf("%s: %s holds no token for %s: %s (%v)", tl.name, path, sb.srv.Host, b, err)
	}
	return doc.Credentials[sb.srv.Host].Token
}

// run runs tl in the configuration directory, non-interactively.
func (sb *sandbox) run(t *testing.T, tl tool, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.path, args...)
	cmd.Dir = sb.dir
	cmd.Env = sb.env("TF_IN_AUTOMATION=1", "TF_INPUT=0")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: ansi.ReplaceAllString(stdout.String(), ""), stderr: ansi.ReplaceAllString(stderr.String(), ""), dur: time.Since(start)}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.code = exit.ExitCode()
	} else if err != nil {
		res.code = -1
	}
	t.Logf("%s %s → exit %d in %s", tl.name, strings.Join(args, " "), res.code, res.dur.Round(time.Millisecond))
	if res.code != 0 {
		t.Fatalf("%s %s: exit %d:\n%s", tl.name, strings.Join(args, " "), res.code, tail(res.out(), 3000))
	}
	return res
}

// cloudConfig writes a configuration with a cloud block for workspace ws
// and one built-in resource.
func (sb *sandbox) cloudConfig(t *testing.T, ws string) {
	t.Helper()
	writeFile(t, filepath.Join(sb.dir, "main.tf"), fmt.Appendf(nil, `terraform {
  cloud {
    hostname     = %q
    organization = "acme"
    workspaces {
      name = %q
    }
  }
}

resource "terraform_data" "r" {
  input = "one"
}
`, sb.srv.Host, ws), 0o600)
}

// ---------------------------------------------------------------------------
// Small helpers

type request struct {
	method, path string
	status       int
}

type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		path := r.URL.Path
		h.ServeHTTP(rec, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, request{method: r.Method, path: path, status: rec.status})
		l.mu.Unlock()
	})
}

func (l *requestLog) all() []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]request(nil), l.reqs...)
}

func (l *requestLog) String() string {
	var b strings.Builder
	for _, r := range l.all() {
		fmt.Fprintf(&b, "%s %s → %d\n", r.method, r.path, r.status)
	}
	return b.String()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
