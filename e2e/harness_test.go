// Package e2e runs the real terraform and tofu binaries against the real
// server wiring (httpapi.NewServer over a bbolt store in t.TempDir()),
// started in-process on 127.0.0.1:0.
//
// Tools are found through OPENTACO_TERRAFORM (else terraform on PATH) and
// OPENTACO_TOFU (else the cache of .ci/tools.sh). A missing tool fails the
// test when CI is set and skips it otherwise. Every tool run gets its own
// HOME, an empty CLI config file, TF_DATA_DIR, TF_IN_AUTOMATION=1,
// CHECKPOINT_DISABLE=1 and TF_INPUT=0, and nothing else from the TF_*
// environment of the caller; configurations use built-ins only, so nothing
// leaves the loopback interface.
package e2e

import (
	"bufio"
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

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// ---------------------------------------------------------------------------
// Tools

// tool is one Terraform-compatible CLI.
type tool struct {
	name string // "terraform" or "tofu"
	path string
}

const tofuVersion = "v1.10.7" // keep in step with .ci/tools.sh

var toolVersions sync.Map // path → version line, logged once per binary

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

// ---------------------------------------------------------------------------
// Configurations and tool runs

// writeConfig copies the fixture testdata/backend/<fixture> into a fresh
// sandbox, adds backend.tf holding backendHCL, and returns the
// configuration directory. The sandbox (its parent) also holds the HOME,
// the empty CLI config file and TF_DATA_DIR that run uses for it.
func writeConfig(t *testing.T, fixture, backendHCL string) string {
	t.Helper()
	sandbox := t.TempDir()
	dir := filepath.Join(sandbox, "cfg")
	for _, d := range []string{dir, filepath.Join(sandbox, "home"), filepath.Join(sandbox, "tfdata")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sandbox, "cli.tfrc"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("testdata", "backend", fixture)
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

// result is the outcome of one tool run. Output has ANSI colours removed.
type result struct {
	stdout, stderr string
	code           int // -1 when the run did not finish (timeout, start failure)
	dur            time.Duration
}

// out is stdout and stderr together, for message checks.
func (r result) out() string { return r.stdout + "\n" + r.stderr }

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

const defaultRunTimeout = 3 * time.Minute

// run runs tl in dir (made by writeConfig) with the sandboxed environment
// and the default timeout. Safe to call from several goroutines.
func run(t *testing.T, tl tool, dir string, args ...string) result {
	t.Helper()
	return runTimeout(t, tl, dir, defaultRunTimeout, args...)
}

func runTimeout(t *testing.T, tl tool, dir string, timeout time.Duration, args ...string) result {
	t.Helper()
	sandbox := filepath.Dir(dir)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
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
	}
	cmd.WaitDelay = 5 * time.Second // a local-exec child may hold the pipes
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: ansi.ReplaceAllString(stdout.String(), ""), stderr: ansi.ReplaceAllString(stderr.String(), ""), dur: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.code = -1
		t.Errorf("%s %s: timed out after %s", tl.name, strings.Join(args, " "), timeout)
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
func mustRun(t *testing.T, tl tool, dir string, args ...string) result {
	t.Helper()
	res := run(t, tl, dir, args...)
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

// backendOpts selects the lock verbs of the http backend block.
type backendOpts struct {
	// postDelete uses lock_method = "POST" and unlock_method = "DELETE" on
	// <address>/lock (the GitLab style); otherwise LOCK/UNLOCK on <address>.
	postDelete bool
	// rawSlashes writes the ID with real slashes in the address
	// (/v1/backend/team/app) instead of percent-encoded (team%2Fapp).
	rawSlashes bool
}

// variants are the http-backend lock styles every http case runs with.
var variants = []struct {
	name string
	opts backendOpts
}{
	{"LOCK", backendOpts{}},
	{"POST", backendOpts{postDelete: true}},
}

// httpBackend is HB(id): the backend "http" block for unit id, the ID
// percent-encoded in the address (team/app → team%2Fapp) unless
// o.rawSlashes is set.
func (s *server) httpBackend(id string, o backendOpts) string {
	addr := s.backendURL(id)
	if o.rawSlashes {
		addr = s.URL + "/v1/backend/" + id
	}
	if !o.postDelete {
		return fmt.Sprintf(`terraform {
  backend "http" {
    address        = %q
    lock_address   = %q
    unlock_address = %q
  }
}
`, addr, addr, addr)
	}
	return fmt.Sprintf(`terraform {
  backend "http" {
    address        = %q
    lock_address   = %q
    unlock_address = %q
    lock_method    = "POST"
    unlock_method  = "DELETE"
  }
}
`, addr, addr+"/lock", addr+"/lock")
}

// lb is LB(id, who): a lock-info body as Terraform sends it.
func lb(id, who string) string {
	return fmt.Sprintf(`{"ID":%q,"Operation":"OperationTypeApply","Info":"","Who":%q,"Version":"1.11.4","Created":"2025-01-01T00:00:00Z","Path":""}`, id, who)
}

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring on a loopback port.
type server struct {
	URL string
	DB  *store.DB
	log *syncBuffer
}

// startServer starts httpapi.NewServer over a fresh store with
// authentication disabled, and stops it when the test ends. The request
// log is kept for the test to inspect and printed if the test fails.
func startServer(t *testing.T) *server {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	h := httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.New(logBuf).With().Timestamp().Logger(), AuthDisabled: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	s := &server{URL: "http://" + ln.Addr().String(), DB: db, log: logBuf}
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
			t.Logf("server log:\n%s", tail(logBuf.String(), 20000))
		}
	})
	return s
}

// backendURL is the http backend address of id, percent-encoded.
func (s *server) backendURL(id string) string {
	return s.URL + "/v1/backend/" + url.PathEscape(id)
}

// unitURL is /v1/units/<id percent-encoded><suffix>.
func (s *server) unitURL(id, suffix string) string {
	return s.URL + "/v1/units/" + url.PathEscape(id) + suffix
}

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; hdr holds header name/value pairs. A nil body
// sends no body and no Content-Length (what terraform force-unlock does).
func do(t *testing.T, method, u string, body []byte, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// expect fails the test unless r has status want.
func expect(t *testing.T, what string, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, want, tail(string(r.body), 500))
	}
}

