package store_test

import (
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/opentaco/opentaco/store"
)

// rbacAllow and rbacDeny are one-rule shorthands.
func rbacAllow(resources []string, actions ...string) store.Rule {
	return store.Rule{Effect: "allow", Actions: actions, Resources: resources}
}

func rbacDeny(resources []string, actions ...string) store.Rule {
	return store.Rule{Effect: "deny", Actions: actions, Resources: resources}
}

func mustPutPermission(t testing.TB, db *store.DB, name string, rules ...store.Rule) *store.Permission {
	t.Helper()
	p, err := db.PutPermission(store.Permission{Name: name, Rules: rules})
	if err != nil {
		t.Fatalf("put permission %s: %v", name, err)
	}
	return p
}

func mustPutRole(t testing.TB, db *store.DB, name string, perms ...string) *store.Role {
	t.Helper()
	r, err := db.PutRole(store.Role{Name: name, Permissions: perms})
	if err != nil {
		t.Fatalf("put role %s: %v", name, err)
	}
	return r
}

func mustAssign(t testing.TB, db *store.DB, a store.Assignment) *store.Assignment {
	t.Helper()
	out, err := db.Assign(a)
	if err != nil {
		t.Fatalf("assign %+v: %v", a, err)
	}
	return out
}

func mustLoadRBAC(t testing.TB, db *store.DB) *store.RBAC {
	t.Helper()
	rb, err := db.LoadRBAC()
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// assignmentIDs lists the IDs of rb's assignments, sorted.
func assignmentIDs(rb *store.RBAC) []string {
	out := []string{}
	for _, a := range rb.Assignments {
		out = append(out, a.ID)
	}
	sort.Strings(out)
	return out
}

func TestStore_RBAC_BuiltIns(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "opentaco.db")
	db := mustOpenAt(t, path, store.Options{})

	want := map[string][]store.Rule{
		"admin":  {rbacAllow([]string{"*"}, store.ActionAll)},
		"writer": {rbacAllow([]string{"*"}, store.ActionRead, store.ActionWrite, store.ActionLock)},
		"reader": {rbacAllow([]string{"*"}, store.ActionRead)},
	}
	check := func(t *testing.T, rb *store.RBAC) {
		t.Helper()
		for name, rules := range want {
			p, r := rb.Permissions[name], rb.Roles[name]
			if p == nil || !p.BuiltIn {
				t.Fatalf("built-in permission %s = %+v", name, p)
			} else if r == nil || !r.BuiltIn || !slices.Equal(r.Permissions, []string{name}) {
				t.Fatalf("built-in role %s = %+v, want built in with permission %s", name, r, name)
			}
			if len(p.Rules) != len(rules) {
				t.Fatalf("permission %s rules = %+v, want %+v", name, p.Rules, rules)
			}
			for i := range rules {
				got, w := p.Rules[i], rules[i]
				if got.Effect != w.Effect || !slices.Equal(got.Actions, w.Actions) || !slices.Equal(got.Resources, w.Resources) {
					t.Errorf("permission %s rule %d = %+v, want %+v", name, i, got, w)
				}
			}
		}
		if len(rb.Assignments) != 0 {
			t.Errorf("fresh database has assignments %+v", rb.Assignments)
		}
	}
	check(t, mustLoadRBAC(t, db))

	t.Run("Immutable", func(t *testing.T) {
		for name := range want {
			_, err := db.PutRole(store.Role{Name: name, Permissions: []string{"reader"}})
			wantCode(t, err, store.ECONFLICT)
			_, err = db.PutPermission(store.Permission{Name: name, Rules: []store.Rule{rbacAllow([]string{"*"}, store.ActionAll)}})
			wantCode(t, err, store.ECONFLICT)
			wantCode(t, db.DeleteRole(name, false), store.ECONFLICT)
			wantCode(t, db.DeleteRole(name, true), store.ECONFLICT)
			wantCode(t, db.DeletePermission(name, false), store.ECONFLICT)
			wantCode(t, db.DeletePermission(name, true), store.ECONFLICT)
		}
		check(t, mustLoadRBAC(t, db))
	})

	t.Run("NotAuditedWhenRefused", func(t *testing.T) {
		recs, err := db.Audit(store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		} else if len(recs) != 0 {
			t.Errorf("refused changes of built-ins left audit records %+v", recs)
		}
	})
}

