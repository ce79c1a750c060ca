// Package auth runs the real terraform and tofu binaries against the real
// server wiring with authentication on (httpapi.NewServer with an
// authn.Authenticator over a bbolt store in t.TempDir()), started
// in-process on plain http at 127.0.0.1:0, through the http backend with
// TF_HTTP_USERNAME=x and TF_HTTP_PASSWORD=<token>.
//
// The harness is package e2etest: tools are found through
// OPENTACO_TERRAFORM (else terraform on PATH) and OPENTACO_TOFU (else the
// cache of .ci/tools.sh); a missing tool fails the test under CI and skips
// it elsewhere. Every tool run gets its own HOME, an empty CLI config file,
// TF_DATA_DIR, TF_IN_AUTOMATION=1, CHECKPOINT_DISABLE=1, TF_INPUT=0 and
// the TF_HTTP_* credentials of the run, and nothing else from the TF_*
// environment of the caller.
//
// The server records every request with the token it carried and the
// status it got (server.Requests), so tests can say what happened to each
// credential and when.
package auth

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/httpapi"
)

// writeConfig makes a sandbox holding testdata/<fixture> and backend.tf =
// backendHCL, with an empty CLI config file and its own TF_DATA_DIR.
func writeConfig(t *testing.T, fixture, backendHCL string) *e2etest.Sandbox {
	t.Helper()
	return e2etest.NewSandbox(t, e2etest.SandboxConfig{Fixture: filepath.Join("testdata", fixture), Backend: backendHCL})
}

// asToken are the run options presenting token as the http backend's
// basic-auth password.
func asToken(token string) e2etest.RunOpts {
	return e2etest.RunOpts{Env: []string{"TF_HTTP_USERNAME=x", "TF_HTTP_PASSWORD=" + token}}
}

// run runs tl in sb, presenting token to the http backend.
func run(t *testing.T, tl e2etest.Tool, sb *e2etest.Sandbox, token string, args ...string) e2etest.Result {
	t.Helper()
	return sb.RunWith(t, tl, asToken(token), args...)
}

// mustRun is run, failing the test unless tl exits 0.
func mustRun(t *testing.T, tl e2etest.Tool, sb *e2etest.Sandbox, token string, args ...string) e2etest.Result {
	t.Helper()
	return sb.MustRunWith(t, tl, asToken(token), args...)
}

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring with authentication on, recording
// every request; its management helpers send the bootstrap admin token.
type server struct {
	*e2etest.Server
}

func startServer(t *testing.T) *server {
	t.Helper()
	return &server{e2etest.StartServer(t, e2etest.ServerOptions{Auth: true, Bootstrap: true, Record: true})}
}

// httpBackend is HB(id) with the default LOCK/UNLOCK verbs.
func (s *server) httpBackend(id string) string {
	return e2etest.HTTPBackend(s.BackendURL(id), false)
}

// do sends one management request with token as the bearer credential.
func (s *server) do(t *testing.T, method, path, token string, body []byte) e2etest.Response {
	t.Helper()
	var hdr []string
	if body != nil {
		hdr = []string{"Content-Type", "application/json"}
	}
	return s.Do(t, method, path, token, body, hdr...)
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
	e2etest.Expect(t, "POST /v1/tokens "+string(b), r, http.StatusCreated)
	var ct httpapi.CreatedToken
	if err := json.Unmarshal(r.Body, &ct); err != nil || ct.APIToken == nil {
		t.Fatalf("created token %s: %v", r.Body, err)
	}
	return ct
}