// lockRaw sends LOCK to the backend address of id with LB(lockID, who).
func (s *server) lockRaw(t *testing.T, id, lockID, who string) response {
	t.Helper()
	return s.lockVia(t, id, backendOpts{}, lb(lockID, who))
}

// lockVia takes a lock the way a client configured with o does: LOCK on
// the address, or POST on <address>/lock.
func (s *server) lockVia(t *testing.T, id string, o backendOpts, body string) response {
	t.Helper()
	if o.postDelete {
		return do(t, http.MethodPost, s.backendURL(id)+"/lock", []byte(body), "Content-Type", "application/json")
	}
	return do(t, "LOCK", s.backendURL(id), []byte(body), "Content-Type", "application/json")
}

// unlockVia releases a lock the way a client configured with o does:
// UNLOCK on the address, or DELETE on <address>/lock. A nil body sends
// none, with Content-Type application/json all the same, as
// `terraform force-unlock` does.
func (s *server) unlockVia(t *testing.T, id string, o backendOpts, body []byte) response {
	t.Helper()
	if o.postDelete {
		return do(t, http.MethodDelete, s.backendURL(id)+"/lock", body, "Content-Type", "application/json")
	}
	return do(t, "UNLOCK", s.backendURL(id), body, "Content-Type", "application/json")
}

// unit fetches GET /v1/units/<id>; nil when it is 404.
func (s *server) unit(t *testing.T, id string) *store.Unit {
	t.Helper()
	r := do(t, http.MethodGet, s.unitURL(id, ""), nil)
	if r.status == http.StatusNotFound {
		return nil
	}
	expect(t, "GET unit "+id, r, http.StatusOK)
	var u store.Unit
	mustJSON(t, r.body, &u)
	return &u
}

// versions lists the versions of id, newest first; none when the unit is
// unknown.
func (s *server) versions(t *testing.T, id string) []*store.Version {
	t.Helper()
	r := do(t, http.MethodGet, s.unitURL(id, "/versions"), nil)
	if r.status == http.StatusNotFound {
		return nil
	}
	expect(t, "GET versions of "+id, r, http.StatusOK)
	var vl httpapi.VersionList
	mustJSON(t, r.body, &vl)
	if vl.Count != len(vl.Versions) {
		t.Errorf("versions of %s: count %d but %d entries", id, vl.Count, len(vl.Versions))
	}
	return vl.Versions
}

// download returns the current state bytes of id via the management API.
func (s *server) download(t *testing.T, id string) []byte {
	t.Helper()
	r := do(t, http.MethodGet, s.unitURL(id, "/download"), nil)
	expect(t, "download "+id, r, http.StatusOK)
	return r.body
}

// backendState returns the state bytes of id via the http backend GET.
func (s *server) backendState(t *testing.T, id string) []byte {
	t.Helper()
	r := do(t, http.MethodGet, s.backendURL(id), nil)
	expect(t, "backend GET "+id, r, http.StatusOK)
	return r.body
}

// lockOf returns the lock of id from GET /v1/units/<id>/lock, nil on 404.
func (s *server) lockOf(t *testing.T, id string) *store.Lock {
	t.Helper()
	r := do(t, http.MethodGet, s.unitURL(id, "/lock"), nil)
	if r.status == http.StatusNotFound {
		return nil
	}
	expect(t, "GET lock of "+id, r, http.StatusOK)
	var l store.Lock
	mustJSON(t, r.body, &l)
	return &l
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, tail(string(b), 300), err)
	}
}

// ---------------------------------------------------------------------------
// Request log

// syncBuffer is a goroutine-safe log sink.
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

// logLine is one line of the server log.
type logLine struct {
	Level     string `json:"level"`
	Message   string `json:"message"`
	Method    string `json:"method"`
	Route     string `json:"route"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
	Principal string `json:"principal"`
	Event     string `json:"event"`
	Unit      string `json:"unit"`
	LockID    string `json:"lock_id"`
}

// logLines parses the server log so far.
func (s *server) logLines(t *testing.T) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(s.log.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("server log line is not JSON: %q", sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// requests returns the request lines of the server log on route.
func (s *server) requests(t *testing.T, route string) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range s.logLines(t) {
		if l.Message == "request" && l.Route == route {
			out = append(out, l)
		}
	}
	return out
}

const backendRoute = "/v1/backend/*path"
