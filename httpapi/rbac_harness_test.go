package httpapi_test

// The RBAC matrix: the real server wiring (httpapi + tfe, authentication
// on) serves one principal per kind of grant, and every principal tries
// every unit action of every surface on units of every namespace, with
// every spelling of the unit ID. The expected answer comes from a model
// of the grants written here, independently of the code under test:
// allowed → the route's success status; readable but not allowed → 403;
// not readable → 404 (create routes: 403 either way). Every cell also
// checks that a refused call changed nothing and left no audit record,
// and that an allowed change left exactly the expected records, by the
// caller, with the request ID of the response.

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
	"github.com/opentaco/opentaco/tfe"
)

// ---------------------------------------------------------------------------
// Principals and the model of their grants

// rbPrincipal is one caller of the matrix and the model of what it may do.
type rbPrincipal struct {
	name    string   // matrix name
	subject string   // token owner
	groups  []string // token groups
	may     func(action, id string) bool
}

func rbIn(action string, actions ...string) bool { return slices.Contains(actions, action) }

// rbPrincipals: the three built-in roles, a custom role (allow unit.* on
// team-a/*, deny unit.delete on team-a/prod/*), a role held through an
// OIDC group (read, write, lock on team-b/*) and a principal with no role.
var rbPrincipals = []rbPrincipal{
	{name: "admin", subject: authn.AdminSubject, may: func(string, string) bool { return true }},
	{name: "writer", subject: "walt", may: func(a, _ string) bool {
		return rbIn(a, store.ActionRead, store.ActionWrite, store.ActionLock)
	}},
	{name: "reader", subject: "rita", may: func(a, _ string) bool { return a == store.ActionRead }},
	{name: "custom", subject: "carl", may: func(a, id string) bool {
		return strings.HasPrefix(a, "unit.") && strings.HasPrefix(id, "team-a/") &&
			(a != store.ActionDelete || !strings.HasPrefix(id, "team-a/prod/"))
	}},
	{name: "group", subject: "gina", groups: []string{"team-b-devs"}, may: func(a, id string) bool {
		return strings.HasPrefix(id, "team-b/") && rbIn(a, store.ActionRead, store.ActionWrite, store.ActionLock)
	}},
	{name: "none", subject: "nemo", may: func(string, string) bool { return false }},
}

// rbNamespaces are the unit-ID prefixes every cell is tried in.
var rbNamespaces = []string{"team-a/app/", "team-a/prod/", "team-b/", "other/"}

// ---------------------------------------------------------------------------
// Server

// rbServer is the real server wiring with authentication on, TFE
// registered, on 127.0.0.1:0, with the matrix principals set up through
// the API.
type rbServer struct {
	URL    string
	db     *store.DB
	auth   *authn.Authenticator
	tokens map[string]string // principal name → API token
	http   *http.Client
	n      atomic.Int64
}

// rbStatusLog records every status the server answers, so the test can
// fail on any 5xx.
type rbStatusLog struct {
	mu   sync.Mutex
	bad  []string
	next http.Handler
}

func (l *rbStatusLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &rbRecorder{ResponseWriter: w, status: http.StatusOK}
	l.next.ServeHTTP(rec, r)
	if rec.status >= 500 {
		l.mu.Lock()
		l.bad = append(l.bad, fmt.Sprintf("%d %s %s", rec.status, r.Method, r.URL.RawPath))
		l.mu.Unlock()
	}
}

type rbRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *rbRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *rbRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// newRBServer starts the server and creates, as the bootstrap admin, the
// custom and group roles and an API token for every matrix principal.
func newRBServer(t *testing.T) *rbServer {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir+"/opentaco.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Bolt().NoSync = true // thousands of small commits; durability is tested elsewhere
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	auth, err := authn.New(authn.Config{Store: db, Issuer: base})
	if err != nil {
		t.Fatal(err)
	}
	path, err := auth.Bootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.Nop(), Auth: auth})
	tfe.Register(srv)
	statuses := &rbStatusLog{next: srv}
	hs := &http.Server{Handler: statuses, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	s := &rbServer{URL: base, db: db, auth: auth, tokens: map[string]string{"admin": strings.TrimSpace(string(admin))},
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.http.CloseIdleConnections() // else Shutdown waits 5s for connections dialled but never used
		_ = hs.Shutdown(ctx)
		if err := db.Close(); err != nil {
			t.Error(err)
		}
		statuses.mu.Lock()
		defer statuses.mu.Unlock()
		for _, b := range statuses.bad {
			t.Errorf("server answered %s", b)
		}
	})

	s.must(t, "admin", http.MethodPost, "/v1/rbac/permissions", rbJSON(store.Permission{Name: "team-a", Rules: []store.Rule{
		{Effect: "allow", Actions: []string{"unit.*"}, Resources: []string{"team-a/*"}},
		{Effect: "deny", Actions: []string{store.ActionDelete}, Resources: []string{"team-a/prod/*"}},
	}}), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/permissions", rbJSON(store.Permission{Name: "team-b", Rules: []store.Rule{
		{Effect: "allow", Actions: []string{store.ActionRead, store.ActionWrite, store.ActionLock}, Resources: []string{"team-b/*"}},
	}}), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/roles", rbJSON(store.Role{Name: "team-a", Permissions: []string{"team-a"}}), http.StatusOK)
	s.must(t, "admin", http.MethodPut, "/v1/rbac/roles/team-b", rbJSON(store.Role{Permissions: []string{"team-b"}}), http.StatusOK)
	for _, a := range []store.Assignment{
		{Subject: "walt", Role: "writer"}, {Subject: "rita", Role: "reader"},
		{Subject: "carl", Role: "team-a"}, {Group: "team-b-devs", Role: "team-b"},
	} {
		s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", rbJSON(a), http.StatusCreated)
	}
	for _, p := range rbPrincipals[1:] {
		s.tokens[p.name] = s.mintToken(t, p.subject, p.groups)
	}
	return s
}

// mint makes, as the admin, an API token for subject with groups.
func (s *rbServer) mint(t *testing.T, subject string, groups []string) httpapi.CreatedToken {
	t.Helper()
	a := s.must(t, "admin", http.MethodPost, "/v1/tokens", rbJSON(map[string]any{"name": "rbac-" + subject, "owner": subject, "groups": groups}), http.StatusCreated)
	var ct httpapi.CreatedToken
	rbDecode(t, a.body, &ct)
	if ct.Owner != subject || ct.Token == "" || ct.ID == "" {
		t.Fatalf("minted token %+v, want one for %s", ct, subject)
	}
	return ct
}

// mintToken is mint returning the secret only.
func (s *rbServer) mintToken(t *testing.T, subject string, groups []string) string {
	t.Helper()
	return s.mint(t, subject, groups).Token
}

func (s *rbServer) principal(name string) rbPrincipal {
	for _, p := range rbPrincipals {
		if p.name == name {
			return p
		}
	}
	panic("unknown principal " + name)
}

// rbAnswer is a raw HTTP answer.
type rbAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a rbAnswer) String() string {
	b := string(a.body)
	if len(b) > 400 {
		b = b[:400] + "…"
	}
	return fmt.Sprintf("%d %s", a.status, b)
}

// call sends one request as principal who ("" = no credential) to path
// (already escaped). A nil body sends none; hdr holds name/value pairs.
func (s *rbServer) call(t *testing.T, who, method, path string, body []byte, hdr ...string) rbAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if who != "" {
		tok, ok := s.tokens[who]
		if !ok {
			tok = who // a raw credential
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rbAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

// must is call that fails the test unless the status is want.
func (s *rbServer) must(t *testing.T, who, method, path string, body []byte, want int) rbAnswer {
	t.Helper()
	a := s.call(t, who, method, path, body)
	if a.status != want {
		t.Fatalf("%s %s %s: %s, want %d", who, method, path, a, want)
	}
	return a
}

func rbJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func rbDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T from %.300s: %v", v, b, err)
	}
}

// rbState is a small state with one output.
func rbState(serial int) []byte {
	return fmt.Appendf(nil, `{"version":4,"terraform_version":"1.9.0","serial":%d,"lineage":"l-rbac","outputs":{"o":{"value":"x","type":"string"}},"resources":[]}`, serial)
}

// uid returns a fresh unit ID under prefix.
func (s *rbServer) uid(prefix string) string {
	return fmt.Sprintf("%sc%d", prefix, s.n.Add(1))
}

