package authn_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

// rbacDB opens a fresh store holding the permissions, roles and
// assignments of setup.
func rbacDB(t *testing.T, setup func(db *store.DB)) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if setup != nil {
		setup(db)
	}
	return db
}

func rbacRule(effect string, resources []string, actions ...string) store.Rule {
	return store.Rule{Effect: effect, Actions: actions, Resources: resources}
}

func rbacPut(t *testing.T, db *store.DB, perm string, rules ...store.Rule) {
	t.Helper()
	if _, err := db.PutPermission(store.Permission{Name: perm, Rules: rules}); err != nil {
		t.Fatal(err)
	}
}

func rbacRole(t *testing.T, db *store.DB, role string, perms ...string) {
	t.Helper()
	if _, err := db.PutRole(store.Role{Name: role, Permissions: perms}); err != nil {
		t.Fatal(err)
	}
}

func rbacAssign(t *testing.T, db *store.DB, a store.Assignment) {
	t.Helper()
	if _, err := db.Assign(a); err != nil {
		t.Fatal(err)
	}
}

// rbacCheck is one decision and what it must be.
type rbacCheck struct {
	subject  string
	groups   []string
	action   string
	resource string
	allowed  bool
}

func (c rbacCheck) String() string {
	return c.subject + "[" + strings.Join(c.groups, ",") + "] " + c.action + " " + c.resource
}

// rbacDecide runs every check through both entry points: authn.Test (the
// /v1/rbac/test path) and PolicyFor + Decide (the request path).
func rbacDecide(t *testing.T, db *store.DB, checks []rbacCheck) {
	t.Helper()
	for _, c := range checks {
		d, err := authn.Test(db, c.subject, c.groups, c.action, c.resource)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != c.allowed {
			t.Errorf("Test %s: allowed=%v (%s, matched %v), want %v", c, d.Allowed, d.Reason, d.Matched, c.allowed)
		}
		pol, err := authn.PolicyFor(db, &authn.Principal{Subject: c.subject, Groups: c.groups, Kind: authn.KindAPIToken})
		if err != nil {
			t.Fatal(err)
		}
		if d2 := pol.Decide(c.action, c.resource); d2.Allowed != d.Allowed || d2.Reason != d.Reason || !slices.Equal(d2.Matched, d.Matched) {
			t.Errorf("Decide %s = %+v, but Test = %+v", c, d2, d)
		}
	}
}

func TestPolicy_BuiltInRoles(t *testing.T) {
	t.Parallel()
	db := rbacDB(t, func(db *store.DB) {
		rbacAssign(t, db, store.Assignment{Subject: "ada", Role: "admin"})
		rbacAssign(t, db, store.Assignment{Subject: "wes", Role: "writer"})
		rbacAssign(t, db, store.Assignment{Subject: "rea", Role: "reader"})
	})
	want := map[string]map[string]bool{
		"ada":    {store.ActionRead: true, store.ActionWrite: true, store.ActionLock: true, store.ActionForceUnlock: true, store.ActionDelete: true, store.ActionRBACManage: true, store.ActionTokenManage: true, store.ActionAll: true},
		"wes":    {store.ActionRead: true, store.ActionWrite: true, store.ActionLock: true},
		"rea":    {store.ActionRead: true},
		"nobody": {},
	}
	var checks []rbacCheck
	for subject, allowed := range want {
		for _, action := range store.Actions {
			for _, res := range []string{"a", "a/b", "deep/x/y/z"} {
				unitAction := strings.HasPrefix(action, "unit.")
				checks = append(checks, rbacCheck{subject: subject, action: action, resource: res, allowed: allowed[action] && (unitAction || subject == "ada")})
			}
			if !strings.HasPrefix(action, "unit.") {
				checks = append(checks, rbacCheck{subject: subject, action: action, resource: "", allowed: allowed[action]})
			}
		}
	}
	rbacDecide(t, db, checks)

	d, err := authn.Test(db, "nobody", nil, store.ActionRead, "a")
	if err != nil {
		t.Fatal(err)
	} else if d.Allowed || len(d.Matched) != 0 || !strings.Contains(d.Reason, "no rule allows") || d.Matched == nil {
		t.Errorf("no-role decision = %+v, want refused, no rule matched (empty, not null), reason naming that", d)
	}
	d, _ = authn.Test(db, "wes", nil, store.ActionWrite, "a/b")
	if !d.Allowed || !slices.Equal(d.Matched, []string{"writer/writer#1"}) || d.Reason != "allowed by writer/writer#1" {
		t.Errorf("writer decision = %+v, want allowed by writer/writer#1", d)
	}
}

