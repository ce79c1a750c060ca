package httpapi_test

// RBAC tests beyond the matrix: ID spellings, the principal without a role,
// tokens, the RBAC routes, and dependencies (server in rbac_harness_test.go).

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

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
