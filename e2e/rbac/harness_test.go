// Package rbac runs the real terraform binary against the real server
// wiring with authentication and RBAC on (httpapi.NewServer with an
// authn.Authenticator, plus tfe.Register), served over the self-signed TLS
// of httpapi.SelfSignedTLS on 127.0.0.1:0, so that both the http backend
// and the cloud block can be used by principals with different roles.
//
// terraform is found through OPENTACO_TERRAFORM, else on PATH; when it is
// missing the test fails under CI and skips elsewhere. (The helpers are
// copied from e2e and e2e/cloud because test files of another package
// cannot be imported.) Every run gets its own HOME, TF_DATA_DIR, a CLI
// config file holding only a credentials block for the server (the cloud
// block's token), TF_HTTP_USERNAME/TF_HTTP_PASSWORD (the http backend's),
// SSL_CERT_FILE = the server's CA, TF_IN_AUTOMATION=1,
// CHECKPOINT_DISABLE=1 and TF_INPUT=0, and nothing else from the TF_*
// environment of the caller. Configurations use built-ins only.
package rbac

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/opentaco/opentaco/tfe"
)

// ---------------------------------------------------------------------------
// terraform

var terraformLogged sync.Once

// findTerraform locates terraform, or fails (CI) / skips (elsewhere).
func findTerraform(t *testing.T) string {
	t.Helper()
	path := os.Getenv("OPENTACO_TERRAFORM")
	if path == "" {
		path, _ = exec.LookPath("terraform")
	}
	if fi, err := os.Stat(path); path == "" || err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		msg := fmt.Sprintf("terraform not found (looked at %q): set OPENTACO_TERRAFORM or put terraform on PATH", path)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	terraformLogged.Do(func() {
		cmd := exec.Command(path, "version")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1"}
		out, _ := cmd.Output()
		line, _, _ := strings.Cut(string(out), "\n")
		t.Logf("using terraform: %s (%s)", line, path)
	})
	return path
}

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring with RBAC on a TLS loopback port.
type server struct {
	URL    string // https://localhost:<port>
	Host   string // localhost:<port>
	CAPath string
	DB     *store.DB
	HTTP   *http.Client // trusts the CA
	tokens map[string]string
	log    *syncBuffer
	mu     sync.Mutex
	bad    []string // 5xx answers
}

// startServer starts the server, makes the bootstrap admin token, and
// mints API tokens for walt (writer), rita (reader) and carl (a custom
// role: every unit action on team-a/*, but no delete on team-a/prod/*).
func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	auth, err := authn.New(authn.Config{Store: db, Issuer: "https://" + host})
	if err != nil {
		t.Fatal(err)
	}
	tokPath, err := auth.Bootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	h := httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.New(logBuf).With().Timestamp().Logger(), Auth: auth})
	tfe.Register(h)
	tlsCfg, caPath, err := httpapi.SelfSignedTLS(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA file %s holds no certificate", caPath)
	}
	s := &server{URL: "https://" + host, Host: host, CAPath: caPath, DB: db, log: logBuf,
		tokens: map[string]string{"admin": strings.TrimSpace(string(admin))},
		HTTP:   &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	hs := &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if rec.status >= 500 {
			s.mu.Lock()
			s.bad = append(s.bad, fmt.Sprintf("%d %s %s", rec.status, r.Method, r.URL.Path))
			s.mu.Unlock()
		}
	})}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(tls.NewListener(ln, tlsCfg)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.HTTP.CloseIdleConnections()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		for _, b := range s.bad {
			t.Errorf("server answered %s (a refusal must never be a 5xx)", b)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logBuf.String(), 12000))
		}
	})

	s.must(t, "admin", http.MethodPost, "/v1/rbac/permissions", `{"name":"team-a","rules":[`+
		`{"effect":"allow","actions":["unit.*"],"resources":["team-a/*"]},`+
		`{"effect":"deny","actions":["unit.delete"],"resources":["team-a/prod/*"]}]}`, http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/roles", `{"name":"team-a","permissions":["team-a"]}`, http.StatusOK)
	for subject, role := range map[string]string{"walt": "writer", "rita": "reader", "carl": "team-a"} {
		s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", fmt.Sprintf(`{"subject":%q,"role":%q}`, subject, role), http.StatusCreated)
		a := s.must(t, "admin", http.MethodPost, "/v1/tokens", fmt.Sprintf(`{"name":"e2e","owner":%q}`, subject), http.StatusCreated)
		var ct struct{ Token string }
		if err := json.Unmarshal(a.body, &ct); err != nil || ct.Token == "" {
			t.Fatalf("token for %s: %s", subject, a)
		}
		s.tokens[subject] = ct.Token
	}
	return s
}

// response is a raw HTTP answer.
type response struct {
	status int
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, tail(string(r.body), 600)) }

// do sends one request as who (a name of s.tokens) to path.
func (s *server) do(t *testing.T, who, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.tokens[who])
	req.Header.Set("Content-Type", "application/json")
	res, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, body: b}
}

func (s *server) must(t *testing.T, who, method, path, body string, want int) response {
	t.Helper()
	r := s.do(t, who, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s %s: %s, want %d", who, method, path, r, want)
	}
	return r
}