func TestPolicy_DenyBeatsAllow(t *testing.T) {
	t.Parallel()
	db := rbacDB(t, func(db *store.DB) {
		// Deny in another permission of the same role, after the allow.
		rbacPut(t, db, "all", rbacRule("allow", []string{"*"}, "*"))
		rbacPut(t, db, "no-prod-delete", rbacRule("deny", []string{"*/prod/*", "*/prod"}, store.ActionDelete))
		rbacRole(t, db, "r-same", "all", "no-prod-delete")
		rbacAssign(t, db, store.Assignment{Subject: "same", Role: "r-same"})

		// Deny in another role (assigned to a group), allow in admin.
		rbacRole(t, db, "r-deny", "no-prod-delete")
		rbacAssign(t, db, store.Assignment{Subject: "cross", Role: "admin"})
		rbacAssign(t, db, store.Assignment{Group: "careful", Role: "r-deny"})

		// Deny before allow and allow before deny within one permission.
		rbacPut(t, db, "deny-first",
			rbacRule("deny", []string{"x/secret"}, store.ActionRead),
			rbacRule("allow", []string{"x/*"}, store.ActionRead))
		rbacPut(t, db, "allow-first",
			rbacRule("allow", []string{"y/*"}, "unit.*"),
			rbacRule("deny", []string{"y/secret"}, "unit.*"))
		rbacRole(t, db, "r-order", "deny-first", "allow-first")
		rbacAssign(t, db, store.Assignment{Subject: "order", Role: "r-order"})

		// An allow of a role assigned twice (subject and group) still
		// loses to one deny.
		rbacAssign(t, db, store.Assignment{Subject: "twice", Role: "writer"})
		rbacAssign(t, db, store.Assignment{Group: "g-writer", Role: "writer"})
		rbacPut(t, db, "no-write-z", rbacRule("deny", []string{"z/*"}, store.ActionWrite))
		rbacRole(t, db, "r-no-write-z", "no-write-z")
		rbacAssign(t, db, store.Assignment{Group: "g-nz", Role: "r-no-write-z"})
	})
	rbacDecide(t, db, []rbacCheck{
		{"same", nil, store.ActionDelete, "app/prod/db", false},
		{"same", nil, store.ActionDelete, "app/prod", false},
		{"same", nil, store.ActionDelete, "app/dev/db", true},
		{"same", nil, store.ActionWrite, "app/prod/db", true},
		{"same", nil, store.ActionRBACManage, "", true},

		{"cross", nil, store.ActionDelete, "app/prod/db", true},
		{"cross", []string{"careful"}, store.ActionDelete, "app/prod/db", false},
		{"cross", []string{"careful"}, store.ActionDelete, "app/dev/db", true},
		{"cross", []string{"careful"}, store.ActionRead, "app/prod/db", true},
		{"nobody", []string{"careful"}, store.ActionDelete, "app/dev/db", false},

		{"order", nil, store.ActionRead, "x/secret", false},
		{"order", nil, store.ActionRead, "x/public", true},
		{"order", nil, store.ActionWrite, "x/public", false},
		{"order", nil, store.ActionRead, "y/secret", false},
		{"order", nil, store.ActionLock, "y/secret", false},
		{"order", nil, store.ActionLock, "y/other", true},
		{"order", nil, store.ActionRBACManage, "", false},

		{"twice", []string{"g-writer"}, store.ActionWrite, "z/a", true},
		{"twice", []string{"g-writer", "g-nz"}, store.ActionWrite, "z/a", false},
		{"twice", []string{"g-writer", "g-nz"}, store.ActionRead, "z/a", true},
	})

	d, err := authn.Test(db, "cross", []string{"careful"}, store.ActionDelete, "app/prod/db")
	if err != nil {
		t.Fatal(err)
	}
	if d.Reason != "denied by r-deny/no-prod-delete#1" {
		t.Errorf("reason %q, want the deny rule named", d.Reason)
	}
	if !slices.Contains(d.Matched, "admin/admin#1") || !slices.Contains(d.Matched, "r-deny/no-prod-delete#1") || len(d.Matched) != 2 {
		t.Errorf("matched %v, want both the admin allow and the deny", d.Matched)
	}
}

