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
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
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

var rbActions = []rbAction{
	// --- /v1 ---
	{name: "v1 get", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1Extra,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp) }, ok: 200},
	{name: "v1 download", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/download") }, ok: 200},
	{name: "v1 download version", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1[:1],
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/download?version=1") }, ok: 200},
	{name: "v1 versions", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/versions") }, ok: 200},
	{name: "v1 get lock", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/lock") }, ok: 200},
	{name: "v1 upload", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllV1Extra,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/upload", rbState(2)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "v1 upload with lock", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/upload?if_locked_by=" + rbAdminLock, rbState(2)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "v1 restore", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/restore", []byte(`{"version":1}`)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditRestore}},
	{name: "v1 lock", surface: "v1", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/lock", []byte(`{"id":"L-cell","operation":"test"}`)
		}, ok: 200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "v1 unlock", surface: "v1", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/unlock", fmt.Appendf(nil, `{"id":%q}`, rbAdminLock)
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "v1 unlock ?id", surface: "v1", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1[1:],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/unlock?id=" + rbAdminLock, nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "v1 force unlock", surface: "v1", need: []string{store.ActionForceUnlock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/unlock?force=true", nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},
	{name: "v1 delete", surface: "v1", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodDelete, "/v1/units/" + sp, nil },
		ok:  204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "v1 delete force", surface: "v1", need: []string{store.ActionDelete, store.ActionForceUnlock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "?force=true", nil
		},
		ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "v1 create", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: []rbSpelling{rbSpBody, rbSpBodyUnnorm},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units", rbJSON(map[string]string{"id": sp})
		}, ok: 201, denied: 403, effect: rbEffCreated, audit: []string{store.AuditCreate}},
	{name: "v1 create name", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: []rbSpelling{rbSpBody},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units", rbJSON(map[string]string{"name": sp})
		}, ok: 201, denied: 403, effect: rbEffCreated, audit: []string{store.AuditCreate}},
	{name: "v1 create existing", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{}, spellings: []rbSpelling{rbSpBody},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units", rbJSON(map[string]string{"id": sp})
		}, ok: 409, denied: 403},

	{name: "v1 status", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true, src: true, edge: true}, spellings: rbAllV1, graph: true,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/status") }, ok: 200},
	{name: "v1 dependencies", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true, src: true, edge: true}, spellings: rbAllV1, graph: true,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/dependencies") }, ok: 200},
	{name: "v1 add dependency", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true, src: true}, spellings: rbAllV1, graph: true,
		req: func(sp, id string) (string, string, []byte) {
			return http.MethodPut, "/v1/units/" + sp + "/dependencies", rbJSON(map[string]string{"from_unit_id": id + "-s", "from_output": "o"})
		}, ok: 201, audit: []string{store.AuditDependency}},
	{name: "v1 delete dependency", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true, src: true, edge: true}, spellings: rbAllV1, graph: true,
		req: func(sp, id string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/dependencies/" + rbEdgeID(id+"-s", "o", id, "o"), nil
		}, ok: 204, audit: []string{store.AuditDependency}},

	// --- http backend ---
	{name: "backend GET", surface: "backend", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllBkExtra,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/backend/" + sp) }, ok: 200},
	{name: "backend HEAD", surface: "head", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllBackend[:1],
		req: func(sp, _ string) (string, string, []byte) { return http.MethodHead, "/v1/backend/" + sp, nil }, ok: 200},
	{name: "backend GET lock", surface: "backend", need: []string{store.ActionRead}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/backend/" + sp + "/lock") }, ok: 200},
	{name: "backend POST", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllBkExtra,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodPost, "/v1/backend/" + sp, rbState(2) },
		ok:  200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "backend PUT", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodPut, "/v1/backend/" + sp, rbState(2) },
		ok:  200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "backend POST locked", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/backend/" + sp + "?ID=" + rbAdminLock, rbState(2)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "backend POST new unit", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodPost, "/v1/backend/" + sp, rbState(1) },
		ok:  200, effect: rbEffCreated, audit: []string{store.AuditWrite}},
	{name: "backend LOCK", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return "LOCK", "/v1/backend/" + sp, rbLockBody("L-cell") },
		ok:  200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "backend LOCK new unit", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{absent: true}, spellings: rbAllBackend[:1],
		req: func(sp, _ string) (string, string, []byte) { return "LOCK", "/v1/backend/" + sp, rbLockBody("L-cell") },
		ok:  200, effect: rbEffCreated, audit: []string{store.AuditLock}},
	{name: "backend POST /lock", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/backend/" + sp + "/lock", rbLockBody("L-cell")
		}, ok: 200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "backend UNLOCK", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) {
			return "UNLOCK", "/v1/backend/" + sp, rbLockBody(rbAdminLock)
		},
		ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "backend DELETE /lock", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/backend/" + sp + "/lock", rbLockBody(rbAdminLock)
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "backend UNLOCK empty (force-unlock)", surface: "backend", need: []string{store.ActionLock, store.ActionForceUnlock},
		setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend, emptyOut: true,
		req: func(sp, _ string) (string, string, []byte) { return "UNLOCK", "/v1/backend/" + sp, nil },
		ok:  200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},
	{name: "backend DELETE /lock empty (force-unlock)", surface: "backend", need: []string{store.ActionLock, store.ActionForceUnlock},
		setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend[1:], emptyOut: true,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/backend/" + sp + "/lock", nil
		},
		ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},

	// --- Terraform Cloud API ---
	{name: "tfe get workspace", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) { return rbGet(rbTFE("/workspaces/" + sp)) }, ok: 200},
	{name: "tfe get workspace (/api/v2)", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/api/v2/workspaces/" + sp) }, ok: 200},
	{name: "tfe get workspace by name", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSName,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/organizations/" + rbOrg + "/workspaces/" + sp))
		}, ok: 200},
	{name: "tfe current state version", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/current-state-version"))
		}, ok: 200},
	{name: "tfe current outputs", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/current-state-version-outputs"))
		}, ok: 200},
	{name: "tfe state versions", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/state-versions"))
		}, ok: 200},
	{name: "tfe state versions by filter", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSName,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/state-versions?filter%5Bworkspace%5D%5Bname%5D=" + url.QueryEscape(sp) + "&filter%5Borganization%5D%5Bname%5D=" + rbOrg))
		}, ok: 200},
	{name: "tfe state version", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) { return rbGet(rbTFE("/state-versions/sv-" + sp + ".v1")) }, ok: 200},
	{name: "tfe state version download", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/state-versions/sv-" + sp + ".v1/download"))
		}, ok: 200},
	{name: "tfe state version outputs", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/state-versions/sv-" + sp + ".v1/outputs"))
		}, ok: 200},
	{name: "tfe state version output", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpOpaque},
		req: func(_, id string) (string, string, []byte) {
			return rbGet(rbTFE("/state-version-outputs/wsout-" + base64.RawURLEncoding.EncodeToString([]byte(id+"\x001\x00o"))))
		}, ok: 200},
	{name: "tfe tag bindings", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/tag-bindings"))
		}, ok: 200},
	{name: "tfe lock", surface: "tfe", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/lock"), []byte(`{"reason":"rbac"}`)
		}, ok: 200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "tfe unlock", surface: "tfe", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "self"}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/unlock"), nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "tfe force-unlock", surface: "tfe", need: []string{store.ActionForceUnlock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/force-unlock"), nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},
	{name: "tfe state version create", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/state-versions"), rbSVCreate(2)
		}, ok: 201, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "tfe update workspace", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPatch, rbTFE("/workspaces/" + sp), []byte(`{"data":{"type":"workspaces","attributes":{"terraform-version":"1.11.4"}}}`)
		}, ok: 200},
	{name: "tfe tag bindings patch", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPatch, rbTFE("/workspaces/" + sp + "/tag-bindings"), []byte(`{"data":[{"type":"tag-bindings","attributes":{"key":"env","value":"x"}}]}`)
		}, ok: 200, effect: rbEffLabels, audit: []string{store.AuditLabels}},
	{name: "tfe add tags", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/relationships/tags"), []byte(`{"data":[{"type":"tags","attributes":{"name":"t1"}}]}`)
		}, ok: 204, effect: rbEffLabels, audit: []string{store.AuditLabels}},
	{name: "tfe remove tags", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID[1:],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, rbTFE("/workspaces/" + sp + "/relationships/tags"), []byte(`{"data":[{"type":"tags","attributes":{"name":"t1"}}]}`)
		}, ok: 204, audit: []string{store.AuditLabels}},
	{name: "tfe delete workspace", surface: "tfe", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, rbTFE("/workspaces/" + sp), nil
		},
		ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "tfe delete workspace by name", surface: "tfe", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllWSName,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, rbTFE("/organizations/" + rbOrg + "/workspaces/" + sp), nil
		}, ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "tfe safe-delete workspace", surface: "tfe", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/safe-delete"), nil
		}, ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "tfe create workspace", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/organizations/" + rbOrg + "/workspaces"), rbWSCreate(sp)
		}, ok: 201, denied: 403, effect: rbEffCreated, audit: []string{store.AuditCreate}},
	{name: "tfe create existing workspace", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/organizations/" + rbOrg + "/workspaces"), rbWSCreate(sp)
		}, ok: 422, denied: 403},
}

