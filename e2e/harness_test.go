// Package e2e runs the real terraform and tofu binaries against the real
// server wiring (httpapi.NewServer over a bbolt store in t.TempDir()),
// started in-process on 127.0.0.1:0.
//
// The harness is package e2etest: tools are found through
// OPENTACO_TERRAFORM (else terraform on PATH) and OPENTACO_TOFU (else the
// cache of .ci/tools.sh); a missing tool fails the test when CI is set and
// skips it otherwise. Every tool run gets its own HOME, an empty CLI config
// file, TF_DATA_DIR, TF_IN_AUTOMATION=1, CHECKPOINT_DISABLE=1 and
// TF_INPUT=0, and nothing else from the TF_* environment of the caller;
// configurations use built-ins only, so nothing leaves the loopback
// interface.
package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// writeConfig makes a sandbox holding the fixture testdata/backend/<fixture>
// and backend.tf = backendHCL, with an empty CLI config file and its own
// TF_DATA_DIR.
func writeConfig(t *testing.T, fixture, backendHCL string) *e2etest.Sandbox {
	t.Helper()
	return e2etest.NewSandbox(t, e2etest.SandboxConfig{Fixture: filepath.Join("testdata", "backend", fixture), Backend: backendHCL})
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

// ---------------------------------------------------------------------------
// Server

// server is the real server wiring on a loopback port, authentication
// disabled; its request log is kept for the test to inspect and printed
// if the test fails.
type server struct {
	*e2etest.Server
}

func startServer(t *testing.T) *server {
	t.Helper()
	return &server{e2etest.StartServer(t, e2etest.ServerOptions{})}
}

// httpBackend is HB(id): the backend "http" block for unit id, the ID
// percent-encoded in the address (team/app → team%2Fapp) unless
// o.rawSlashes is set.
func (s *server) httpBackend(id string, o backendOpts) string {
	addr := s.BackendURL(id)
	if o.rawSlashes {
		addr = s.URL + "/v1/backend/" + id
	}
	return e2etest.HTTPBackend(addr, o.postDelete)
}

// lockRaw sends LOCK to the backend address of id with LB(lockID, who).
func (s *server) lockRaw(t *testing.T, id, lockID, who string) e2etest.Response {
	t.Helper()
	return s.lockVia(t, id, backendOpts{}, e2etest.LockInfo(lockID, who))
}

// lockVia takes a lock the way a client configured with o does: LOCK on
// the address, or POST on <address>/lock.
func (s *server) lockVia(t *testing.T, id string, o backendOpts, body string) e2etest.Response {
	t.Helper()
	if o.postDelete {
		return s.Do(t, http.MethodPost, s.BackendURL(id)+"/lock", "", []byte(body), "Content-Type", "application/json")
	}
	return s.Do(t, "LOCK", s.BackendURL(id), "", []byte(body), "Content-Type", "application/json")
}

// unlockVia releases a lock the way a client configured with o does:
// UNLOCK on the address, or DELETE on <address>/lock. A nil body sends
// none, with Content-Type application/json all the same, as
// `terraform force-unlock` does.
func (s *server) unlockVia(t *testing.T, id string, o backendOpts, body []byte) e2etest.Response {
	t.Helper()
	if o.postDelete {
		return s.Do(t, http.MethodDelete, s.BackendURL(id)+"/lock", "", body, "Content-Type", "application/json")
	}
	return s.Do(t, "UNLOCK", s.BackendURL(id), "", body, "Content-Type", "application/json")
}

// backendState returns the state bytes of id via the http backend GET.
func (s *server) backendState(t *testing.T, id string) []byte {
	t.Helper()
	r := s.Do(t, http.MethodGet, s.BackendURL(id), "", nil)
	e2etest.Expect(t, "backend GET "+id, r, http.StatusOK)
	return r.Body
}

// ---------------------------------------------------------------------------
// Request log

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
	sc := bufio.NewScanner(strings.NewReader(s.Log.String()))
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