func TestPolicy_Globs(t *testing.T) {
	t.Parallel()
	db := rbacDB(t, func(db *store.DB) {
		rbacPut(t, db, "myapp", rbacRule("allow", []string{"myapp/*"}, store.ActionRead))
		rbacPut(t, db, "exact", rbacRule("allow", []string{"solo"}, store.ActionRead))
		rbacPut(t, db, "literal", rbacRule("allow", []string{"v1.2/*", "a?b", "[x]"}, store.ActionRead))
		rbacPut(t, db, "mid", rbacRule("allow", []string{"org/*/net"}, store.ActionWrite))
		rbacPut(t, db, "unitglob", rbacRule("allow", []string{"team/*"}, "unit.*"))
		rbacRole(t, db, "globs", "myapp", "exact", "literal", "mid", "unitglob")
		rbacAssign(t, db, store.Assignment{Subject: "g", Role: "globs"})
	})
	r := store.ActionRead
	rbacDecide(t, db, []rbacCheck{
		{"g", nil, r, "myapp/prod", true},
		{"g", nil, r, "myapp/prod/db", true},
		{"g", nil, r, "myapp", false},
		{"g", nil, r, "myapp2/prod", false},
		{"g", nil, r, "MyApp/prod", false},
		{"g", nil, r, "x/myapp/prod", false},
		{"g", nil, r, "solo", true},
		{"g", nil, r, "solo/x", false},
		{"g", nil, r, "v1.2/a", true},
		{"g", nil, r, "v1x2/a", false},
		{"g", nil, r, "axb", false},
		{"g", nil, r, "a?b", true},
		{"g", nil, r, "x", false},
		{"g", nil, store.ActionWrite, "org/team/net", true},
		{"g", nil, store.ActionWrite, "org/a/b/net", true},
		{"g", nil, store.ActionWrite, "org/net", false},
		{"g", nil, store.ActionWrite, "org/team/net2", false},
		// Action globs: unit.* covers the unit actions only.
		{"g", nil, store.ActionDelete, "team/a", true},
		{"g", nil, store.ActionForceUnlock, "team/a/b", true},
		{"g", nil, store.ActionRBACManage, "team/a", false},
		{"g", nil, store.ActionTokenManage, "", false},
		{"g", nil, store.ActionAll, "", false},
		{"g", nil, store.ActionDelete, "team", false},
	})
}