// expect returns the status p must get for a on unit id.
func (a rbAction) expect(p rbPrincipal, id string) int {
	allowed := true
	for _, n := range a.need {
		allowed = allowed && p.may(n, id)
	}
	switch {
	case allowed:
		return a.ok
	case a.denied != 0:
		return a.denied
	case p.may(store.ActionRead, id):
		return http.StatusForbidden
	}
	return http.StatusNotFound
}

// rbCheckErrorBody checks the error shape of a refusal on each surface.
func rbCheckErrorBody(t *testing.T, surface string, a rbAnswer) {
	t.Helper()
	want := map[int]string{403: store.EFORBIDDEN, 404: store.ENOTFOUND}[a.status]
	switch surface {
	case "head":
		return
	case "tfe":
		var doc struct {
			Errors []struct{ Status, Title, Detail string } `json:"errors"`
		}
		if err := json.Unmarshal(a.body, &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Status != strconv.Itoa(a.status) {
			t.Errorf("TFE refusal body is not a JSON:API error for %d: %s", a.status, a)
		}
	default:
		var body httpapi.ErrorBody
		if err := json.Unmarshal(a.body, &body); err != nil || body.Code != want || body.Error == "" {
			t.Errorf("refusal body = %s, want {\"error\", \"code\": %q}", a, want)
		}
	}
}

// ---------------------------------------------------------------------------
// The matrix

func TestRBAC_Matrix(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)

	var graph rbGraph
	t.Run("Lists", func(t *testing.T) { graph = rbLists(t, s) })
	t.Run("Cells", func(t *testing.T) {
		for _, p := range rbPrincipals {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				for _, a := range rbActions {
					for _, ns := range rbNamespaces {
						for _, sp := range a.spellings {
							name := fmt.Sprintf("%s/%s/%s", a.name, strings.TrimSuffix(ns, "/"), sp.name)
							t.Run(name, func(t *testing.T) {
								if a.graph && !(graph.deps && graph.unitStatus) {
									t.Skip("the server has no dependency/status routes")
								}
								t.Parallel()
								rbCell(t, s, p, a, ns, sp)
							})
						}
					}
				}
			})
		}
	})
}

// rbCell runs one call of the matrix and checks status, body, effect and
// audit trail.
func rbCell(t *testing.T, s *rbServer, p rbPrincipal, a rbAction, ns string, sp rbSpelling) {
	id := s.uid(ns)
	s.prepare(t, id, a.setup, p)
	before := s.snap(t, id)
	method, path, body := a.req(sp.spell(id), id)
	if a.emptyOut {
		body = nil
	}
	start := time.Now()
	ans := s.call(t, p.name, method, path, body)
	want := a.expect(p, id)
	if ans.status != want {
		t.Fatalf("%s %s %s (unit %s): %s, want %d", p.name, method, path, id, ans, want)
	}
	after := s.snap(t, id)
	reqID := ans.header.Get("X-Request-ID")
	if reqID == "" {
		t.Fatal("no X-Request-ID on the answer")
	}
	recs := s.auditOf(t, reqID, start)
	if want != a.ok {
		rbCheckErrorBody(t, a.surface, ans)
		if before != after {
			t.Errorf("refused call changed the unit: %+v → %+v", before, after)
		}
		if len(recs) != 0 {
			t.Errorf("refused call left audit records: %+v", recs[0])
		}
		for _, secret := range []string{rbAdminLock, `"l-rbac"`, `"o"`} {
			if bytes.Contains(ans.body, []byte(secret)) {
				t.Errorf("refusal body reveals %s: %s", secret, ans)
			}
		}
		return
	}
	if !rbEffectOK(a.effect, before, after) {
		t.Errorf("allowed call: unit %+v → %+v, want effect %q", before, after, a.effect)
	}
	var got []string
	for i := len(recs) - 1; i >= 0; i-- { // oldest first
		r := recs[i]
		got = append(got, r.Action)
		if r.Principal != p.subject || r.Unit != id || r.Result != "ok" {
			t.Errorf("audit record %+v, want principal %s, unit %s, result ok", r, p.subject, id)
		}
	}
	if !slices.Equal(got, a.audit) {
		t.Errorf("audit actions %v, want %v", got, a.audit)
	}
}

