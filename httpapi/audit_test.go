package httpapi_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// rbTrail returns the whole trail, newest first, straight from the store.
func (s *rbServer) rbTrail(t *testing.T) []*store.AuditRecord {
	t.Helper()
	recs, err := s.db.Audit(store.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// rbGetAudit calls GET /v1/audit as the admin with query q.
func (s *rbServer) rbGetAudit(t *testing.T, q string) httpapi.AuditList {
	t.Helper()
	a := s.must(t, "admin", http.MethodGet, "/v1/audit"+q, nil, http.StatusOK)
	var list httpapi.AuditList
	rbDecode(t, a.body, &list)
	if list.Count != len(list.Records) || list.Records == nil {
		t.Fatalf("GET /v1/audit%s: count %d for %d records (records must be [] when empty)", q, list.Count, len(list.Records))
	}
	return list
}

// TestAudit_Changes makes one change of every audited kind through the
// HTTP surfaces and checks that each left exactly one record, by its
// principal, on its canonical unit ID, with the request ID of its answer.
func TestAudit_Changes(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	type change struct {
		who, method, path string
		body              []byte
		status            int
		action, unit      string
		hdr               []string
	}
	svBody := rbSVCreate(2)
	changes := []change{
		{who: "writer", method: http.MethodPost, path: "/v1/units", body: []byte(`{"id":"aud/one"}`), status: 201, action: store.AuditCreate, unit: "aud/one"},
		{who: "writer", method: http.MethodPost, path: "/v1/units/aud__one/upload", body: rbState(1), status: 200, action: store.AuditWrite, unit: "aud/one"},
		{who: "writer", method: http.MethodPost, path: "/v1/units/aud%2Fone/upload", body: rbState(2), status: 200, action: store.AuditWrite, unit: "aud/one"},
		{who: "writer", method: http.MethodPost, path: "/v1/units/aud__one/lock", body: []byte(`{"id":"LW"}`), status: 200, action: store.AuditLock, unit: "aud/one"},
		{who: "writer", method: http.MethodDelete, path: "/v1/units/aud__one/unlock", body: []byte(`{"id":"LW"}`), status: 200, action: store.AuditUnlock, unit: "aud/one"},
		{who: "writer", method: http.MethodPost, path: "/v1/units/aud__one/restore", body: []byte(`{"version":"1"}`), status: 200, action: store.AuditRestore, unit: "aud/one"},
		{who: "writer", method: http.MethodPost, path: "/v1/units/aud__one/lock", body: []byte(`{"id":"LW2"}`), status: 200, action: store.AuditLock, unit: "aud/one"},
		{who: "admin", method: http.MethodDelete, path: "/v1/units/aud__one/unlock?force=true", status: 200, action: store.AuditForceUnlock, unit: "aud/one"},
		{who: "custom", method: "LOCK", path: "/v1/backend/team-a/aud", body: rbLockBody("LB"), status: 200, action: store.AuditLock, unit: "team-a/aud"},
		{who: "custom", method: http.MethodPost, path: "/v1/backend/team-a/aud?ID=LB", body: rbState(1), status: 200, action: store.AuditWrite, unit: "team-a/aud"},
		{who: "custom", method: "UNLOCK", path: "/v1/backend/team-a%2Faud", body: rbLockBody("LB"), status: 200, action: store.AuditUnlock, unit: "team-a/aud"},
		{who: "custom", method: "LOCK", path: "/v1/backend/team-a/aud", body: rbLockBody("LB2"), status: 200, action: store.AuditLock, unit: "team-a/aud"},
		{who: "custom", method: "UNLOCK", path: "/v1/backend/team-a/aud", status: 200, action: store.AuditForceUnlock, unit: "team-a/aud"},
		{who: "group", method: http.MethodPost, path: rbTFE("/organizations/acme/workspaces"), body: rbWSCreate("team-b__aud"), status: 201, action: store.AuditCreate, unit: "team-b/aud"},
		{who: "group", method: http.MethodPost, path: rbTFE("/workspaces/ws-team-b__aud/actions/lock"), body: []byte(`{}`), status: 200, action: store.AuditLock, unit: "team-b/aud"},
		{who: "group", method: http.MethodPost, path: rbTFE("/workspaces/ws-team-b__aud/state-versions"), body: svBody, status: 201, action: store.AuditWrite, unit: "team-b/aud"},
		{who: "group", method: http.MethodPost, path: rbTFE("/workspaces/ws-team-b%2Faud/actions/unlock"), status: 200, action: store.AuditUnlock, unit: "team-b/aud"},
		{who: "group", method: http.MethodPatch, path: rbTFE("/workspaces/ws-team-b__aud/tag-bindings"), body: []byte(`{"data":[{"attributes":{"key":"k","value":"v"}}]}`), status: 200, action: store.AuditLabels, unit: "team-b/aud"},
		{who: "group", method: http.MethodPost, path: rbTFE("/workspaces/ws-team-b__aud/actions/lock"), body: []byte(`{}`), status: 200, action: store.AuditLock, unit: "team-b/aud"},
		{who: "admin", method: http.MethodPost, path: rbTFE("/workspaces/ws-team-b__aud/actions/force-unlock"), status: 200, action: store.AuditForceUnlock, unit: "team-b/aud"},
		{who: "admin", method: http.MethodDelete, path: rbTFE("/workspaces/ws-team-b__aud"), status: 204, action: store.AuditDelete, unit: "team-b/aud"},
		{who: "custom", method: http.MethodDelete, path: "/v1/units/team-a%2Faud", status: 204, action: store.AuditDelete, unit: "team-a/aud"},
		{who: "reader", method: http.MethodPost, path: "/v1/tokens", body: []byte(`{"name":"r"}`), status: 201, action: store.AuditTokenCreate},
		{who: "admin", method: http.MethodPost, path: "/v1/tokens", body: []byte(`{"name":"svc","owner":"svc"}`), status: 201, action: store.AuditTokenCreate},
		{who: "admin", method: http.MethodPost, path: "/v1/rbac/permissions", body: []byte(`{"name":"aud","rules":[{"effect":"allow","actions":["unit.read"],"resources":["aud/*"]}]}`), status: 200, action: store.AuditRBAC},
		{who: "admin", method: http.MethodPut, path: "/v1/rbac/roles/aud", body: []byte(`{"permissions":["aud"]}`), status: 200, action: store.AuditRBAC},
		{who: "admin", method: http.MethodPost, path: "/v1/rbac/assignments", body: []byte(`{"group":"aud-group","role":"aud"}`), status: 201, action: store.AuditRBAC},
		{who: "admin", method: http.MethodDelete, path: "/v1/rbac/roles/aud?force=true", status: 204, action: store.AuditRBAC},
		{who: "admin", method: http.MethodDelete, path: "/v1/rbac/permissions/aud", status: 204, action: store.AuditRBAC},
		// An incoming X-Request-ID is kept, in the answer and the record.
		{who: "writer", method: http.MethodPost, path: "/v1/backend/aud/two", body: rbState(1), status: 200, action: store.AuditWrite, unit: "aud/two",
			hdr: []string{"X-Request-ID", "client-req.42:abc"}},
		// One that is not sane is replaced.
		{who: "writer", method: http.MethodPost, path: "/v1/backend/aud/two", body: rbState(2), status: 200, action: store.AuditWrite, unit: "aud/two",
			hdr: []string{"X-Request-ID", "bad id with spaces"}},
	}
	var tokenIDs []string
	for i, c := range changes {
		before := len(s.rbTrail(t))
		a := s.call(t, c.who, c.method, c.path, c.body, c.hdr...)
		if a.status != c.status {
			t.Fatalf("change %d %s %s %s: %s, want %d", i, c.who, c.method, c.path, a, c.status)
		}
		reqID := a.header.Get("X-Request-ID")
		if len(c.hdr) == 2 && c.hdr[1] == "client-req.42:abc" && reqID != c.hdr[1] {
			t.Errorf("incoming request ID %q answered as %q", c.hdr[1], reqID)
		} else if len(c.hdr) == 2 && c.hdr[1] != "client-req.42:abc" && (reqID == c.hdr[1] || reqID == "") {
			t.Errorf("insane request ID %q answered as %q", c.hdr[1], reqID)
		}
		recs := s.rbTrail(t)
		if len(recs)-before != 1 {
			t.Errorf("change %d %s %s: %d records, want 1: %v", i, c.method, c.path, len(recs)-before, recs[:len(recs)-before])
			continue
		}
		r := recs[0]
		p := s.principal(c.who)
		if r.Action != c.action || r.Unit != c.unit || r.Principal != p.subject || r.RequestID != reqID || r.Result != "ok" || r.Time.IsZero() {
			t.Errorf("change %d %s %s: record %+v, want action %s unit %q principal %s request %s result ok", i, c.method, c.path, r, c.action, c.unit, p.subject, reqID)
		}
		if c.action == store.AuditTokenCreate {
			var ct httpapi.CreatedToken
			rbDecode(t, a.body, &ct)
			tokenIDs = append(tokenIDs, ct.ID)
			if !strings.Contains(r.Detail, ct.ID) || strings.Contains(r.Detail, ct.Token) {
				t.Errorf("token record detail %q: want the token ID, never the secret", r.Detail)
			}
		}
	}
	for i, id := range tokenIDs {
		who := []string{"reader", "admin"}[i]
		before := len(s.rbTrail(t))
		a := s.must(t, who, http.MethodDelete, "/v1/tokens/"+id, nil, http.StatusNoContent)
		recs := s.rbTrail(t)
		if len(recs)-before != 1 || recs[0].Action != store.AuditTokenRevoke || recs[0].RequestID != a.header.Get("X-Request-ID") || !strings.Contains(recs[0].Detail, id) {
			t.Errorf("revoke %s: records %v", id, recs[:len(recs)-before])
		}
	}
}

// TestAudit_SignedUpload: the bytes of a create-then-upload state version
// arrive without a bearer token; the write is audited as the principal
// who declared it.
func TestAudit_SignedUpload(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	s.must(t, "writer", http.MethodPost, rbTFE("/organizations/acme/workspaces"), rbWSCreate("aud__up"), http.StatusCreated)
	st := rbState(1)
	sum := md5.Sum(st)
	body := rbJSON(map[string]any{"data": map[string]any{"type": "state-versions", "attributes": map[string]any{
		"serial": 1, "md5": hex.EncodeToString(sum[:]), "lineage": "l-rbac",
	}}})
	before := len(s.rbTrail(t))
	a := s.must(t, "writer", http.MethodPost, rbTFE("/workspaces/ws-aud__up/state-versions"), body, http.StatusCreated)
	if n := len(s.rbTrail(t)); n != before {
		t.Errorf("declaring a version left %d records; the write is audited when the bytes arrive", n-before)
	}
	var doc struct {
		Data struct {
			Attributes map[string]any `json:"attributes"`
		} `json:"data"`
	}
	rbDecode(t, a.body, &doc)
	up, _ := doc.Data.Attributes["hosted-state-upload-url"].(string)
	u, err := url.Parse(up)
	if err != nil || up == "" {
		t.Fatalf("upload URL %q: %v", up, err)
	}
	a = s.call(t, "", http.MethodPut, u.RequestURI(), st)
	if a.status != http.StatusOK {
		t.Fatalf("upload: %s", a)
	}
	recs := s.rbTrail(t)
	if len(recs)-before != 1 || recs[0].Action != store.AuditWrite || recs[0].Unit != "aud/up" || recs[0].Principal != "walt" {
		t.Errorf("signed upload records %v, want one write of aud/up by walt", recs[:len(recs)-before])
	}
}

// TestAudit_ReadsNotAudited sends every kind of read, on every surface,
// by every principal, and checks the trail did not grow.
func TestAudit_ReadsNotAudited(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	s.must(t, "admin", http.MethodPost, "/v1/backend/team-a/r", rbState(1), http.StatusOK)
	s.must(t, "admin", "LOCK", "/v1/backend/team-a/r", rbLockBody("LR"), http.StatusOK)
	before := len(s.rbTrail(t))
	reads := []struct{ method, path string }{
		{http.MethodGet, "/v1/units"}, {http.MethodGet, "/v1/units/team-a__r"}, {http.MethodGet, "/v1/units/team-a%2Fr/download"},
		{http.MethodGet, "/v1/units/team-a__r/versions"}, {http.MethodGet, "/v1/units/team-a__r/lock"},
		{http.MethodGet, "/v1/backend/team-a/r"}, {http.MethodHead, "/v1/backend/team-a/r"}, {http.MethodGet, "/v1/backend/team-a/r/lock"},
		{http.MethodGet, "/v1/backend/team-a/nothing"},
		{http.MethodGet, rbTFE("/organizations/acme/workspaces")}, {http.MethodGet, rbTFE("/workspaces/ws-team-a__r")},
		{http.MethodGet, rbTFE("/organizations/acme/workspaces/team-a__r")},
		{http.MethodGet, rbTFE("/workspaces/ws-team-a__r/current-state-version")}, {http.MethodGet, rbTFE("/workspaces/ws-team-a__r/state-versions")},
		{http.MethodGet, rbTFE("/state-versions/sv-team-a__r.v1/download")}, {http.MethodGet, rbTFE("/workspaces/ws-team-a__r/current-state-version-outputs")},
		{http.MethodGet, rbTFE("/account/details")}, {http.MethodGet, rbTFE("/ping")},
		{http.MethodGet, "/v1/auth/me"}, {http.MethodGet, "/v1/tokens"}, {http.MethodGet, "/v1/tokens?all=true"},
		{http.MethodGet, "/v1/rbac/roles"}, {http.MethodGet, "/v1/rbac/permissions"}, {http.MethodGet, "/v1/rbac/assignments"},
		{http.MethodGet, "/v1/audit"}, {http.MethodGet, "/v1/audit?unit=team-a/r"},
	}
	for _, p := range rbPrincipals {
		for _, r := range reads {
			a := s.call(t, p.name, r.method, r.path, nil)
			if a.status >= 500 {
				t.Errorf("%s %s %s: %s", p.name, r.method, r.path, a)
			}
		}
		s.call(t, p.name, http.MethodPost, "/v1/rbac/test", []byte(`{"subject":"walt","action":"unit.read","resource":"a"}`))
	}
	if after := s.rbTrail(t); len(after) != before {
		t.Errorf("reads appended %d audit records, first %+v", len(after)-before, after[0])
	}
}

func TestAudit_API(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)
	// Changes by walt on aud/a and by carl on team-a/b, alternating.
	s.must(t, "writer", http.MethodPost, "/v1/units", []byte(`{"id":"aud/a"}`), http.StatusCreated)
	s.must(t, "custom", http.MethodPost, "/v1/units", []byte(`{"id":"team-a/b"}`), http.StatusCreated)
	var mid time.Time
	for i := 1; i <= 6; i++ {
		if i == 4 {
			time.Sleep(5 * time.Millisecond)
			mid = time.Now()
			time.Sleep(5 * time.Millisecond)
		}
		s.must(t, "writer", http.MethodPost, "/v1/backend/aud/a", rbState(i), http.StatusOK)
		s.must(t, "custom", http.MethodPost, "/v1/backend/team-a/b", rbState(i), http.StatusOK)
	}

	all := s.rbGetAudit(t, "?limit=1000")
	trail := s.rbTrail(t)
	if len(all.Records) != len(trail) {
		t.Fatalf("GET /v1/audit?limit=1000 has %d records, the trail %d", len(all.Records), len(trail))
	}
	for i := range trail {
		if all.Records[i].Seq != trail[i].Seq {
			t.Fatalf("record %d has seq %d, want %d (newest first)", i, all.Records[i].Seq, trail[i].Seq)
		}
	}
	a := s.must(t, "admin", http.MethodGet, "/v1/audit?limit=1", nil, http.StatusOK)
	var raw struct {
		Records []map[string]any `json:"records"`
		Count   int              `json:"count"`
	}
	rbDecode(t, a.body, &raw)
	if len(raw.Records) != 1 || raw.Count != 1 {
		t.Fatalf("limit=1: %s", a)
	}
	for _, k := range []string{"seq", "time", "principal", "action", "unit", "request_id", "result"} {
		if _, ok := raw.Records[0][k]; !ok {
			t.Errorf("audit record lacks %q: %s", k, a.body)
		}
	}

	for _, c := range []struct {
		q    string
		want func(r *store.AuditRecord) bool
		n    int
	}{
		{"?unit=aud/a", func(r *store.AuditRecord) bool { return r.Unit == "aud/a" }, 7},
		{"?unit=aud__a", func(r *store.AuditRecord) bool { return r.Unit == "aud/a" }, 7},
		{"?unit=aud%2Fa", func(r *store.AuditRecord) bool { return r.Unit == "aud/a" }, 7},
		{"?unit=aud%252Fa", func(r *store.AuditRecord) bool { return r.Unit == "aud/a" }, 7},
		{"?unit=%2F%2Faud%2F%2Fa%2F", func(r *store.AuditRecord) bool { return r.Unit == "aud/a" }, 7},
		{"?unit=aud", nil, 0},
		{"?principal=carl", func(r *store.AuditRecord) bool { return r.Principal == "carl" }, 7},
		{"?principal=carl&unit=aud/a", nil, 0},
		{"?principal=walt&limit=3", func(r *store.AuditRecord) bool { return r.Principal == "walt" }, 3},
		{"?since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), func(r *store.AuditRecord) bool { return !r.Time.Before(mid) }, 6},
		{"?since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)) + "&principal=walt", func(r *store.AuditRecord) bool { return r.Principal == "walt" }, 3},
		{"?since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), nil, 0},
	} {
		list := s.rbGetAudit(t, c.q)
		if len(list.Records) != c.n {
			t.Errorf("GET /v1/audit%s: %d records, want %d", c.q, len(list.Records), c.n)
		}
		for _, r := range list.Records {
			if c.want != nil && !c.want(r) {
				t.Errorf("GET /v1/audit%s let through %+v", c.q, r)
			}
		}
		if c.n > 0 && list.Records[0].Seq < list.Records[len(list.Records)-1].Seq {
			t.Errorf("GET /v1/audit%s: not newest first", c.q)
		}
	}

	for _, q := range []string{"?since=yesterday", "?since=2025-01-01", "?limit=0", "?limit=-1", "?limit=x", "?unit=a___b", "?unit=a/../b"} {
		a := s.call(t, "admin", http.MethodGet, "/v1/audit"+q, nil)
		var body httpapi.ErrorBody
		if a.status != http.StatusBadRequest || json.Unmarshal(a.body, &body) != nil || body.Code != store.EINVALID {
			t.Errorf("GET /v1/audit%s: %s, want 400 invalid", q, a)
		}
	}

	// Only admins read the trail; token.manage or rbac.manage are not enough.
	s.must(t, "admin", http.MethodPost, "/v1/rbac/permissions", rbJSON(store.Permission{Name: "managers", Rules: []store.Rule{
		{Effect: "allow", Actions: []string{store.ActionRBACManage, store.ActionTokenManage, "unit.*"}, Resources: []string{"*"}},
	}}), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/roles", rbJSON(store.Role{Name: "managers", Permissions: []string{"managers"}}), http.StatusOK)
	s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", rbJSON(store.Assignment{Subject: "max", Role: "managers"}), http.StatusCreated)
	s.tokens["manager"] = s.mintToken(t, "max", nil)
	// An admin by group is an admin.
	s.must(t, "admin", http.MethodPost, "/v1/rbac/assignments", rbJSON(store.Assignment{Group: "admins", Role: "admin"}), http.StatusCreated)
	s.tokens["group-admin"] = s.mintToken(t, "ada", []string{"admins"})
	for _, who := range []string{"writer", "reader", "custom", "group", "none", "manager"} {
		a := s.call(t, who, http.MethodGet, "/v1/audit", nil)
		var body httpapi.ErrorBody
		if a.status != http.StatusForbidden || json.Unmarshal(a.body, &body) != nil || body.Code != store.EFORBIDDEN {
			t.Errorf("GET /v1/audit as %s: %s, want 403", who, a)
		}
		if bytes.Contains(a.body, []byte("walt")) || bytes.Contains(a.body, []byte("aud/a")) {
			t.Errorf("refusal reveals the trail: %s", a)
		}
	}
	s.must(t, "group-admin", http.MethodGet, "/v1/audit?limit=1", nil, http.StatusOK)
	if a := s.call(t, "", http.MethodGet, "/v1/audit", nil); a.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/audit without a credential: %s, want 401", a)
	}
	// The admin's own reads of the trail are not in it.
	n := len(s.rbTrail(t))
	s.rbGetAudit(t, "")
	if len(s.rbTrail(t)) != n {
		t.Error("reading the trail was audited")
	}
}
