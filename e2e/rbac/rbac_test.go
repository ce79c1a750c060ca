package rbac

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/store"
)

// auditBy returns the actions of the audit records of unit id made by
// principal, oldest first.
func (s *server) auditBy(t *testing.T, id, principal string) []string {
	t.Helper()
	var out []string
	recs := s.audit(t, id)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Principal == principal {
			out = append(out, recs[i].Action)
		}
	}
	return out
}

func wantActions(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: audit actions %v, want %v", what, got, want)
	}
}

// TestRBAC_Backend: through the http backend, a writer applies; a reader
// can plan (without taking the lock) but its apply is refused at the lock
// with a 403 that terraform reports, and nothing changes; a custom role
// applies inside its namespace only; force-unlock (terraform's empty-body
// UNLOCK) needs unit.force_unlock.
func TestRBAC_Backend(t *testing.T) {
	t.Parallel()
	tf := e2etest.FindTool(t, "terraform")
	srv := startServer(t)
	const id = "team-a/app/net"

	w := newConfig(t, srv, tf, "r", srv.httpBackend(id), "walt")
	w.mustRun(t, "init")
	w.mustRun(t, "apply", "-auto-approve")
	u := srv.unit(t, id)
	if u.VersionCount != 1 || u.Locked {
		t.Fatalf("after the writer's apply: %d versions, locked %v; want 1, unlocked", u.VersionCount, u.Locked)
	}
	wantActions(t, "writer apply", srv.auditBy(t, id, "walt"), store.AuditLock, store.AuditWrite, store.AuditUnlock)

	t.Run("Reader", func(t *testing.T) {
		r := newConfig(t, srv, tf, "r", srv.httpBackend(id), "rita")
		r.mustRun(t, "init")
		res := r.mustRun(t, "plan", "-lock=false", "-detailed-exitcode")
		if !strings.Contains(res.Out(), "No changes") {
			t.Errorf("reader's plan does not read the writer's state:\n%s", e2etest.Tail(res.Out(), 2000))
		}
		// 403 on LOCK: terraform's http backend words it "invalid auth".
		r.mustFail(t, []string{"plan", "-var", "v=two"}, "Error acquiring the state lock", "HTTP remote state endpoint invalid auth")
		r.mustFail(t, []string{"apply", "-auto-approve", "-var", "v=two"}, "Error acquiring the state lock", "HTTP remote state endpoint invalid auth")
		if u := srv.unit(t, id); u.VersionCount != 1 || u.Locked {
			t.Errorf("after the reader's refused apply: %d versions, locked %v", u.VersionCount, u.Locked)
		}
		wantActions(t, "reader", srv.auditBy(t, id, "rita"))
	})

	t.Run("Custom", func(t *testing.T) {
		c := newConfig(t, srv, tf, "r", srv.httpBackend(id), "carl")
		c.mustRun(t, "init")
		c.mustRun(t, "apply", "-auto-approve", "-var", "v=two")
		if u := srv.unit(t, id); u.VersionCount != 2 || u.Locked {
			t.Errorf("after the custom role's apply: %d versions, locked %v", u.VersionCount, u.Locked)
		}
		wantActions(t, "custom apply", srv.auditBy(t, id, "carl"), store.AuditLock, store.AuditWrite, store.AuditUnlock)

		// Outside team-a the unit does not exist for carl: nothing is
		// created, and terraform fails at the lock.
		o := newConfig(t, srv, tf, "r", srv.httpBackend("other/net"), "carl")
		o.mustRun(t, "init")
		o.mustFail(t, []string{"apply", "-auto-approve"}, "Error acquiring the state lock", "404")
		if _, err := srv.DB.GetUnit("other/net"); store.ErrorCode(err) != store.ENOTFOUND {
			t.Errorf("other/net after carl's refused apply: %v, want not found", err)
		}
	})

	t.Run("ForceUnlock", func(t *testing.T) {
		srv.must(t, "admin", "LOCK", "/v1/backend/"+id, `{"ID":"held-by-admin","Operation":"OperationTypeApply","Who":"admin@ci"}`, http.StatusOK)
		w := newConfig(t, srv, tf, "r", srv.httpBackend(id), "walt")
		w.mustRun(t, "init")
		w.mustFail(t, []string{"force-unlock", "-force", "held-by-admin"}, "Failed to unlock state", "403")
		if u := srv.unit(t, id); !u.Locked {
			t.Fatal("the writer's refused force-unlock released the lock")
		}
		r := newConfig(t, srv, tf, "r", srv.httpBackend(id), "rita")
		r.mustRun(t, "init")
		r.mustFail(t, []string{"force-unlock", "-force", "held-by-admin"}, "403")
		// A writer's apply meets the lock: terraform names its holder.
		w.mustFail(t, []string{"apply", "-auto-approve", "-lock-timeout=0s"}, "Error acquiring the state lock", "held-by-admin")

		c := newConfig(t, srv, tf, "r", srv.httpBackend(id), "carl")
		c.mustRun(t, "init")
		res := c.mustRun(t, "force-unlock", "-force", "held-by-admin")
		if !strings.Contains(res.Out(), "successfully unlocked") {
			t.Errorf("force-unlock output:\n%s", res.Out())
		}
		if u := srv.unit(t, id); u.Locked {
			t.Error("still locked after carl's force-unlock")
		}
		// carl: its apply, then the force-unlock; walt and rita: nothing
		// since the writer's first apply.
		wantActions(t, "carl", srv.auditBy(t, id, "carl"), store.AuditLock, store.AuditWrite, store.AuditUnlock, store.AuditForceUnlock)
		wantActions(t, "walt", srv.auditBy(t, id, "walt"), store.AuditLock, store.AuditWrite, store.AuditUnlock)
		wantActions(t, "rita", srv.auditBy(t, id, "rita"))
	})
}

