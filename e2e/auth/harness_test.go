// Package auth runs the real terraform and tofu binaries against the real
// server wiring with authentication on (httpapi.NewServer with an
// authn.Authenticator over a bbolt store in t.TempDir()), started
// in-process on plain http at 127.0.0.1:0, through the http backend with
// TF_HTTP_USERNAME=x and TF_HTTP_PASSWORD=<token>.
//
// Tools are found as in package e2e: OPENTACO_TERRAFORM (else terraform on
// PATH) and OPENTACO_TOFU (else the cache of .ci/tools.sh); a missing tool
// fails the test under CI and skips it elsewhere. (The helpers are copied
// rather than shared because test files of another package cannot be
// imported.) Every tool run gets its own HOME, an empty CLI config file,
// TF_DATA_DIR, TF_IN_AUTOMATION=1, CHECKPOINT_DISABLE=1, TF_INPUT=0 and
// the TF_HTTP_* credentials of the run, and nothing else from the TF_*
// environment of the caller.
//
// A recording handler in front of the server keeps every request with the
// token it carried and the status it got, so tests can say what happened
// to each credential and when.
package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// ---------------------------------------------------------------------------
// Tools

type tool struct {
	name string // "terraform" or "tofu"
	path string
}

const tofuVersion = "v1.10.7" // keep in step with .ci/tools.sh

var toolVersions sync.Map

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

// ---------------------------------------------------------------------------
// Configurations and tool runs

// writeConfig copies testdata/<fixture> into a fresh sandbox, adds
// backend.tf holding backendHCL, and returns the configuration directory;
// its parent holds HOME, the empty CLI config and TF_DATA_DIR.
func writeConfig(t *testing.T, fixture, backendHCL string) string {
	t.Helper()
	sandbox := t.TempDir()
	dir := filepath.Join(sandbox, "cfg")
	for _, d := range []string{dir, filepath.Join(sandbox, "home"), filepath.Join(sandbox, "tfdata")} {
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
		writeFile(t, filepath.Join(dir, e.Name()), b)
	}
	writeFile(t, filepath.Join(dir, "backend.tf"), []byte(backendHCL))
	return dir
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	stdout, stderr string
	code           int // -1 when the run did not finish
}

func (r result) out() string { return r.stdout + "\n" + r.stderr }

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// run runs tl in dir with the sandboxed environment, presenting token as
// the http backend's basic-auth password.
func run(t *testing.T, tl tool, dir, token string, args ...string) result {
	t.Helper()
	sandbox := filepath.Dir(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.path, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(sandbox, "home"),
		"TMPDIR=" + os.TempDir(),
		"TF_CLI_CONFIG_FILE=" + filepath.Join(sandbox, "cli.tfrc"),
		"TF_DATA_DIR=" + filepath.Join(sandbox, "tfdata"),
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"TF_INPUT=0",
		"TF_HTTP_USERNAME=x",
		"TF_HTTP_PASSWORD=" + token,
	}
	cmd.WaitDelay = 5 * time.Second // a local-exec child may hold the pipes
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: ansi.ReplaceAllString(stdout.String(), ""), stderr: ansi.ReplaceAllString(stderr.String(), "")}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.code = -1
		t.Errorf("%s %s: timed out", tl.name, strings.Join(args, " "))
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		res.code = -1
		t.Errorf("%s %s: %v", tl.name, strings.Join(args, " "), err)
	}
	t.Logf("%s %s → exit %d in %s", tl.name, strings.Join(args, " "), res.code, time.Since(start).Round(time.Millisecond))
	if res.code != 0 {
		t.Logf("output:\n%s", tail(res.out(), 3000))
	}
	return res
}