// auditOf returns the audit records written for request reqID since start.
func (s *rbServer) auditOf(t *testing.T, reqID string, start time.Time) []*store.AuditRecord {
	t.Helper()
	recs, err := s.db.Audit(store.AuditQuery{Since: start.Add(-time.Millisecond), Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var out []*store.AuditRecord
	for _, r := range recs {
		if r.RequestID == reqID {
			out = append(out, r)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Unit fixtures and snapshots

// rbSetup is the state of a cell's unit before the call.
type rbSetup struct {
	absent bool   // no unit at all
	state  bool   // version 1 written
	lock   string // "" none, "admin": held by the admin as L-adm, "self": the caller's TFE lock
	src    bool   // a unit <id>-s with state (output o) in the same namespace
	edge   bool   // with src: the declared edge <id>-s:o → <id>
}

const rbAdminLock = "L-adm-7f3e"

func (s *rbServer) prepare(t *testing.T, id string, su rbSetup, p rbPrincipal) {
	t.Helper()
	if su.absent {
		return
	}
	if _, err := s.db.CreateUnit(id); err != nil {
		t.Fatal(err)
	}
	if su.state {
		if _, err := s.db.WriteState(id, rbState(1), store.WriteOptions{Who: "admin", Source: store.SourceAPI}); err != nil {
			t.Fatal(err)
		}
	}
	if su.src {
		if _, err := s.db.WriteState(id+"-s", rbState(1), store.WriteOptions{Who: "admin", Source: store.SourceAPI, Create: true}); err != nil {
			t.Fatal(err)
		}
	}
	if su.edge {
		s.must(t, "admin", http.MethodPut, "/v1/units/"+store.EncodeID(id)+"/dependencies",
			rbJSON(map[string]string{"from_unit_id": id + "-s", "from_output": "o"}), http.StatusCreated)
	}
	switch su.lock {
	case "admin":
		if _, err := s.db.LockUnit(id, store.Lock{ID: rbAdminLock, Who: "admin", Operation: "OperationTypeApply"}, "admin", false); err != nil {
			t.Fatal(err)
		}
	case "self":
		if _, err := s.db.LockUnit(id, store.Lock{ID: "tfe:" + p.subject, Who: p.subject, Operation: "tfe"}, p.subject, false); err != nil {
			t.Fatal(err)
		}
	}
}

// rbSnap is what a call may change about a unit.
type rbSnap struct {
	exists  bool
	current int64
	lock    string
	labels  int
}

func (s *rbServer) snap(t *testing.T, id string) rbSnap {
	t.Helper()
	u, err := s.db.GetUnit(id)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return rbSnap{}
	} else if err != nil {
		t.Fatal(err)
	}
	out := rbSnap{exists: true, current: u.CurrentVersion, labels: len(u.Labels)}
	if u.Lock != nil {
		out.lock = u.Lock.ID
	}
	return out
}

// Effects a successful call has on its unit.
const (
	rbEffNone     = ""
	rbEffVersion  = "version"
	rbEffLocked   = "locked"
	rbEffUnlocked = "unlocked"
	rbEffDeleted  = "deleted"
	rbEffCreated  = "created"
	rbEffLabels   = "labels"
)

func rbEffectOK(eff string, before, after rbSnap) bool {
	switch eff {
	case rbEffNone:
		return before == after
	case rbEffVersion:
		return after.exists && after.current == before.current+1 && after.lock == before.lock
	case rbEffLocked:
		return after.exists && before.lock == "" && after.lock != ""
	case rbEffUnlocked:
		return after.exists && before.lock != "" && after.lock == ""
	case rbEffDeleted:
		return before.exists && !after.exists
	case rbEffCreated:
		return !before.exists && after.exists
	case rbEffLabels:
		return after.exists && after.labels > before.labels
	}
	return false
}

// ---------------------------------------------------------------------------
// Spellings of a unit ID

// rbSpelling writes a canonical unit ID the way one surface accepts it.
type rbSpelling struct {
	name  string
	spell func(id string) string
}

var (
	rbSpV1Underscore = rbSpelling{"a__b", store.EncodeID}
	rbSpV1Percent    = rbSpelling{"a%2Fb", url.PathEscape}
	// a__b%2fc: both encodings in one ID, lower-case hex.
	rbSpV1Mixed = rbSpelling{"a__b%2fc", func(id string) string {
		first, rest, _ := strings.Cut(id, "/")
		return first + "__" + strings.ReplaceAll(rest, "/", "%2f")
	}}
	// %2Fa%2F%2Fb%2F: leading, trailing and repeated slashes, normalised away.
	rbSpV1Unnormalised = rbSpelling{"%2Fa%2F%2Fb%2F", func(id string) string {
		return "%2F" + strings.ReplaceAll(id, "/", "%2F%2F") + "%2F"
	}}
	rbSpBackendRaw     = rbSpelling{"a/b", func(id string) string { return id }}
	rbSpBackendPercent = rbSpelling{"a%2Fb", url.PathEscape}
	rbSpBackendUnnorm  = rbSpelling{"/a//b/", func(id string) string { return "/" + strings.ReplaceAll(id, "/", "//") + "/" }}
	rbSpWSID           = rbSpelling{"ws-a__b", func(id string) string { return "ws-" + store.EncodeID(id) }}
	rbSpWSIDPercent    = rbSpelling{"ws-a%2Fb", func(id string) string { return "ws-" + url.PathEscape(id) }}
	rbSpWSName         = rbSpelling{"a__b", store.EncodeID}
	rbSpWSNamePercent  = rbSpelling{"a%2Fb", url.PathEscape}
	rbSpOpaque         = rbSpelling{"opaque", func(id string) string { return id }} // the ID is inside an opaque token
	rbSpBody           = rbSpelling{"body a/b", func(id string) string { return id }}
	rbSpBodyUnnorm     = rbSpelling{"body /a//b/", func(id string) string { return "/" + strings.ReplaceAll(id, "/", "//") + "/" }}
)

// ---------------------------------------------------------------------------
// Actions

// rbAction is one route of one surface, called on one unit.
type rbAction struct {
	name      string
	surface   string   // "v1", "backend", "tfe": the error body shape
	need      []string // RBAC actions the call needs, all of them
	setup     rbSetup
	spellings []rbSpelling
	// req builds the call for the unit ID as spelled (and canonical).
	req      func(spelled, id string) (method, path string, body []byte)
	ok       int      // status when allowed
	denied   int      // status when not allowed; 0: 403 if readable, else 404
	effect   string   // what an allowed call changes
	audit    []string // audit actions an allowed call records, in order
	emptyOut bool     // sends no body at all (terraform force-unlock)
	graph    bool     // a dependency/status route (checked when the server has them)
}

// rbEdgeID is SPEC §5's edge ID: base58 (Bitcoin alphabet) of
// SHA-256("from\nfrom_output\nto\nto_input").
func rbEdgeID(from, out, to, in string) string {
	sum := sha256.Sum256([]byte(from + "\n" + out + "\n" + to + "\n" + in))
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int).SetBytes(sum[:])
	var out58 []byte
	for mod := new(big.Int); n.Sign() > 0; {
		n.DivMod(n, big.NewInt(58), mod)
		out58 = append(out58, alphabet[mod.Int64()])
	}
	for _, b := range sum {
		if b != 0 {
			break
		}
		out58 = append(out58, alphabet[0])
	}
	slices.Reverse(out58)
	return string(out58)
}

const rbOrg = "acme"

func rbTFE(p string) string { return "/tfe/api/v2" + p }

func rbLockBody(id string) []byte {
	return fmt.Appendf(nil, `{"ID":%q,"Operation":"OperationTypeApply","Info":"","Who":"x@y","Version":"1.11.4","Created":"2025-01-01T00:00:00Z","Path":""}`, id)
}

func rbSVCreate(serial int) []byte {
	st := rbState(serial)
	sum := md5.Sum(st)
	return rbJSON(map[string]any{"data": map[string]any{"type": "state-versions", "attributes": map[string]any{
		"serial": serial, "md5": hex.EncodeToString(sum[:]), "lineage": "l-rbac", "state": base64.StdEncoding.EncodeToString(st),
	}}})
}

func rbWSCreate(name string) []byte {
	return rbJSON(map[string]any{"data": map[string]any{"type": "workspaces", "attributes": map[string]any{"name": name}}})
}

var (
	rbAllV1      = []rbSpelling{rbSpV1Underscore, rbSpV1Percent}
	rbAllV1Extra = []rbSpelling{rbSpV1Underscore, rbSpV1Percent, rbSpV1Mixed, rbSpV1Unnormalised}
	rbAllBackend = []rbSpelling{rbSpBackendRaw, rbSpBackendPercent}
	rbAllBkExtra = []rbSpelling{rbSpBackendRaw, rbSpBackendPercent, rbSpBackendUnnorm}
	rbAllWSID    = []rbSpelling{rbSpWSID, rbSpWSIDPercent}
	rbAllWSName  = []rbSpelling{rbSpWSName, rbSpWSNamePercent}
)

func rbGet(p string) (string, string, []byte) { return http.MethodGet, p, nil }