// TestRBAC_Cloud: through the cloud block, a writer creates its workspace
// and applies; a reader's plan reads the state while its apply is refused
// with a clear error and changes nothing; a reader cannot create a
// workspace.
func TestRBAC_Cloud(t *testing.T) {
	t.Parallel()
	tf := e2etest.FindTool(t, "terraform")
	srv := startServer(t)
	const ws, id = "team-a__cloud", "team-a/cloud"

	w := newConfig(t, srv, tf, "r", srv.cloudBlock(ws), "walt")
	w.mustRun(t, "init")
	w.mustRun(t, "apply", "-auto-approve")
	u := srv.unit(t, id)
	if u.VersionCount != 1 || u.Locked {
		t.Fatalf("after the writer's apply: %d versions, locked %v; want 1, unlocked", u.VersionCount, u.Locked)
	}
	wantActions(t, "writer", srv.auditBy(t, id, "walt"), store.AuditCreate, store.AuditLock, store.AuditWrite, store.AuditUnlock)

	t.Run("Reader", func(t *testing.T) {
		r := newConfig(t, srv, tf, "r", srv.cloudBlock(ws), "rita")
		r.mustRun(t, "init")
		res := r.mustRun(t, "plan", "-lock=false")
		if !strings.Contains(res.Out(), "No changes") {
			t.Errorf("reader's plan does not read the writer's state:\n%s", e2etest.Tail(res.Out(), 2000))
		}
		res = r.mustRun(t, "output", "-raw", "v")
		if strings.TrimSpace(res.Stdout) != "one" {
			t.Errorf("reader's output v = %q, want one", res.Stdout)
		}
		r.mustFail(t, []string{"plan", "-var", "v=two"}, "Error acquiring the state lock", `you may not unit.lock unit "team-a/cloud"`)
		r.mustFail(t, []string{"apply", "-auto-approve", "-var", "v=two"}, "Error acquiring the state lock", `you may not unit.lock unit "team-a/cloud"`)
		if u := srv.unit(t, id); u.VersionCount != 1 || u.Locked {
			t.Errorf("after the reader's refused apply: %d versions, locked %v", u.VersionCount, u.Locked)
		}
		wantActions(t, "reader", srv.auditBy(t, id, "rita"))

		n := newConfig(t, srv, tf, "r", srv.cloudBlock("team-a__new"), "rita")
		n.mustFail(t, []string{"init"}, `you may not create workspace "team-a__new"`)
		if _, err := srv.DB.GetUnit("team-a/new"); store.ErrorCode(err) != store.ENOTFOUND {
			t.Errorf("team-a/new after the reader's init: %v, want not found", err)
		}
	})

	t.Run("Custom", func(t *testing.T) {
		// carl may write team-a/* but cannot see other/*.
		c := newConfig(t, srv, tf, "r", srv.cloudBlock(ws), "carl")
		c.mustRun(t, "init")
		c.mustRun(t, "apply", "-auto-approve", "-var", "v=two")
		if u := srv.unit(t, id); u.VersionCount != 2 {
			t.Errorf("after carl's apply: %d versions, want 2", u.VersionCount)
		}
		srv.must(t, "admin", http.MethodPost, "/tfe/api/v2/organizations/acme/workspaces", `{"data":{"type":"workspaces","attributes":{"name":"other__cloud"}}}`, http.StatusCreated)
		o := newConfig(t, srv, tf, "r", srv.cloudBlock("other__cloud"), "carl")
		// The workspace does not exist for carl, so terraform tries to
		// create it, which is refused the same way whether or not it exists.
		o.mustFail(t, []string{"init"}, `you may not create workspace "other__cloud"`)
		if u := srv.unit(t, "other/cloud"); u.VersionCount != 0 || u.Locked {
			t.Errorf("other/cloud after carl's init: %+v", u)
		}
	})

	// BR-17 step 6: a stranded lock cannot be broken with a token that
	// lacks unit.force_unlock; the workspace stays locked until one that
	// has it does.
	t.Run("ForceUnlockDenied", func(t *testing.T) {
		srv.must(t, "admin", http.MethodPost, "/tfe/api/v2/workspaces/ws-"+ws+"/actions/lock", `{"reason":"stranded"}`, http.StatusOK)
		w := newConfig(t, srv, tf, "r", srv.cloudBlock(ws), "walt")
		w.mustRun(t, "init")
		w.mustFail(t, []string{"force-unlock", "-force", "acme/" + ws}, "forbidden", `you may not unit.force_unlock unit "team-a/cloud"`)
		if u := srv.unit(t, id); !u.Locked {
			t.Fatal("the writer's refused force-unlock released the lock")
		}
		c := newConfig(t, srv, tf, "r", srv.cloudBlock(ws), "carl")
		c.mustRun(t, "init")
		c.mustRun(t, "force-unlock", "-force", "acme/"+ws)
		if u := srv.unit(t, id); u.Locked {
			t.Fatal("still locked after carl's force-unlock")
		}
	})
}
