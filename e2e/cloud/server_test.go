package cloud

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
	"github.com/opentaco/opentaco/tfe"
)

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring (httpapi + tfe) on a TLS loopback port.
type server struct {
	URL    string // https://localhost:<port>
	Host   string // localhost:<port>, as written in cloud blocks
	CAPath string
	HTTP   *http.Client // trusts the CA; sends no credentials by itself
	V1     *httpapi.Client
	log    *syncBuffer
	reqs   *requestLog
}

// startServer starts httpapi.NewServer + tfe.Register over a fresh store
// with authentication disabled, served over the self-signed TLS of
// httpapi.SelfSignedTLS, and stops it when the test ends. When the test
// has failed it prints the server log; in every case it fails the test if
// any request was answered with a 5xx (TFE.md §2.3: go-tfe retries those
// up to 30 times, so a deterministic rejection must be a 4xx).
func startServer(t *testing.T) *server {
	t.Helper()
	dataDir := t.TempDir()
	db, err := store.Open(filepath.Join(dataDir, "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	h := httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.New(logBuf).With().Timestamp().Logger(), AuthDisabled: true})
	tfe.Register(h)
	tlsCfg, caPath, err := httpapi.SelfSignedTLS(dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	reqs := &requestLog{}
	hs := &http.Server{Handler: reqs.wrap(h), ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(tls.NewListener(ln, tlsCfg)) }()

	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA file %s holds no certificate", caPath)
	}
	hc := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		Timeout:   30 * time.Second,
	}
	host := fmt.Sprintf("localhost:%d", port)
	s := &server{URL: "https://" + host, Host: host, CAPath: caPath, HTTP: hc, log: logBuf, reqs: reqs}
	s.V1 = &httpapi.Client{BaseURL: s.URL, Token: tok3, HTTP: hc}
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
		for _, r := range reqs.all() {
			if r.status >= 500 {
				t.Errorf("server answered %d to %s %s (never use 5xx for a deterministic answer)", r.status, r.method, r.path)
			}
		}
		if t.Failed() {
			t.Logf("requests:\n%s", tail(reqs.String(), 12000))
			t.Logf("server log:\n%s", tail(logBuf.String(), 12000))
		}
	})
	return s
}

// tfePath is the path of a TFE API route: /tfe/api/v2 + p.
func tfePath(p string) string { return "/tfe/api/v2" + p }

// abs makes a server path absolute; absolute URLs pass unchanged.
func (s *server) abs(p string) string {
	if strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "http://") {
		return p
	}
	return s.URL + p
}

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, tail(string(r.body), 600))
}

// do sends one request to p (a server path or an absolute URL). token ""
// sends no Authorization header. A nil body sends none. hdr holds header
// name/value pairs.
func (s *server) do(t *testing.T, method, p, token string, body []byte, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.abs(p), rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, p, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, p, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// api sends a TFE API request the way go-tfe does (JSON:API content type
// and accept header, bearer token).
func (s *server) api(t *testing.T, method, p, token string, body []byte) response {
	t.Helper()
	hdr := []string{"Accept", "application/vnd.api+json"}
	if method != http.MethodGet {
		hdr = append(hdr, "Content-Type", "application/vnd.api+json")
	}
	return s.do(t, method, tfePath(p), token, body, hdr...)
}

// expect fails the test unless r has status want.
func expect(t *testing.T, what string, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, want, tail(string(r.body), 600))
	}
}

// expect4xx fails the test unless r has a 4xx status.
func expect4xx(t *testing.T, what string, r response) {
	t.Helper()
	if r.status < 400 || r.status > 499 {
		t.Errorf("%s: status %d, want 4xx; body %s", what, r.status, tail(string(r.body), 600))
	}
}

// ---------------------------------------------------------------------------
// JSON:API

// resource is one JSON:API resource object.
type resource struct {
	ID            string                     `json:"id"`
	Type          string                     `json:"type"`
	Attributes    map[string]any             `json:"attributes"`
	Relationships map[string]json.RawMessage `json:"relationships"`
}

func (r *resource) str(k string) string {
	v, _ := r.Attributes[k].(string)
	return v
}

// num returns a numeric attribute, and whether it was one.
func (r *resource) num(k string) (int64, bool) {
	f, ok := r.Attributes[k].(float64)
	return int64(f), ok
}

// boolean returns a boolean attribute, and whether it was one.
func (r *resource) boolean(k string) (bool, bool) {
	b, ok := r.Attributes[k].(bool)
	return b, ok
}

