package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring (httpapi + tfe) on a TLS loopback port,
// authentication disabled. Its HTTP client trusts the CA and sends no
// credentials by itself; V1 is a /v1 client sending tok3.
type server struct {
	*e2etest.Server
	V1 *httpapi.Client
}

// startServer starts httpapi.NewServer + tfe.Register over a fresh store
// with authentication disabled, served over the self-signed TLS of
// httpapi.SelfSignedTLS, and stops it when the test ends. It records every
// request (server.Requests) and fails the test if any was answered with a
// 5xx (TFE.md §2.3: go-tfe retries those up to 30 times, so a
// deterministic rejection must be a 4xx).
func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{Server: e2etest.StartServer(t, e2etest.ServerOptions{TLS: true, TFE: true, No5xx: true})}
	s.V1 = &httpapi.Client{BaseURL: s.URL, Token: tok3, HTTP: s.HTTP}
	return s
}

// tfePath is the path of a TFE API route: /tfe/api/v2 + p.
func tfePath(p string) string { return "/tfe/api/v2" + p }

// api sends a TFE API request the way go-tfe does (JSON:API content type
// and accept header, bearer token).
func (s *server) api(t *testing.T, method, p, token string, body []byte) e2etest.Response {
	t.Helper()
	hdr := []string{"Accept", "application/vnd.api+json"}
	if method != http.MethodGet {
		hdr = append(hdr, "Content-Type", "application/vnd.api+json")
	}
	return s.Do(t, method, tfePath(p), token, body, hdr...)
}

// expect4xx fails the test unless r has a 4xx status.
func expect4xx(t *testing.T, what string, r e2etest.Response) {
	t.Helper()
	if r.Status < 400 || r.Status > 499 {
		t.Errorf("%s: status %d, want 4xx; body %s", what, r.Status, e2etest.Tail(string(r.Body), 600))
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

// one decodes a single-resource document and checks its type.
func one(t *testing.T, r e2etest.Response, typ string) *resource {
	t.Helper()
	var doc document
	e2etest.MustJSON(t, r.Body, &doc)
	var res resource
	if len(doc.Data) == 0 || string(doc.Data) == "null" {
		t.Fatalf("document has no data: %s", e2etest.Tail(string(r.Body), 300))
	}
	e2etest.MustJSON(t, doc.Data, &res)
	if res.Type != typ || res.ID == "" {
		t.Fatalf("data has type %q id %q, want type %q and an id: %s", res.Type, res.ID, typ, e2etest.Tail(string(r.Body), 300))
	}
	return &res
}

// many decodes a list document and checks each item's type.
func many(t *testing.T, r e2etest.Response, typ string) []*resource {
	t.Helper()
	var doc document
	e2etest.MustJSON(t, r.Body, &doc)
	var out []*resource
	e2etest.MustJSON(t, doc.Data, &out)
	for _, res := range out {
		if res.Type != typ {
			t.Fatalf("list item has type %q, want %q", res.Type, typ)
		}
	}
	return out
}

// errorsOf decodes a JSON:API error document; it fails the test if the
// body is not one.
func errorsOf(t *testing.T, what string, r e2etest.Response) []apiError {
	t.Helper()
	var doc document
	if err := json.Unmarshal(r.Body, &doc); err != nil || len(doc.Errors) == 0 {
		t.Errorf("%s: body is not a JSON:API error document: %s", what, e2etest.Tail(string(r.Body), 300))
		return nil
	}
	return doc.Errors
}

// workspace reads organizations/acme/workspaces/<name>.
func (s *server) workspace(t *testing.T, name string) *resource {
	t.Helper()
	r := s.api(t, http.MethodGet, "/organizations/"+org+"/workspaces/"+name, tok, nil)
	e2etest.Expect(t, "GET workspace "+name, r, http.StatusOK)
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
	e2etest.Expect(t, "create workspace "+name, r, http.StatusCreated)
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