// ---------------------------------------------------------------------------
// Lists never reveal what the caller may not read

// rbListUnits are the units of the list checks: each namespace, plus
// near misses of the custom role's glob (case, a longer first segment).
var rbListUnits = []string{
	"team-a/app/lst-1", "team-a/prod/lst-2", "team-a/prod/deep/lst-3", "team-b/lst-4",
	"other/lst-5", "TEAM-A/lst-6", "team-a2/lst-7", "team-b2/lst-8", "lst-9",
}

func rbLists(t *testing.T, s *rbServer) rbGraph {
	for _, id := range rbListUnits {
		s.must(t, "admin", http.MethodPost, "/v1/backend/"+id, rbState(1), http.StatusOK)
	}
	graph := rbGraphRoutes(t, s)
	for _, p := range rbPrincipals {
		var visible, hidden []string
		for _, id := range rbListUnits {
			if p.may(store.ActionRead, id) {
				visible = append(visible, id)
			} else {
				hidden = append(hidden, id)
			}
		}
		sort.Strings(visible)
		noLeak := func(t *testing.T, what string, a rbAnswer) {
			t.Helper()
			for _, h := range hidden {
				for _, form := range []string{h, store.EncodeID(h), url.PathEscape(h)} {
					if bytes.Contains(a.body, []byte(form)) {
						t.Errorf("%s reveals hidden unit %s (as %q): %s", what, h, form, a)
					}
				}
			}
		}
		t.Run(p.name, func(t *testing.T) {
			for _, prefix := range []string{"", "team", "team-a/", "other", "lst", "nope"} {
				a := s.must(t, p.name, http.MethodGet, "/v1/units?prefix="+url.QueryEscape(prefix), nil, http.StatusOK)
				var list httpapi.UnitList
				rbDecode(t, a.body, &list)
				var got, want []string
				for _, u := range list.Units {
					got = append(got, u.ID)
				}
				for _, id := range visible {
					if strings.HasPrefix(id, prefix) {
						want = append(want, id)
					}
				}
				if !slices.Equal(got, want) || list.Count != len(want) || list.Units == nil {
					t.Errorf("GET /v1/units?prefix=%s: units %v count %d, want %v count %d (and [] not null)", prefix, got, list.Count, want, len(want))
				}
				noLeak(t, "GET /v1/units?prefix="+prefix, a)
			}
			for _, org := range []string{rbOrg, "another-org"} {
				for _, q := range []string{"", "&search%5Bname%5D=lst", "&search%5Bwildcard-name%5D=%2Alst%2A"} {
					path := rbTFE("/organizations/" + org + "/workspaces?page%5Bsize%5D=100" + q)
					a := s.must(t, p.name, http.MethodGet, path, nil, http.StatusOK)
					var doc struct {
						Data []struct {
							ID         string `json:"id"`
							Attributes struct {
								Name string `json:"name"`
							} `json:"attributes"`
						} `json:"data"`
						Meta struct {
							Pagination struct {
								TotalCount int `json:"total-count"`
							} `json:"pagination"`
						} `json:"meta"`
					}
					rbDecode(t, a.body, &doc)
					var got, want []string
					for _, w := range doc.Data {
						got = append(got, w.Attributes.Name)
						if w.ID != "ws-"+w.Attributes.Name {
							t.Errorf("workspace %s has ID %s", w.Attributes.Name, w.ID)
						}
					}
					for _, id := range visible {
						want = append(want, store.EncodeID(id))
					}
					sort.Strings(got)
					sort.Strings(want)
					if !slices.Equal(got, want) || doc.Meta.Pagination.TotalCount != len(want) {
						t.Errorf("GET %s: workspaces %v total %d, want %v total %d", path, got, doc.Meta.Pagination.TotalCount, want, len(want))
					}
					noLeak(t, "GET "+path, a)
				}
			}
			graph.check(t, s, p, visible, hidden, noLeak)
		})
	}
	return graph
}

// rbGraph holds which dependency/status routes the server has (they are
// optional for this test: it checks them when they exist).
type rbGraph struct {
	unitStatus, allStatus, deps bool
}

// rbGraphRoutes probes the graph routes as the admin, and where edges can
// be declared, links visible and hidden units: other/lst-5 → team-a/app/lst-1
// → team-b/lst-4.
func rbGraphRoutes(t *testing.T, s *rbServer) rbGraph {
	exists := func(a rbAnswer) bool {
		return a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed
	}
	g := rbGraph{
		unitStatus: exists(s.call(t, "admin", http.MethodGet, "/v1/units/other__lst-5/status", nil)),
		allStatus:  exists(s.call(t, "admin", http.MethodGet, "/v1/status", nil)),
		deps:       exists(s.call(t, "admin", http.MethodGet, "/v1/units/other__lst-5/dependencies", nil)),
	}
	t.Logf("graph routes present: unit status %v, /v1/status %v, dependencies %v", g.unitStatus, g.allStatus, g.deps)
	if g.deps {
		for _, e := range [][2]string{{"other/lst-5", "team-a__app__lst-1"}, {"team-a/app/lst-1", "team-b__lst-4"}} {
			a := s.call(t, "admin", http.MethodPut, "/v1/units/"+e[1]+"/dependencies", rbJSON(map[string]string{"from_unit_id": e[0], "from_output": "o"}))
			if a.status != http.StatusOK && a.status != http.StatusCreated {
				t.Errorf("declare edge %s → %s: %s", e[0], e[1], a)
			}
		}
	}
	return g
}