// apiError is one entry of a JSON:API errors array.
type apiError struct {
	Status string `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

type document struct {
	Data   json.RawMessage `json:"data"`
	Errors []apiError      `json:"errors"`
	Meta   json.RawMessage `json:"meta"`
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, tail(string(b), 300), err)
	}
}

// one decodes a single-resource document and checks its type.
func one(t *testing.T, r response, typ string) *resource {
	t.Helper()
	var doc document
	mustJSON(t, r.body, &doc)
	var res resource
	if len(doc.Data) == 0 || string(doc.Data) == "null" {
		t.Fatalf("document has no data: %s", tail(string(r.body), 300))
	}
	mustJSON(t, doc.Data, &res)
	if res.Type != typ || res.ID == "" {
		t.Fatalf("data has type %q id %q, want type %q and an id: %s", res.Type, res.ID, typ, tail(string(r.body), 300))
	}
	return &res
}

// many decodes a list document and checks each item's type.
func many(t *testing.T, r response, typ string) []*resource {
	t.Helper()
	var doc document
	mustJSON(t, r.body, &doc)
	var out []*resource
	mustJSON(t, doc.Data, &out)
	for _, res := range out {
		if res.Type != typ {
			t.Fatalf("list item has type %q, want %q", res.Type, typ)
		}
	}
	return out
}

// errorsOf decodes a JSON:API error document; it fails the test if the
// body is not one.
func errorsOf(t *testing.T, what string, r response) []apiError {
	t.Helper()
	var doc document
	if err := json.Unmarshal(r.body, &doc); err != nil || len(doc.Errors) == 0 {
		t.Errorf("%s: body is not a JSON:API error document: %s", what, tail(string(r.body), 300))
		return nil
	}
	return doc.Errors
}

// workspace reads organizations/acme/workspaces/<name>.
func (s *server) workspace(t *testing.T, name string) *resource {
	t.Helper()
	r := s.api(t, http.MethodGet, "/organizations/"+org+"/workspaces/"+name, tok, nil)
	expect(t, "GET workspace "+name, r, http.StatusOK)
	return one(t, r, "workspaces")
}

// locked reports the locked attribute of workspace name.
func (s *server) locked(t *testing.T, name string) bool {
	t.Helper()
	ws := s.workspace(t, name)
	l, ok := ws.boolean("locked")
	if !ok {
		t.Fatalf("workspace %s: attribute locked is %v, want a boolean", name, ws.Attributes["locked"])
	}
	return l
}

// createWorkspace creates a workspace through the TFE API (no tags).
func (s *server) createWorkspace(t *testing.T, name string) *resource {
	t.Helper()
	body := fmt.Sprintf(`{"data":{"type":"workspaces","attributes":{"name":%q}}}`, name)
	r := s.api(t, http.MethodPost, "/organizations/"+org+"/workspaces", tok, []byte(body))
	expect(t, "create workspace "+name, r, http.StatusCreated)
	return one(t, r, "workspaces")
}

// unitOf is the unit ID of a workspace name (myapp__prod → myapp/prod).
func unitOf(ws string) string { return strings.ReplaceAll(ws, "__", "/") }

// versions lists the /v1 versions of the unit behind workspace ws, newest
// first.
func (s *server) versions(t *testing.T, ws string) []*store.Version {
	t.Helper()
	vl, err := s.V1.Versions(context.Background(), unitOf(ws))
	if err != nil {
		t.Fatalf("versions of %s: %v", unitOf(ws), err)
	}
	return vl.Versions
}

// download returns the current /v1 state bytes behind workspace ws
// (version 0), or those of one version.
func (s *server) download(t *testing.T, ws string, version int64) []byte {
	t.Helper()
	b, err := s.V1.Download(context.Background(), unitOf(ws), version)
	if err != nil {
		t.Fatalf("download %s version %d: %v", unitOf(ws), version, err)
	}
	return b
}

// ---------------------------------------------------------------------------
// Request log (kept by a wrapper around the server's handler, so the tests
// do not depend on how the server names its routes)

type request struct {
	method, path string
	auth         bool
	status       int
	at           time.Time
}

type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		path, auth := r.URL.Path, r.Header.Get("Authorization") != ""
		h.ServeHTTP(rec, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, request{method: r.Method, path: path, auth: auth, status: rec.status, at: time.Now()})
		l.mu.Unlock()
	})
}

func (l *requestLog) all() []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]request(nil), l.reqs...)
}

// mark returns the current length of the log, for since.
func (l *requestLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// since returns the requests logged after mark m whose path ends in suffix.
func (l *requestLog) since(m int, method, suffix string) []request {
	var out []request
	for _, r := range l.all()[m:] {
		if (method == "" || r.method == method) && strings.HasSuffix(r.path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

func (l *requestLog) String() string {
	var b strings.Builder
	for _, r := range l.all() {
		fmt.Fprintf(&b, "%s %s %s auth=%v → %d\n", r.at.Format("15:04:05.000"), r.method, r.path, r.auth, r.status)
	}
	return b.String()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (rec *statusRecorder) WriteHeader(code int) {
	if !rec.wrote {
		rec.status, rec.wrote = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *statusRecorder) Write(b []byte) (int, error) {
	rec.wrote = true
	return rec.ResponseWriter.Write(b)
}

func (rec *statusRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

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