func mustRun(t *testing.T, tl tool, dir, token string, args ...string) result {
	t.Helper()
	res := run(t, tl, dir, token, args...)
	if res.code != 0 {
		t.Fatalf("%s %s: exit %d, want 0", tl.name, strings.Join(args, " "), res.code)
	}
	return res
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring with authentication on, behind a
// recording handler.
type server struct {
	URL   string
	DB    *store.DB
	Admin string // the bootstrap admin token
	rec   *recorder
	log   *syncBuffer
}

func startServer(t *testing.T) *server {
	t.Helper()
	dataDir := t.TempDir()
	db, err := store.Open(filepath.Join(dataDir, "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	auth, err := authn.New(authn.Config{Store: db, Issuer: url})
	if err != nil {
		t.Fatal(err)
	}
	path, err := auth.Bootstrap(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	h := httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.New(logBuf).With().Timestamp().Logger(), Auth: auth})
	rec := &recorder{next: h}
	hs := &http.Server{Handler: rec, ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	s := &server{URL: url, DB: db, Admin: strings.TrimSpace(string(admin)), rec: rec, log: logBuf}
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
		if t.Failed() {
			t.Logf("requests:\n%s", s.rec.dump())
			t.Logf("server log:\n%s", tail(logBuf.String(), 20000))
		}
	})
	return s
}

// backendURL is the http backend address of id, percent-encoded.
func (s *server) backendURL(id string) string {
	return s.URL + "/v1/backend/" + url.PathEscape(id)
}

// httpBackend is HB(id) with the default LOCK/UNLOCK verbs.
func (s *server) httpBackend(id string) string {
	addr := s.backendURL(id)
	return fmt.Sprintf(`terraform {
  backend "http" {
    address        = %q
    lock_address   = %q
    unlock_address = %q
  }
}
`, addr, addr, addr)
}

type response struct {
	status int
	body   []byte
}

// do sends one management request with token as the bearer credential.
func (s *server) do(t *testing.T, method, path, token string, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: b}
}

func (s *server) expect(t *testing.T, what string, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, want, tail(string(r.body), 500))
	}
}

// createToken issues an API token through POST /v1/tokens with the admin
// token; expiresIn 0 means no expiry.
func (s *server) createToken(t *testing.T, name string, expiresIn int) httpapi.CreatedToken {
	t.Helper()
	body := map[string]any{"name": name}
	if expiresIn > 0 {
		body["expires_in"] = expiresIn
	}
	b, _ := json.Marshal(body)
	r := s.do(t, http.MethodPost, "/v1/tokens", s.Admin, b)
	s.expect(t, "POST /v1/tokens "+string(b), r, http.StatusCreated)
	var ct httpapi.CreatedToken
	if err := json.Unmarshal(r.body, &ct); err != nil || ct.APIToken == nil {
		t.Fatalf("created token %s: %v", r.body, err)
	}
	return ct
}

// versions lists the versions of id (none when the unit does not exist).
func (s *server) versions(t *testing.T, id string) []*store.Version {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/units/"+url.PathEscape(id)+"/versions", s.Admin, nil)
	if r.status == http.StatusNotFound {
		return nil
	}
	s.expect(t, "versions of "+id, r, http.StatusOK)
	var vl httpapi.VersionList
	if err := json.Unmarshal(r.body, &vl); err != nil {
		t.Fatal(err)
	}
	return vl.Versions
}

// download is the current state of id through the management API.
func (s *server) download(t *testing.T, id string) []byte {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/units/"+url.PathEscape(id)+"/download", s.Admin, nil)
	s.expect(t, "download "+id, r, http.StatusOK)
	return r.body
}

// lockOf is the lock of id, nil when it is not locked.
func (s *server) lockOf(t *testing.T, id string) *store.Lock {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/units/"+url.PathEscape(id)+"/lock", s.Admin, nil)
	if r.status == http.StatusNotFound {
		return nil
	}
	s.expect(t, "lock of "+id, r, http.StatusOK)
	var l store.Lock
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// ---------------------------------------------------------------------------
// Request recording

// request is one request as the recording handler saw it.
type request struct {
	at     time.Time // when it arrived
	method string
	path   string
	cred   string // bearer token or basic-auth password
	status int
}

type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []request
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := request{at: time.Now(), method: r.Method, path: r.URL.Path, cred: authn.Credential(r)}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	rc.next.ServeHTTP(sw, r)
	req.status = sw.status
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, req)
	rc.mu.Unlock()
}

// with returns the recorded requests that carried cred, in arrival order.
func (rc *recorder) with(cred string) []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []request
	for _, r := range rc.reqs {
		if r.cred == cred {
			out = append(out, r)
		}
	}
	return out
}

func (rc *recorder) dump() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var b strings.Builder
	for _, r := range rc.reqs {
		c := r.cred
		if len(c) > 10 {
			c = c[:10] + "…"
		}
		fmt.Fprintf(&b, "%s %s %s [%s] → %d\n", r.at.Format("15:04:05.000"), r.method, r.path, c, r.status)
	}
	return b.String()
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
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