// unit reads a unit straight from the store.
func (s *server) unit(t *testing.T, id string) *store.Unit {
	t.Helper()
	u, err := s.DB.GetUnit(id)
	if err != nil {
		t.Fatalf("unit %s: %v", id, err)
	}
	return u
}

// audit returns the audit records of unit id, newest first.
func (s *server) audit(t *testing.T, id string) []*store.AuditRecord {
	t.Helper()
	recs, err := s.DB.Audit(store.AuditQuery{Unit: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// ---------------------------------------------------------------------------
// Configurations and runs

// config is one sandboxed configuration: sandbox/cfg holds the fixture
// and backend.tf, sandbox/home is HOME, sandbox/tfdata TF_DATA_DIR,
// sandbox/cli.tfrc the CLI config with the credentials block.
type config struct {
	srv     *server
	tf      string
	sandbox string
	dir     string
	token   string
}

// newConfig copies testdata/<fixture> into a sandbox with backend.tf =
// backendHCL, acting with the token of who.
func newConfig(t *testing.T, srv *server, tf, fixture, backendHCL, who string) *config {
	t.Helper()
	sandbox := t.TempDir()
	c := &config{srv: srv, tf: tf, sandbox: sandbox, dir: filepath.Join(sandbox, "cfg")}
	for _, d := range []string{c.dir, filepath.Join(sandbox, "home"), filepath.Join(sandbox, "tfdata")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
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
	writeFile(t, filepath.Join(c.dir, "backend.tf"), []byte(backendHCL))
	c.actAs(t, who)
	return c
}

// actAs makes later runs use the token of who, in the credentials block
// (cloud block) and TF_HTTP_PASSWORD (http backend).
func (c *config) actAs(t *testing.T, who string) {
	t.Helper()
	c.token = c.srv.tokens[who]
	if c.token == "" {
		t.Fatalf("no token for %s", who)
	}
	writeFile(t, filepath.Join(c.sandbox, "cli.tfrc"), fmt.Appendf(nil, "credentials %q {\n  token = %q\n}\n", c.srv.Host, c.token))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// httpBackend is the backend "http" block for unit id (real slashes), with
// LOCK/UNLOCK on the same address.
func (s *server) httpBackend(id string) string {
	addr := s.URL + "/v1/backend/" + id
	return fmt.Sprintf("terraform {\n  backend \"http\" {\n    address        = %q\n    lock_address   = %q\n    unlock_address = %q\n  }\n}\n", addr, addr, addr)
}

// cloudBlock is the cloud block for workspace ws.
func (s *server) cloudBlock(ws string) string {
	return fmt.Sprintf("terraform {\n  cloud {\n    hostname     = %q\n    organization = \"acme\"\n    workspaces {\n      name = %q\n    }\n  }\n}\n", s.Host, ws)
}

// result is the outcome of one run; output has ANSI colours removed.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) out() string { return r.stdout + "\n" + r.stderr }

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

const runTimeout = 3 * time.Minute

func (c *config) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.tf, args...)
	cmd.Dir = c.dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(c.sandbox, "home"),
		"TMPDIR=" + os.TempDir(),
		"TF_CLI_CONFIG_FILE=" + filepath.Join(c.sandbox, "cli.tfrc"),
		"TF_DATA_DIR=" + filepath.Join(c.sandbox, "tfdata"),
		"TF_HTTP_USERNAME=x",
		"TF_HTTP_PASSWORD=" + c.token,
		"SSL_CERT_FILE=" + c.srv.CAPath,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"TF_INPUT=0",
	}
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = strings.NewReader("")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: ansi.ReplaceAllString(stdout.String(), ""), stderr: ansi.ReplaceAllString(stderr.String(), "")}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.code = -1
		t.Errorf("terraform %s: timed out after %s", strings.Join(args, " "), runTimeout)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		res.code = -1
		t.Errorf("terraform %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("terraform %s → exit %d in %s", strings.Join(args, " "), res.code, time.Since(start).Round(time.Millisecond))
	if res.code != 0 {
		t.Logf("output:\n%s", tail(res.out(), 3000))
	}
	return res
}

func (c *config) mustRun(t *testing.T, args ...string) result {
	t.Helper()
	res := c.run(t, args...)
	if res.code != 0 {
		t.Fatalf("terraform %s: exit %d, want 0", strings.Join(args, " "), res.code)
	}
	return res
}

// mustFail runs terraform and fails the test unless it exits 1 with an
// output holding every one of wants.
func (c *config) mustFail(t *testing.T, args []string, wants ...string) result {
	t.Helper()
	res := c.run(t, args...)
	if res.code != 1 {
		t.Errorf("terraform %s: exit %d, want 1; output:\n%s", strings.Join(args, " "), res.code, tail(res.out(), 2000))
	}
	for _, w := range wants {
		if !strings.Contains(res.out(), w) {
			t.Errorf("terraform %s: output lacks %q:\n%s", strings.Join(args, " "), w, tail(res.out(), 2000))
		}
	}
	return res
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
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

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

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