func TestStore_RBAC_BuiltInsSurviveReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "opentaco.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPutPermission(t, db, "p", rbacAllow([]string{"a/*"}, store.ActionRead))
	mustPutRole(t, db, "custom", "p", "reader")
	as := mustAssign(t, db, store.Assignment{Subject: "alice", Role: "custom"})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpenAt(t, path, store.Options{})
	rb := mustLoadRBAC(t, db)
	for _, n := range []string{"admin", "writer", "reader"} {
		if rb.Roles[n] == nil || !rb.Roles[n].BuiltIn || rb.Permissions[n] == nil || !rb.Permissions[n].BuiltIn {
			t.Errorf("after reopen, built-in %s is role %+v permission %+v", n, rb.Roles[n], rb.Permissions[n])
		}
	}
	if r := rb.Roles["custom"]; r == nil || r.BuiltIn || !slices.Equal(r.Permissions, []string{"p", "reader"}) {
		t.Errorf("after reopen, role custom = %+v", r)
	}
	if got := assignmentIDs(rb); !slices.Equal(got, []string{as.ID}) {
		t.Errorf("after reopen, assignments %v, want [%s]", got, as.ID)
	}
}

func TestStore_PutPermission(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)

	t.Run("OK", func(t *testing.T) {
		rules := []store.Rule{
			rbacAllow([]string{"team-a/*"}, "unit.*"),
			rbacDeny([]string{"team-a/prod/*"}, store.ActionDelete),
		}
		p, err := db.PutPermission(store.Permission{Name: "team-a", Description: "team A", Rules: rules, BuiltIn: true})
		if err != nil {
			t.Fatal(err)
		} else if p.BuiltIn {
			t.Error("a caller made a permission built in")
		} else if p.Created.IsZero() {
			t.Error("created not set")
		}
		got := mustLoadRBAC(t, db).Permissions["team-a"]
		if got == nil || got.BuiltIn || got.Description != "team A" || len(got.Rules) != 2 ||
			got.Rules[0].Effect != "allow" || got.Rules[1].Effect != "deny" || got.Rules[1].Resources[0] != "team-a/prod/*" {
			t.Fatalf("stored permission = %+v", got)
		}
	})

	t.Run("Replace", func(t *testing.T) {
		mustPutPermission(t, db, "repl", rbacAllow([]string{"x/*"}, store.ActionRead))
		mustPutPermission(t, db, "repl", rbacDeny([]string{"y"}, store.ActionWrite))
		got := mustLoadRBAC(t, db).Permissions["repl"]
		if len(got.Rules) != 1 || got.Rules[0].Effect != "deny" || got.Rules[0].Resources[0] != "y" {
			t.Errorf("replaced permission = %+v", got)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		cases := map[string]store.Permission{
			"no name":        {Rules: []store.Rule{rbacAllow([]string{"*"}, store.ActionRead)}},
			"bad effect":     {Name: "x", Rules: []store.Rule{{Effect: "permit", Actions: []string{store.ActionRead}, Resources: []string{"*"}}}},
			"empty effect":   {Name: "x", Rules: []store.Rule{{Actions: []string{store.ActionRead}, Resources: []string{"*"}}}},
			"no actions":     {Name: "x", Rules: []store.Rule{{Effect: "allow", Resources: []string{"*"}}}},
			"no resources":   {Name: "x", Rules: []store.Rule{{Effect: "allow", Actions: []string{store.ActionRead}}}},
			"empty action":   {Name: "x", Rules: []store.Rule{rbacAllow([]string{"*"}, "")}},
			"action space":   {Name: "x", Rules: []store.Rule{rbacAllow([]string{"*"}, "unit read")}},
			"action slash":   {Name: "x", Rules: []store.Rule{rbacAllow([]string{"*"}, "unit/read")}},
			"empty resource": {Name: "x", Rules: []store.Rule{rbacAllow([]string{""}, store.ActionRead)}},
			"second rule":    {Name: "x", Rules: []store.Rule{rbacAllow([]string{"*"}, store.ActionRead), {Effect: "deny"}}},
		}
		for name, p := range cases {
			t.Run(name, func(t *testing.T) {
				_, err := db.PutPermission(p)
				wantCode(t, err, store.EINVALID)
				if p.Name != "" && mustLoadRBAC(t, db).Permissions[p.Name] != nil {
					t.Errorf("invalid permission %q was stored", p.Name)
				}
			})
		}
	})
}

func TestStore_PutRole(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	mustPutPermission(t, db, "p1", rbacAllow([]string{"a/*"}, store.ActionRead))

	t.Run("OK", func(t *testing.T) {
		r, err := db.PutRole(store.Role{Name: "r", Description: "d", Permissions: []string{"p1", "writer"}, BuiltIn: true})
		if err != nil {
			t.Fatal(err)
		} else if r.BuiltIn {
			t.Error("a caller made a role built in")
		}
		got := mustLoadRBAC(t, db).Roles["r"]
		if got == nil || got.BuiltIn || !slices.Equal(got.Permissions, []string{"p1", "writer"}) || got.Description != "d" {
			t.Errorf("stored role = %+v", got)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		_, err := db.PutRole(store.Role{Permissions: []string{"p1"}})
		wantCode(t, err, store.EINVALID)
		_, err = db.PutRole(store.Role{Name: "bad", Permissions: []string{"p1", "missing"}})
		wantCode(t, err, store.EINVALID)
		if mustLoadRBAC(t, db).Roles["bad"] != nil {
			t.Error("role with a missing permission was stored")
		}
	})
}

func TestStore_DeleteRole(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	mustPutPermission(t, db, "p", rbacAllow([]string{"a/*"}, store.ActionRead))

	t.Run("ErrNotFound", func(t *testing.T) {
		wantCode(t, db.DeleteRole("nope", false), store.ENOTFOUND)
		wantCode(t, db.DeleteRole("nope", true), store.ENOTFOUND)
	})
	t.Run("Unused", func(t *testing.T) {
		mustPutRole(t, db, "unused", "p")
		if err := db.DeleteRole("unused", false); err != nil {
			t.Fatal(err)
		}
		if mustLoadRBAC(t, db).Roles["unused"] != nil {
			t.Error("role still there")
		}
	})
	t.Run("InUseNeedsForce", func(t *testing.T) {
		mustPutRole(t, db, "used", "p")
		mustPutRole(t, db, "other", "p")
		mustAssign(t, db, store.Assignment{Subject: "alice", Role: "used"})
		mustAssign(t, db, store.Assignment{Group: "devs", Role: "used"})
		keep1 := mustAssign(t, db, store.Assignment{Subject: "alice", Role: "other"})
		keep2 := mustAssign(t, db, store.Assignment{Subject: "bob", Role: "reader"})

		wantCode(t, db.DeleteRole("used", false), store.ECONFLICT)
		rb := mustLoadRBAC(t, db)
		if rb.Roles["used"] == nil || len(rb.Assignments) != 4 {
			t.Fatalf("refused delete changed something: role %+v, %d assignments", rb.Roles["used"], len(rb.Assignments))
		}

		if err := db.DeleteRole("used", true); err != nil {
			t.Fatal(err)
		}
		rb = mustLoadRBAC(t, db)
		if rb.Roles["used"] != nil {
			t.Error("role still there after force delete")
		}
		want := []string{keep1.ID, keep2.ID}
		sort.Strings(want)
		if got := assignmentIDs(rb); !slices.Equal(got, want) {
			t.Errorf("assignments after force delete = %v, want only the other roles' %v", got, want)
		}
		if rb.Permissions["p"] == nil {
			t.Error("deleting a role deleted its permission")
		}
	})
}

func TestStore_DeletePermission(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)

	t.Run("ErrNotFound", func(t *testing.T) {
		wantCode(t, db.DeletePermission("nope", false), store.ENOTFOUND)
	})
	t.Run("Unused", func(t *testing.T) {
		mustPutPermission(t, db, "lone", rbacAllow([]string{"*"}, store.ActionRead))
		if err := db.DeletePermission("lone", false); err != nil {
			t.Fatal(err)
		} else if mustLoadRBAC(t, db).Permissions["lone"] != nil {
			t.Error("permission still there")
		}
	})
	t.Run("InUseNeedsForce", func(t *testing.T) {
		mustPutPermission(t, db, "shared", rbacAllow([]string{"a/*"}, store.ActionRead))
		mustPutPermission(t, db, "kept", rbacAllow([]string{"b/*"}, store.ActionRead))
		mustPutRole(t, db, "r1", "shared", "kept")
		mustPutRole(t, db, "r2", "kept", "shared", "reader")
		as := mustAssign(t, db, store.Assignment{Subject: "alice", Role: "r1"})

		wantCode(t, db.DeletePermission("shared", false), store.ECONFLICT)
		if rb := mustLoadRBAC(t, db); rb.Permissions["shared"] == nil || len(rb.Roles["r1"].Permissions) != 2 {
			t.Fatal("refused delete changed something")
		}
		if err := db.DeletePermission("shared", true); err != nil {
			t.Fatal(err)
		}
		rb := mustLoadRBAC(t, db)
		if rb.Permissions["shared"] != nil {
			t.Error("permission still there after force delete")
		}
		if got := rb.Roles["r1"].Permissions; !slices.Equal(got, []string{"kept"}) {
			t.Errorf("r1 permissions = %v, want [kept]", got)
		}
		if got := rb.Roles["r2"].Permissions; !slices.Equal(got, []string{"kept", "reader"}) {
			t.Errorf("r2 permissions = %v, want [kept reader]", got)
		}
		if got := assignmentIDs(rb); !slices.Equal(got, []string{as.ID}) {
			t.Errorf("assignments = %v, want [%s] (untouched)", got, as.ID)
		}
	})
}

func TestStore_Assign(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)

	t.Run("Idempotent", func(t *testing.T) {
		a := mustAssign(t, db, store.Assignment{Subject: "alice", Role: "reader"})
		if a.ID == "" || a.Created.IsZero() || a.Subject != "alice" || a.Group != "" || a.Role != "reader" {
			t.Fatalf("assignment = %+v", a)
		}
		before, _ := db.Audit(store.AuditQuery{})
		again := mustAssign(t, db, store.Assignment{Subject: "alice", Role: "reader"})
		if again.ID != a.ID || !again.Created.Equal(a.Created) {
			t.Errorf("second assign = %+v, want the first %+v", again, a)
		}
		after, _ := db.Audit(store.AuditQuery{})
		if len(after) != len(before) {
			t.Errorf("a repeated assign was audited: %d → %d records", len(before), len(after))
		}
		// The same subject with another role, and a group of the same
		// name, are other assignments.
		g := mustAssign(t, db, store.Assignment{Group: "alice", Role: "reader"})
		w := mustAssign(t, db, store.Assignment{Subject: "alice", Role: "writer"})
		if g.ID == a.ID || w.ID == a.ID || g.ID == w.ID {
			t.Errorf("distinct assignments share IDs: %s %s %s", a.ID, g.ID, w.ID)
		}
		if n := len(mustLoadRBAC(t, db).Assignments); n != 3 {
			t.Errorf("%d assignments, want 3", n)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for name, a := range map[string]store.Assignment{
			"neither":      {Role: "reader"},
			"both":         {Subject: "s", Group: "g", Role: "reader"},
			"unknown role": {Subject: "s", Role: "nope"},
			"no role":      {Subject: "s"},
		} {
			_, err := db.Assign(a)
			if store.ErrorCode(err) != store.EINVALID {
				t.Errorf("%s: err = %v, want invalid", name, err)
			}
		}
	})
	t.Run("Unassign", func(t *testing.T) {
		a := mustAssign(t, db, store.Assignment{Subject: "carol", Role: "writer"})
		if err := db.Unassign(a.ID); err != nil {
			t.Fatal(err)
		}
		for _, x := range mustLoadRBAC(t, db).Assignments {
			if x.ID == a.ID {
				t.Error("assignment still there")
			}
		}
		wantCode(t, db.Unassign(a.ID), store.ENOTFOUND)
		wantCode(t, db.Unassign("as-nope"), store.ENOTFOUND)
	})
}

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "a", true},
		{"*", "a/b/c", true},
		{"*", "", true},
		{"myapp/*", "myapp/prod", true},
		{"myapp/*", "myapp/prod/db", true},
		{"myapp/*", "myapp", false},
		{"myapp/*", "myapp2/prod", false},
		{"myapp/*", "other/myapp/prod", false},
		{"myapp", "myapp", true},
		{"myapp", "myapp/prod", false},
		{"myapp", "MyApp", false},
		{"*/prod", "myapp/prod", true},
		{"*/prod", "a/b/prod", true},
		{"*/prod", "myapp/prod/db", false},
		{"my*/db", "myapp/prod/db", true},
		{"my*/db", "myapp/prod/dbx", false},
		{"team-a/*/db", "team-a/prod/db", true},
		{"team-a/*/db", "team-a/db", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "a/x/b/y/c", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, // prefix and suffix may not overlap
		{"a*a", "a", false},
		{"a**b", "ab", true},
		// Every character but '*' is literal: no '?', classes or escapes.
		{"a.b", "a.b", true},
		{"a.b", "axb", false},
		{"a?c", "abc", false},
		{"a?c", "a?c", true},
		{"[ab]", "a", false},
		{"[ab]", "[ab]", true},
		{`a\*`, `a\x`, true},
		{`a\*`, "a*", false},
		{"", "", true},
		{"", "a", false},
	}
	for _, c := range cases {
		if got := store.GlobMatch(c.pattern, c.s); got != c.want {
			t.Errorf("GlobMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
