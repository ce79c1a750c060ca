package cli_test

import (
	"strings"
	"testing"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
)

func TestCLI_RBAC(t *testing.T) {
	e := newAuthEnv(t, authn.Config{})
	e.ok("", "login", "--token-file", e.tokenFile, "--no-terraform")

	e.ok("", "rbac", "permission", "team-a", "-r", "allow unit.* on team-a/*", "-r", "deny unit.delete on team-a/prod/*")
	e.ok("", "rbac", "role", "team-a", "-p", "team-a")
	var as struct{ ID string }
	e.okJSON(&as, "", "rbac", "assign", "team-a", "--group", "devs")

	var d authn.Decision
	e.okJSON(&d, "", "rbac", "test", "bob", "unit.write", "team-a/dev/net", "--group", "devs")
	if !d.Allowed || !strings.Contains(d.Reason, "team-a") {
		t.Fatalf("write on team-a/dev/net: %+v", d)
	}
	if r := e.run("", "rbac", "test", "bob", "unit.delete", "team-a/prod/db", "--group", "devs"); r.code != 3 || !strings.Contains(r.stdout, "denied by") {
		t.Fatalf("delete on team-a/prod/db should be denied (exit 3): %+v", r)
	}
	if r := e.run("", "rbac", "test", "bob", "unit.read", "team-b/x"); r.code != 3 {
		t.Fatalf("bob without the group reads team-b/x: %+v", r)
	}
	if r := e.run("", "rbac", "permission", "bad", "-r", "allow unit.read team-a/*"); r.code != 2 {
		t.Fatalf("a malformed rule must be invalid (exit 2): %+v", r)
	}
	// A role in use needs --force; a built-in role cannot be deleted.
	if r := e.run("", "rbac", "role", "team-a", "--delete"); r.code != 5 {
		t.Fatalf("deleting a role in use: %+v", r)
	}
	if r := e.run("", "rbac", "role", "admin", "--delete", "--force"); r.code != 5 {
		t.Fatalf("deleting a built-in role: %+v", r)
	}
	var list httpapi.RBACList
	e.okJSON(&list, "", "rbac", "ls")
	if len(list.Roles) != 4 || len(list.Assignments) != 2 { // admin, writer, reader, team-a; bootstrap admin + devs
		t.Fatalf("rbac ls: %d roles, %d assignments", len(list.Roles), len(list.Assignments))
	}
	e.ok("", "rbac", "revoke", as.ID)
	e.ok("", "rbac", "role", "team-a", "--delete")

	// The changes above are in the audit trail, attributed to the admin.
	var trail httpapi.AuditList
	e.okJSON(&trail, "", "audit", "--principal", "admin")
	var rbacChanges int
	for _, rec := range trail.Records {
		if rec.Action == "rbac.change" && rec.RequestID != "" {
			rbacChanges++
		}
	}
	if rbacChanges != 5 { // put permission, put role, assign, unassign, delete role
		t.Fatalf("%d rbac.change records, want 5: %+v", rbacChanges, trail.Records)
	}
	if r := e.run("", "audit"); r.code != 0 || !strings.Contains(r.stdout, "rbac.change") {
		t.Fatalf("audit table: %+v", r)
	}
}