func (g rbGraph) check(t *testing.T, s *rbServer, p rbPrincipal, visible, hidden []string, noLeak func(*testing.T, string, rbAnswer)) {
	t.Helper()
	if g.deps && p.may(store.ActionRead, "team-a/app/lst-1") {
		// The edges exist (so the checks below are not vacuous), and those
		// to or from a hidden unit are left out.
		a := s.must(t, p.name, http.MethodGet, "/v1/units/team-a__app__lst-1/dependencies", nil, http.StatusOK)
		var d struct {
			Incoming []struct {
				From string `json:"from_unit_id"`
			} `json:"incoming"`
			Outgoing []struct {
				To string `json:"to_unit_id"`
			} `json:"outgoing"`
		}
		rbDecode(t, a.body, &d)
		wantIn, wantOut := 0, 0
		if p.may(store.ActionRead, "other/lst-5") {
			wantIn = 1
		}
		if p.may(store.ActionRead, "team-b/lst-4") {
			wantOut = 1
		}
		if len(d.Incoming) != wantIn || len(d.Outgoing) != wantOut {
			t.Errorf("dependencies of team-a/app/lst-1: %d incoming, %d outgoing; want %d, %d: %s", len(d.Incoming), len(d.Outgoing), wantIn, wantOut, a)
		}
	}
	if g.unitStatus && p.may(store.ActionRead, "team-a/app/lst-1") {
		a := s.must(t, p.name, http.MethodGet, "/v1/units/team-a__app__lst-1/status", nil, http.StatusOK)
		var st struct {
			Incoming []json.RawMessage `json:"incoming"`
			Summary  struct {
				Hidden int `json:"incoming_hidden"`
			} `json:"summary"`
		}
		rbDecode(t, a.body, &st)
		wantHidden := 1
		if p.may(store.ActionRead, "other/lst-5") {
			wantHidden = 0
		}
		if st.Summary.Hidden != wantHidden || len(st.Incoming) != 1-wantHidden {
			t.Errorf("status of team-a/app/lst-1: %d incoming, %d hidden; want %d, %d: %s", len(st.Incoming), st.Summary.Hidden, 1-wantHidden, wantHidden, a)
		}
	}
	if g.allStatus {
		a := s.must(t, p.name, http.MethodGet, "/v1/status", nil, http.StatusOK)
		var list struct {
			Units []struct {
				UnitID string `json:"unit_id"`
			} `json:"units"`
			Count int `json:"count"`
		}
		rbDecode(t, a.body, &list)
		var got []string
		for _, u := range list.Units {
			got = append(got, u.UnitID)
		}
		if !slices.Equal(got, visible) || list.Count != len(visible) {
			t.Errorf("GET /v1/status: units %v count %d, want %v", got, list.Count, visible)
		}
		noLeak(t, "GET /v1/status", a)
	}
	for _, route := range []struct {
		on     bool
		suffix string
	}{{g.unitStatus, "/status"}, {g.deps, "/dependencies"}} {
		if !route.on {
			continue
		}
		for _, id := range visible {
			a := s.must(t, p.name, http.MethodGet, "/v1/units/"+store.EncodeID(id)+route.suffix, nil, http.StatusOK)
			noLeak(t, "GET "+id+route.suffix, a)
		}
		for _, id := range hidden {
			for _, sp := range []string{store.EncodeID(id), url.PathEscape(id)} {
				a := s.call(t, p.name, http.MethodGet, "/v1/units/"+sp+route.suffix, nil)
				if a.status != http.StatusNotFound {
					t.Errorf("GET %s%s of a hidden unit: %s, want 404", sp, route.suffix, a)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// IDs that are not unit IDs of any surface

func TestRBAC_Spellings(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	s.must(t, "admin", http.MethodPost, "/v1/backend/team-a/app/x", rbState(1), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/backend/other/x", rbState(1), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/backend/TEAM-A/app/x", rbState(1), http.StatusOK)
	for _, p := range rbPrincipals {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			// The http backend takes real slashes; "__" is not a spelling
			// there, and a dot segment never escapes a glob.
			for _, path := range []string{
				"/v1/backend/team-a__app__x", "/v1/backend/team-a/app/../../other/x", "/v1/backend/team-a/%2E%2E/other/x",
				"/v1/backend/team-a/app%2F..%2F..%2Fother%2Fx",
			} {
				if a := s.call(t, p.name, http.MethodGet, path, nil); a.status != http.StatusBadRequest {
					t.Errorf("GET %s: %s, want 400", path, a)
				}
			}
			for _, path := range []string{
				"/v1/units/team-a__..__..__other__x", "/v1/units/team-a%2F..%2Fother%2Fx", "/v1/units/team-a___app__x", "/v1/units/%2A",
			} {
				if a := s.call(t, p.name, http.MethodGet, path, nil); a.status != http.StatusBadRequest {
					t.Errorf("GET %s: %s, want 400", path, a)
				}
			}
			// A glob is not a unit ID: "*" names nothing.
			if a := s.call(t, p.name, http.MethodGet, "/v1/backend/%2A", nil); a.status != http.StatusBadRequest {
				t.Errorf("GET /v1/backend/*: %s, want 400", a)
			}
			// Case matters: TEAM-A/app/x is another unit, not team-a's.
			want := http.StatusNotFound
			if p.may(store.ActionRead, "TEAM-A/app/x") {
				want = http.StatusOK
			}
			if a := s.call(t, p.name, http.MethodGet, "/v1/units/TEAM-A__app__x", nil); a.status != want {
				t.Errorf("GET TEAM-A__app__x: %s, want %d", a, want)
			}
			// A workspace ID without the ws- prefix is no workspace.
			if a := s.call(t, p.name, http.MethodGet, rbTFE("/workspaces/team-a__app__x"), nil); a.status != http.StatusNotFound {
				t.Errorf("GET workspace without ws-: %s, want 404", a)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// A principal with no role

func TestRBAC_NoRole(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	s.must(t, "admin", http.MethodPost, "/v1/backend/team-a/app/x", rbState(1), http.StatusOK)

	a := s.must(t, "none", http.MethodGet, "/v1/auth/me", nil, http.StatusOK)
	var me authn.Principal
	rbDecode(t, a.body, &me)
	if me.Subject != "nemo" || len(me.Roles) != 0 || me.Roles == nil {
		t.Errorf("/v1/auth/me = %+v, want subject nemo with roles []", me)
	}

	// Its own API tokens: create, list, revoke.
	a = s.must(t, "none", http.MethodPost, "/v1/tokens", []byte(`{"name":"mine"}`), http.StatusCreated)
	var mine httpapi.CreatedToken
	rbDecode(t, a.body, &mine)
	if mine.Owner != "nemo" || !strings.HasPrefix(mine.Token, authn.APITokenPrefix) {
		t.Fatalf("own token = %+v", mine)
	}
	s.must(t, "none", http.MethodPost, "/v1/tokens", []byte(`{"name":"mine too","owner":"nemo"}`), http.StatusCreated)
	a = s.must(t, "none", http.MethodGet, "/v1/tokens", nil, http.StatusOK)
	var list httpapi.TokenList
	rbDecode(t, a.body, &list)
	if list.Count != 3 { // the matrix token and the two above
		t.Errorf("own token list has %d tokens, want 3: %s", list.Count, a)
	}
	for _, tk := range list.Tokens {
		if tk.Owner != "nemo" {
			t.Errorf("own token list shows %+v", tk)
		}
	}
	s.must(t, mine.Token, http.MethodGet, "/v1/auth/me", nil, http.StatusOK)
	s.must(t, "none", http.MethodDelete, "/v1/tokens/"+mine.ID, nil, http.StatusNoContent)
	if a := s.call(t, mine.Token, http.MethodGet, "/v1/auth/me", nil); a.status != http.StatusUnauthorized {
		t.Errorf("revoked token still works: %s", a)
	}

	// Nothing else.
	for _, c := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{http.MethodGet, "/v1/tokens?all=true", nil, 403},
		{http.MethodPost, "/v1/tokens", []byte(`{"name":"x","owner":"admin"}`), 403},
		{http.MethodGet, "/v1/rbac/roles", nil, 403},
		{http.MethodGet, "/v1/rbac/permissions", nil, 403},
		{http.MethodGet, "/v1/rbac/assignments", nil, 403},
		{http.MethodPost, "/v1/rbac/assignments", []byte(`{"subject":"nemo","role":"admin"}`), 403},
		{http.MethodPost, "/v1/rbac/test", []byte(`{"subject":"nemo","action":"unit.read","resource":"a"}`), 403},
		{http.MethodGet, "/v1/audit", nil, 403},
		{http.MethodGet, "/v1/units/team-a__app__x", nil, 404},
		{http.MethodGet, "/v1/backend/team-a/app/x", nil, 404},
		{http.MethodPost, "/v1/units", []byte(`{"id":"nemo/x"}`), 403},
		{http.MethodGet, rbTFE("/workspaces/ws-team-a__app__x"), nil, 404},
		{http.MethodPost, rbTFE("/organizations/acme/workspaces"), rbWSCreate("nemo__x"), 403},
	} {
		if a := s.call(t, "none", c.method, c.path, c.body); a.status != c.want {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, a, c.want)
		}
	}
	a = s.must(t, "none", http.MethodGet, "/v1/units", nil, http.StatusOK)
	if !bytes.Equal(bytes.TrimSpace(a.body), []byte(`{"units":[],"count":0}`)) {
		t.Errorf("unit list of a principal with no role = %s", a.body)
	}
	// The admin's tokens do not exist for it.
	a = s.must(t, "admin", http.MethodGet, "/v1/tokens", nil, http.StatusOK)
	rbDecode(t, a.body, &list)
	if len(list.Tokens) == 0 {
		t.Fatal("admin has no token")
	}
	if a := s.call(t, "none", http.MethodDelete, "/v1/tokens/"+list.Tokens[0].ID, nil); a.status != http.StatusNotFound {
		t.Errorf("revoking the admin's token: %s, want 404", a)
	}
	s.must(t, "admin", http.MethodGet, "/v1/auth/me", nil, http.StatusOK)
}

// ---------------------------------------------------------------------------
// Tokens: own tokens are free, others' need token.manage

func TestRBAC_Tokens(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	// token.manage without being admin.
	s.must(t, "admin", http.MethodPost, "/v1/rbac/permissions", rbJSON(store.Permission{Name: "tokens", Rules: []store.Rule{
		{Effect: "allow", Actions: []string{store.ActionTokenManage}, Resources: []string{"*"}},
	}}), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/roles", rbJSON(store.Role{Name: "token-admin", Permissions: []string{"tokens"}}), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", rbJSON(store.Assignment{Subject: "tim", Role: "token-admin"}), http.StatusCreated)
	s.tokens["tokenmgr"] = s.mintToken(t, "tim", nil)
	s.mintToken(t, "victim", nil)

	callers := []struct {
		name, subject string
		manage        bool
	}{
		{"admin", "admin", true}, {"tokenmgr", "tim", true}, {"writer", "walt", false}, {"reader", "rita", false},
		{"custom", "carl", false}, {"group", "gina", false}, {"none", "nemo", false},
	}
	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Own tokens.
			start := time.Now()
			a := s.must(t, c.name, http.MethodPost, "/v1/tokens", []byte(`{"name":"own","expires_in":3600}`), http.StatusCreated)
			var own httpapi.CreatedToken
			rbDecode(t, a.body, &own)
			if own.Owner != c.subject || own.Expires == nil {
				t.Errorf("own token = %+v", own)
			}
			if recs := s.auditOf(t, a.header.Get("X-Request-ID"), start); len(recs) != 1 || recs[0].Action != store.AuditTokenCreate || recs[0].Principal != c.subject {
				t.Errorf("token create audit = %v", recs)
			}
			a = s.must(t, c.name, http.MethodGet, "/v1/tokens", nil, http.StatusOK)
			var list httpapi.TokenList
			rbDecode(t, a.body, &list)
			for _, tk := range list.Tokens {
				if tk.Owner != c.subject {
					t.Errorf("own list shows %s's token %s", tk.Owner, tk.ID)
				}
			}
			if bytes.Contains(a.body, []byte(`"hash"`)) {
				t.Errorf("token list carries hashes: %s", a.body)
			}
			start = time.Now()
			a = s.must(t, c.name, http.MethodDelete, "/v1/tokens/"+own.ID, nil, http.StatusNoContent)
			if recs := s.auditOf(t, a.header.Get("X-Request-ID"), start); len(recs) != 1 || recs[0].Action != store.AuditTokenRevoke || recs[0].Principal != c.subject {
				t.Errorf("token revoke audit = %v", recs)
			}

			// Others' tokens.
			wantAll, wantMint, wantRevoke := 403, 403, 404
			if c.manage {
				wantAll, wantRevoke = 200, 204
			}
			if c.name == "admin" { // minting for another subject is impersonation: admins only
				wantMint = 201
			}
			a = s.must(t, c.name, http.MethodGet, "/v1/tokens?all=true", nil, wantAll)
			if c.manage {
				rbDecode(t, a.body, &list)
				owners := map[string]bool{}
				for _, tk := range list.Tokens {
					owners[tk.Owner] = true
				}
				if !owners["victim"] || !owners["admin"] {
					t.Errorf("?all=true lists owners %v, want everyone's", owners)
				}
			}
			a = s.must(t, c.name, http.MethodPost, "/v1/tokens", rbJSON(map[string]any{"name": "for victim", "owner": "victim-" + c.name, "groups": []string{"g"}}), wantMint)
			if wantMint == 201 {
				var ct httpapi.CreatedToken
				rbDecode(t, a.body, &ct)
				if ct.Owner != "victim-"+c.name || !slices.Equal(ct.Groups, []string{"g"}) {
					t.Errorf("minted token = %+v", ct)
				}
			}
			// A token of someone else, revoked (or not) by the caller.
			vt := s.mint(t, "victim", nil)
			s.must(t, c.name, http.MethodDelete, "/v1/tokens/"+vt.ID, nil, wantRevoke)
			meStatus := s.call(t, vt.Token, http.MethodGet, "/v1/auth/me", nil).status
			if c.manage != (meStatus == http.StatusUnauthorized) {
				t.Errorf("after revoke by %s, the victim's token answers %d", c.name, meStatus)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// RBAC management routes

func TestRBAC_ManageRoutes(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	for _, p := range rbPrincipals {
		t.Run("Access/"+p.name, func(t *testing.T) {
			t.Parallel()
			admin := p.name == "admin"
			n := "tmp-" + p.name
			// The admin assigns someone; everyone else tries to promote itself.
			assign := rbJSON(store.Assignment{Subject: "tmp-subject", Role: "reader"})
			if !admin {
				assign = rbJSON(store.Assignment{Subject: p.subject, Role: "admin"})
			}
			calls := []struct {
				method, path string
				body         []byte
				ok           int
			}{
				{http.MethodGet, "/v1/rbac/roles", nil, 200},
				{http.MethodGet, "/v1/rbac/permissions", nil, 200},
				{http.MethodGet, "/v1/rbac/assignments", nil, 200},
				{http.MethodPost, "/v1/rbac/permissions", rbJSON(store.Permission{Name: n, Rules: []store.Rule{{Effect: "allow", Actions: []string{"*"}, Resources: []string{"*"}}}}), 200},
				{http.MethodPut, "/v1/rbac/permissions/" + n, rbJSON(store.Permission{Rules: []store.Rule{{Effect: "allow", Actions: []string{"unit.read"}, Resources: []string{"*"}}}}), 200},
				{http.MethodPost, "/v1/rbac/roles", rbJSON(store.Role{Name: n, Permissions: []string{"reader"}}), 200},
				{http.MethodPut, "/v1/rbac/roles/" + n, rbJSON(store.Role{Permissions: []string{"reader"}}), 200},
				{http.MethodPost, "/v1/rbac/assignments", assign, 201},
				{http.MethodPost, "/v1/rbac/test", []byte(`{"subject":"walt","action":"unit.write","resource":"a/b"}`), 200},
				{http.MethodDelete, "/v1/rbac/roles/" + n, nil, 204},
				{http.MethodDelete, "/v1/rbac/permissions/" + n, nil, 204},
			}
			for _, c := range calls {
				want := c.ok
				if !admin {
					want = http.StatusForbidden
				}
				start := time.Now()
				a := s.call(t, p.name, c.method, c.path, c.body)
				if a.status != want {
					t.Errorf("%s %s: %s, want %d", c.method, c.path, a, want)
					continue
				}
				recs := s.auditOf(t, a.header.Get("X-Request-ID"), start)
				wantRecs := 0
				if admin && c.method != http.MethodGet && !strings.HasSuffix(c.path, "/test") {
					wantRecs = 1
				}
				if len(recs) != wantRecs {
					t.Errorf("%s %s left %d audit records, want %d", c.method, c.path, len(recs), wantRecs)
				} else if wantRecs == 1 && (recs[0].Action != store.AuditRBAC || recs[0].Principal != p.subject) {
					t.Errorf("%s %s audit record %+v", c.method, c.path, recs[0])
				}
			}
			if !admin {
				// The refused self-promotion did not happen.
				if a := s.call(t, p.name, http.MethodGet, "/v1/rbac/roles", nil); a.status != http.StatusForbidden {
					t.Errorf("after refused self-assignment: %s", a)
				}
			}
		})
	}

	t.Run("BuiltIns", func(t *testing.T) {
		t.Parallel()
		for _, r := range []string{"admin", "writer", "reader"} {
			for _, c := range []struct{ method, path string }{
				{http.MethodDelete, "/v1/rbac/roles/" + r}, {http.MethodDelete, "/v1/rbac/roles/" + r + "?force=true"},
				{http.MethodDelete, "/v1/rbac/permissions/" + r}, {http.MethodDelete, "/v1/rbac/permissions/" + r + "?force=true"},
			} {
				if a := s.call(t, "admin", c.method, c.path, nil); a.status != http.StatusConflict {
					t.Errorf("%s %s: %s, want 409", c.method, c.path, a)
				}
			}
			if a := s.call(t, "admin", http.MethodPut, "/v1/rbac/roles/"+r, []byte(`{"permissions":["admin"]}`)); a.status != http.StatusConflict {
				t.Errorf("replace built-in role %s: %s, want 409", r, a)
			}
			if a := s.call(t, "admin", http.MethodPut, "/v1/rbac/permissions/"+r, []byte(`{"rules":[{"effect":"allow","actions":["*"],"resources":["*"]}]}`)); a.status != http.StatusConflict {
				t.Errorf("replace built-in permission %s: %s, want 409", r, a)
			}
		}
		a := s.must(t, "admin", http.MethodGet, "/v1/rbac/roles", nil, http.StatusOK)
		var list httpapi.RBACList
		rbDecode(t, a.body, &list)
		for _, r := range list.Roles {
			if rbIn(r.Name, "admin", "writer", "reader") != r.BuiltIn {
				t.Errorf("role %s builtin=%v", r.Name, r.BuiltIn)
			}
		}
		// The reader still reads and cannot write.
		s.must(t, "reader", http.MethodGet, "/v1/units", nil, http.StatusOK)
	})

	t.Run("InUse", func(t *testing.T) {
		t.Parallel()
		s.must(t, "admin", http.MethodPost, "/v1/backend/eph/x", rbState(1), http.StatusOK)
		s.must(t, "admin", http.MethodPost, "/v1/rbac/permissions", rbJSON(store.Permission{Name: "eph", Rules: []store.Rule{
			{Effect: "allow", Actions: []string{store.ActionRead}, Resources: []string{"eph/*"}},
		}}), http.StatusOK)
		s.must(t, "admin", http.MethodPost, "/v1/rbac/roles", rbJSON(store.Role{Name: "eph", Permissions: []string{"eph"}}), http.StatusOK)
		a := s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", rbJSON(store.Assignment{Subject: "eve", Role: "eph"}), http.StatusCreated)
		var as store.Assignment
		rbDecode(t, a.body, &as)
		a = s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", rbJSON(store.Assignment{Subject: "eve", Role: "eph"}), http.StatusCreated)
		var again store.Assignment
		rbDecode(t, a.body, &again)
		if again.ID != as.ID {
			t.Errorf("repeated assignment has ID %s, want %s", again.ID, as.ID)
		}
		s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", rbJSON(store.Assignment{Group: "eph-group", Role: "eph"}), http.StatusCreated)
		eve := s.mintToken(t, "eve", nil)
		s.must(t, eve, http.MethodGet, "/v1/units/eph__x", nil, http.StatusOK)

		s.must(t, "admin", http.MethodDelete, "/v1/rbac/permissions/eph", nil, http.StatusConflict)
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/roles/eph", nil, http.StatusConflict)
		s.must(t, eve, http.MethodGet, "/v1/units/eph__x", nil, http.StatusOK)

		s.must(t, "admin", http.MethodDelete, "/v1/rbac/roles/eph?force=true", nil, http.StatusNoContent)
		a = s.must(t, "admin", http.MethodGet, "/v1/rbac/assignments", nil, http.StatusOK)
		if bytes.Contains(a.body, []byte(`"eph"`)) {
			t.Errorf("assignments of the deleted role remain: %s", a.body)
		}
		s.must(t, eve, http.MethodGet, "/v1/units/eph__x", nil, http.StatusNotFound)
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/assignments/"+as.ID, nil, http.StatusNotFound)

		// A permission in use: refused, then removed from its roles.
		s.must(t, "admin", http.MethodPost, "/v1/rbac/roles", rbJSON(store.Role{Name: "eph2", Permissions: []string{"eph", "reader"}}), http.StatusOK)
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/permissions/eph", nil, http.StatusConflict)
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/permissions/eph?force=true", nil, http.StatusNoContent)
		a = s.must(t, "admin", http.MethodGet, "/v1/rbac/roles", nil, http.StatusOK)
		var list httpapi.RBACList
		rbDecode(t, a.body, &list)
		for _, r := range list.Roles {
			if r.Name == "eph2" && !slices.Equal(r.Permissions, []string{"reader"}) {
				t.Errorf("role eph2 permissions %v, want [reader]", r.Permissions)
			}
		}
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/roles/eph2", nil, http.StatusNoContent)
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/roles/eph2", nil, http.StatusNotFound)
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/permissions/eph", nil, http.StatusNotFound)
		s.must(t, "admin", http.MethodDelete, "/v1/rbac/roles/eph?force=notabool", nil, http.StatusBadRequest)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			method, path, body string
		}{
			{http.MethodPost, "/v1/rbac/permissions", `{"name":"bad","rules":[{"effect":"permit","actions":["unit.read"],"resources":["*"]}]}`},
			{http.MethodPost, "/v1/rbac/permissions", `{"name":"bad","rules":[{"effect":"allow","actions":[],"resources":["*"]}]}`},
			{http.MethodPost, "/v1/rbac/permissions", `{"rules":[]}`},
			{http.MethodPost, "/v1/rbac/permissions", `not json`},
			{http.MethodPost, "/v1/rbac/roles", `{"name":"bad","permissions":["missing"]}`},
			{http.MethodPost, "/v1/rbac/roles", `{"permissions":["reader"]}`},
			{http.MethodPost, "/v1/rbac/assignments", `{"subject":"a","group":"b","role":"reader"}`},
			{http.MethodPost, "/v1/rbac/assignments", `{"role":"reader"}`},
			{http.MethodPost, "/v1/rbac/assignments", `{"subject":"a","role":"missing"}`},
			{http.MethodPost, "/v1/rbac/test", `{"action":"unit.read"}`},
			{http.MethodPost, "/v1/rbac/test", `{"subject":"a"}`},
			{http.MethodPost, "/v1/rbac/test", `{"subject":"a","action":"unit.read","resource":"a__b__"}`},
		} {
			if a := s.call(t, "admin", c.method, c.path, []byte(c.body)); a.status != http.StatusBadRequest {
				t.Errorf("%s %s %s: %s, want 400", c.method, c.path, c.body, a)
			}
		}
	})

	t.Run("Test", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			body    string
			allowed bool
			reason  string
			matched []string
		}{
			{`{"subject":"carl","action":"unit.delete","resource":"team-a/prod/db"}`, false, "denied by team-a/team-a#2", []string{"team-a/team-a#1", "team-a/team-a#2"}},
			{`{"subject":"carl","action":"unit.delete","resource":"//team-a//prod/db/"}`, false, "denied by team-a/team-a#2", []string{"team-a/team-a#1", "team-a/team-a#2"}},
			{`{"subject":"carl","action":"unit.delete","resource":"team-a/app"}`, true, "allowed by team-a/team-a#1", []string{"team-a/team-a#1"}},
			{`{"subject":"carl","action":"unit.read","resource":"team-a"}`, false, "no rule allows unit.read", []string{}},
			{`{"subject":"carl","action":"rbac.manage"}`, false, "no rule allows rbac.manage", []string{}},
			{`{"subject":"gina","action":"unit.write","resource":"team-b/x"}`, false, "no rule allows unit.write", []string{}},
			{`{"subject":"gina","groups":["team-b-devs"],"action":"unit.write","resource":"team-b/x"}`, true, "allowed by team-b/team-b#1", []string{"team-b/team-b#1"}},
			{`{"groups":["team-b-devs"],"action":"unit.lock","resource":"team-b/x"}`, true, "allowed by team-b/team-b#1", []string{"team-b/team-b#1"}},
			{`{"subject":"admin","action":"token.manage"}`, true, "allowed by admin/admin#1", []string{"admin/admin#1"}},
			{`{"subject":"walt","action":"unit.force_unlock","resource":"x"}`, false, "no rule allows unit.force_unlock", []string{}},
			{`{"subject":"nemo","action":"unit.read","resource":"x"}`, false, "no rule allows unit.read", []string{}},
		} {
			a := s.must(t, "admin", http.MethodPost, "/v1/rbac/test", []byte(c.body), http.StatusOK)
			var raw map[string]json.RawMessage
			rbDecode(t, a.body, &raw)
			keys := slices.Sorted(maps.Keys(raw))
			if !slices.Equal(keys, []string{"allowed", "matched", "reason"}) {
				t.Errorf("POST /v1/rbac/test %s: keys %v, want allowed, matched, reason", c.body, keys)
			}
			var d authn.Decision
			rbDecode(t, a.body, &d)
			if d.Allowed != c.allowed || d.Reason != c.reason || !slices.Equal(d.Matched, c.matched) {
				t.Errorf("POST /v1/rbac/test %s = %+v, want allowed=%v reason %q matched %v", c.body, d, c.allowed, c.reason, c.matched)
			}
		}
	})

	t.Run("GroupAccessToken", func(t *testing.T) {
		t.Parallel()
		// An access JWT carries its groups as an API token does.
		s.must(t, "admin", http.MethodPost, "/v1/backend/team-b/jwt", rbState(1), http.StatusOK)
		s.must(t, "admin", http.MethodPost, "/v1/backend/other/jwt", rbState(1), http.StatusOK)
		jwt, err := s.auth.IssueAccess(&authn.Principal{Subject: "gus", Groups: []string{"team-b-devs"}})
		if err != nil {
			t.Fatal(err)
		}
		s.must(t, jwt, http.MethodGet, "/v1/units/team-b__jwt", nil, http.StatusOK)
		s.must(t, jwt, "LOCK", "/v1/backend/team-b/jwt", rbLockBody("L-jwt"), http.StatusOK)
		s.must(t, jwt, http.MethodDelete, "/v1/units/team-b__jwt", nil, http.StatusForbidden)
		s.must(t, jwt, http.MethodGet, "/v1/units/other__jwt", nil, http.StatusNotFound)
		nogroup, err := s.auth.IssueAccess(&authn.Principal{Subject: "gus"})
		if err != nil {
			t.Fatal(err)
		}
		s.must(t, nogroup, http.MethodGet, "/v1/units/team-b__jwt", nil, http.StatusNotFound)
	})
}

// ---------------------------------------------------------------------------
// Dependency changes never reveal hidden units either

func TestRBAC_DependenciesNeverReveal(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	for _, id := range []string{"team-a/app/cy-1", "other/cy-h", "team-a/app/cy-2"} {
		s.must(t, "admin", http.MethodPost, "/v1/backend/"+id, rbState(1), http.StatusOK)
	}
	if a := s.call(t, "admin", http.MethodGet, "/v1/units/other__cy-h/dependencies", nil); a.status != http.StatusOK {
		t.Skipf("the server has no dependency routes: %s", a)
	}
	// team-a/app/cy-1 → other/cy-h → team-a/app/cy-2, declared by the admin.
	s.must(t, "admin", http.MethodPut, "/v1/units/other__cy-h/dependencies", []byte(`{"from_unit_id":"team-a/app/cy-1","from_output":"o"}`), http.StatusCreated)
	s.must(t, "admin", http.MethodPut, "/v1/units/team-a__app__cy-2/dependencies", []byte(`{"from_unit_id":"other/cy-h","from_output":"o"}`), http.StatusCreated)
	hidden := [][]byte{[]byte("other/cy-h"), []byte("other__cy-h"), []byte("other%2Fcy-h")}
	for _, c := range []struct {
		what, method, path, body string
		want                     int
	}{
		// cy-2 → cy-1 closes a cycle through a unit carl may not read: it
		// is refused, without naming that unit.
		{"cycle through a hidden unit", http.MethodPut, "/v1/units/team-a__app__cy-1/dependencies", `{"from_unit_id":"team-a/app/cy-2","from_output":"o"}`, http.StatusConflict},
		{"edge from a hidden unit", http.MethodPut, "/v1/units/team-a__app__cy-1/dependencies", `{"from_unit_id":"other/cy-h","from_output":"o"}`, http.StatusNotFound},
		{"edge from a hidden unit, encoded", http.MethodPut, "/v1/units/team-a__app__cy-1/dependencies", `{"from_unit_id":"//other//cy-h/","from_output":"o"}`, http.StatusNotFound},
		{"edge from a missing unit", http.MethodPut, "/v1/units/team-a__app__cy-1/dependencies", `{"from_unit_id":"other/nope","from_output":"o"}`, http.StatusNotFound},
		{"edge into a hidden unit", http.MethodPut, "/v1/units/other__cy-h/dependencies", `{"from_unit_id":"team-a/app/cy-2","from_output":"o"}`, http.StatusNotFound},
		{"remove an edge of a hidden unit", http.MethodDelete, "/v1/units/other%2Fcy-h/dependencies/" + rbEdgeID("team-a/app/cy-1", "o", "other/cy-h", "o"), "", http.StatusNotFound},
		{"dependencies of a hidden unit", http.MethodGet, "/v1/units/other__cy-h/dependencies", "", http.StatusNotFound},
		{"status of a hidden unit", http.MethodGet, "/v1/units/other%2Fcy-h/status", "", http.StatusNotFound},
		{"dependencies", http.MethodGet, "/v1/units/team-a__app__cy-1/dependencies", "", http.StatusOK},
		{"dependencies", http.MethodGet, "/v1/units/team-a__app__cy-2/dependencies", "", http.StatusOK},
		{"status", http.MethodGet, "/v1/units/team-a__app__cy-2/status", "", http.StatusOK},
		{"all statuses", http.MethodGet, "/v1/status?prefix=", "", http.StatusOK},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		a := s.call(t, "custom", c.method, c.path, body)
		if a.status != c.want {
			t.Errorf("%s: %s %s: %s, want %d", c.what, c.method, c.path, a, c.want)
		}
		named := strings.Contains(c.path+c.body, "cy-h") // a 404 may echo the ID the caller sent
		for _, h := range hidden {
			if !named && bytes.Contains(a.body, h) {
				t.Errorf("%s: %s %s reveals the hidden unit %s: %s", c.what, c.method, c.path, h, a)
			}
		}
	}
	// The edge into the hidden unit is still there for the admin.
	a := s.must(t, "admin", http.MethodGet, "/v1/units/other__cy-h/dependencies", nil, http.StatusOK)
	if !bytes.Contains(a.body, []byte("team-a/app/cy-1")) {
		t.Errorf("admin's view lost the edge: %s", a)
	}
}
