// Package rbac runs the real terraform binary against the real server
// wiring with authentication and RBAC on (httpapi.NewServer with an
// authn.Authenticator, plus tfe.Register), served over the self-signed TLS
// of httpapi.SelfSignedTLS on 127.0.0.1:0, so that both the http backend
// and the cloud block can be used by principals with different roles.
//
// The harness is package e2etest: terraform is found through
// OPENTACO_TERRAFORM, else on PATH; when it is missing the test fails
// under CI and skips elsewhere. Every run gets its own HOME, TF_DATA_DIR,
// a CLI config file holding only a credentials block for the server (the
// cloud block's token), TF_HTTP_USERNAME/TF_HTTP_PASSWORD (the http
// backend's), SSL_CERT_FILE = the server's CA, TF_IN_AUTOMATION=1,
// CHECKPOINT_DISABLE=1 and TF_INPUT=0, and nothing else from the TF_*
// environment of the caller. Configurations use built-ins only.
package rbac

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/store"
)

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring with RBAC on a TLS loopback port; it
// fails the test if any request is answered with a 5xx (a refusal must
// never be one).
type server struct {
	*e2etest.Server
	tokens map[string]string // API token per principal name
}

// startServer starts the server, makes the bootstrap admin token, and
// mints API tokens for walt (writer), rita (reader) and carl (a custom
// role: every unit action on team-a/*, but no delete on team-a/prod/*).
func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{Server: e2etest.StartServer(t, e2etest.ServerOptions{TLS: true, TFE: true, Auth: true, Bootstrap: true, No5xx: true})}
	s.tokens = map[string]string{"admin": s.Admin}

	s.must(t, "admin", http.MethodPost, "/v1/rbac/permissions", `{"name":"team-a","rules":[`+
		`{"effect":"allow","actions":["unit.*"],"resources":["team-a/*"]},`+
		`{"effect":"deny","actions":["unit.delete"],"resources":["team-a/prod/*"]}]}`, http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/roles", `{"name":"team-a","permissions":["team-a"]}`, http.StatusOK)
	for subject, role := range map[string]string{"walt": "writer", "rita": "reader", "carl": "team-a"} {
		s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", fmt.Sprintf(`{"subject":%q,"role":%q}`, subject, role), http.StatusCreated)
		a := s.must(t, "admin", http.MethodPost, "/v1/tokens", fmt.Sprintf(`{"name":"e2e","owner":%q}`, subject), http.StatusCreated)
		var ct struct{ Token string }
		if err := json.Unmarshal(a.Body, &ct); err != nil || ct.Token == "" {
			t.Fatalf("token for %s: %s", subject, a)
		}
		s.tokens[subject] = ct.Token
	}
	return s
}

// do sends one request as who (a name of s.tokens) to path, with a JSON
// content type; body "" sends none.
func (s *server) do(t *testing.T, who, method, path, body string) e2etest.Response {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return s.Do(t, method, path, s.tokens[who], b, "Content-Type", "application/json")
}

func (s *server) must(t *testing.T, who, method, path, body string, want int) e2etest.Response {
	t.Helper()
	r := s.do(t, who, method, path, body)
	if r.Status != want {
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

// httpBackend is the backend "http" block for unit id (real slashes), with
// LOCK/UNLOCK on the same address.
func (s *server) httpBackend(id string) string {
	return e2etest.HTTPBackend(s.URL+"/v1/backend/"+id, false)
}

// cloudBlock is the cloud block for workspace ws.
func (s *server) cloudBlock(ws string) string { return e2etest.CloudBlock(s.Host, "acme", ws) }

// ---------------------------------------------------------------------------
// Configurations and runs

// config is one sandboxed configuration: the fixture and backend.tf, its
// own TF_DATA_DIR, and a CLI config with the credentials block; runs act
// with the token of one principal.
type config struct {
	srv   *server
	tf    e2etest.Tool
	sb    *e2etest.Sandbox
	token string
}

// newConfig copies testdata/<fixture> into a sandbox with backend.tf =
// backendHCL, acting with the token of who.
func newConfig(t *testing.T, srv *server, tf e2etest.Tool, fixture, backendHCL, who string) *config {
	t.Helper()
	c := &config{srv: srv, tf: tf, sb: e2etest.NewSandbox(t, e2etest.SandboxConfig{
		Fixture: filepath.Join("testdata", fixture),
		Backend: backendHCL,
		CAFile:  srv.CAPath,
	})}
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
	c.sb.SetCLIConfig(t, e2etest.CredentialsBlock(c.srv.Host, c.token))
}

// opts are the run options: the http backend's credentials and an empty
// stdin.
func (c *config) opts() e2etest.RunOpts {
	return e2etest.RunOpts{Env: []string{"TF_HTTP_USERNAME=x", "TF_HTTP_PASSWORD=" + c.token}, Stdin: strings.NewReader("")}
}

func (c *config) mustRun(t *testing.T, args ...string) e2etest.Result {
	t.Helper()
	return c.sb.MustRunWith(t, c.tf, c.opts(), args...)
}

// mustFail runs terraform and fails the test unless it exits 1 with an
// output holding every one of wants.
func (c *config) mustFail(t *testing.T, args []string, wants ...string) e2etest.Result {
	t.Helper()
	return c.sb.MustFailWith(t, c.tf, c.opts(), args, wants...)
}