func TestPolicy_Groups(t *testing.T) {
	t.Parallel()
	db := rbacDB(t, func(db *store.DB) {
		rbacPut(t, db, "b", rbacRule("allow", []string{"team-b/*"}, store.ActionRead, store.ActionWrite, store.ActionLock))
		rbacRole(t, db, "team-b", "b")
		rbacAssign(t, db, store.Assignment{Group: "team-b-devs", Role: "team-b"})
		rbacAssign(t, db, store.Assignment{Group: "auditors", Role: "reader"})
		// A subject named like a group is not that group.
		rbacAssign(t, db, store.Assignment{Subject: "ops", Role: "admin"})
	})
	rbacDecide(t, db, []rbacCheck{
		{"gina", []string{"team-b-devs"}, store.ActionWrite, "team-b/svc", true},
		{"gina", []string{"team-b-devs"}, store.ActionRead, "team-a/svc", false},
		{"gina", []string{"team-b-devs"}, store.ActionDelete, "team-b/svc", false},
		{"gina", nil, store.ActionRead, "team-b/svc", false},
		{"gina", []string{"team-b"}, store.ActionRead, "team-b/svc", false}, // role name, not a group
		{"gina", []string{"team-b-devs", "auditors"}, store.ActionRead, "team-a/svc", true},
		{"gina", []string{"team-b-devs", "auditors"}, store.ActionWrite, "team-a/svc", false},
		{"team-b-devs", nil, store.ActionRead, "team-b/svc", false}, // a subject named like the group
		{"x", []string{"ops"}, store.ActionRead, "a", false},
		{"ops", nil, store.ActionRead, "a", true},
	})

	// The roles of a principal are those of its subject and its groups.
	p := &authn.Principal{Subject: "gina", Groups: []string{"team-b-devs", "auditors", "unknown"}, Kind: authn.KindAccess}
	pol, err := authn.PolicyFor(db, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := pol.Decide(store.ActionLock, "team-b/x"); !d.Allowed || !slices.Equal(d.Matched, []string{"team-b/b#1"}) {
		t.Errorf("group policy decision = %+v", d)
	}
}

func TestPolicy_Anonymous(t *testing.T) {
	t.Parallel()
	db := rbacDB(t, nil)
	pol, err := authn.PolicyFor(db, &authn.Principal{Subject: "anonymous", Kind: authn.KindAnonymous})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range store.Actions {
		if d := pol.Decide(a, "any/unit"); !d.Allowed {
			t.Errorf("--auth-disable anonymous admin refused %s: %+v", a, d)
		}
	}
	// A real principal that happens to be called "anonymous" gets nothing.
	pol, err = authn.PolicyFor(db, &authn.Principal{Subject: "anonymous", Kind: authn.KindAPIToken})
	if err != nil {
		t.Fatal(err)
	}
	if d := pol.Decide(store.ActionRead, "a"); d.Allowed {
		t.Errorf("a token principal named anonymous was allowed: %+v", d)
	}
}

// TestPolicy_Live checks that a policy reflects the RBAC data at the time
// it is compiled: role changes take effect on the next request.
func TestPolicy_Live(t *testing.T) {
	t.Parallel()
	db := rbacDB(t, nil)
	check := func(want bool) {
		t.Helper()
		d, err := authn.Test(db, "late", nil, store.ActionRead, "a/b")
		if err != nil {
			t.Fatal(err)
		} else if d.Allowed != want {
			t.Errorf("allowed = %v (%s), want %v", d.Allowed, d.Reason, want)
		}
	}
	check(false)
	a, err := db.Assign(store.Assignment{Subject: "late", Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	check(true)
	if err := db.Unassign(a.ID); err != nil {
		t.Fatal(err)
	}
	check(false)

	rbacPut(t, db, "p", rbacRule("allow", []string{"a/*"}, store.ActionRead))
	rbacRole(t, db, "r", "p")
	rbacAssign(t, db, store.Assignment{Subject: "late", Role: "r"})
	check(true)
	if err := db.DeletePermission("p", true); err != nil {
		t.Fatal(err)
	}
	check(false)
	rbacPut(t, db, "p", rbacRule("allow", []string{"a/*"}, store.ActionRead))
	check(false) // removed from the role by the forced delete
	if err := db.DeleteRole("r", true); err != nil {
		t.Fatal(err)
	}
	check(false)
}
