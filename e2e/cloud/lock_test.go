package cloud

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// lockBody is LB(id, who): a lock-info body as Terraform sends it.
func lockBody(id, who string) []byte { return []byte(e2etest.LockInfo(id, who)) }

// v1LockWho returns the holder recorded in GET /v1/units/<id>/lock.
func (s *server) v1LockWho(t *testing.T, ws string) string {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/v1/units/"+url.PathEscape(ws)+"/lock", tok3, nil)
	e2etest.Expect(t, "GET /v1 lock of "+ws, r, http.StatusOK)
	var l struct {
		Who string `json:"who"`
	}
	e2etest.MustJSON(t, r.Body, &l)
	return l.Who
}

// TestCloud_ManualLockSurvives is BR-16: a lock taken through the API
// (actions/lock, or /v1) holds against CLI runs of another principal,
// which fail with a lock error; -lock=false runs send no lock calls; an
// unlock by another principal is a 409 whose detail go-tfe understands.
func TestCloud_ManualLockSurvives(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		ws := "freeze__" + tl.Short() // unit freeze/<tool>
		wsID := "ws-" + ws
		c := newConfig(t, srv, "r", cloudBlock(srv.Host, ws), tok)
		c.mustRun(t, tl, "init")
		c.mustRun(t, tl, "apply", "-auto-approve")
		if n := len(srv.versions(t, ws)); n != 1 {
			t.Fatalf("%d versions after the first apply, want 1", n)
		}

		// The principals behind the tokens, as the server records them.
		whoOf := map[string]string{}
		for _, tk := range []string{tok, tok2} {
			scratch := "who-" + tk[4:7]
			id := srv.createWorkspace(t, scratch).ID
			e2etest.Expect(t, "lock "+scratch, srv.api(t, http.MethodPost, "/workspaces/"+id+"/actions/lock", tk, []byte(`{"reason":"probe"}`)), http.StatusOK)
			whoOf[tk] = srv.v1LockWho(t, scratch)
		}
		if whoOf[tok] == "" || whoOf[tok] == whoOf[tok2] {
			t.Errorf("lock holders of two tokens: %q and %q, want two distinct principals", whoOf[tok], whoOf[tok2])
		}

		// 1. The manual lock, in the body form of the TFE API docs.
		r := srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/actions/lock", tok, []byte(`{"reason":"freeze"}`))
		e2etest.Expect(t, "manual lock", r, http.StatusOK)
		if l, _ := one(t, r, "workspaces").boolean("locked"); !l {
			t.Fatalf("manual lock answer: locked = false")
		}

		// 2–3. CLI runs of another principal fail on the lock.
		c.setToken(t, tok2)
		c.mustFail(t, tl, "Error acquiring the state lock", "plan")
		c.mustFail(t, tl, "Error acquiring the state lock", "apply", "-auto-approve", "-var", "v=two")

		// 4. -lock=false reads without touching the lock.
		m := srv.Requests.Mark()
		c.mustRun(t, tl, "plan", "-lock=false")
		if n := len(srv.Requests.Since(m, "", "/actions/lock")) + len(srv.Requests.Since(m, "", "/actions/unlock")); n != 0 {
			t.Errorf("plan -lock=false sent %d lock/unlock requests, want 0", n)
		}

		// 5. Still locked by the first principal, no new version.
		if !srv.locked(t, ws) {
			t.Fatalf("the manual lock was lifted by CLI runs")
		}
		if who := srv.v1LockWho(t, ws); who != whoOf[tok] {
			t.Errorf("lock holder %q, want the first principal %q", who, whoOf[tok])
		}
		if n := len(srv.versions(t, ws)); n != 1 {
			t.Errorf("%d versions while frozen, want 1", n)
		}
		// A state version from another principal is refused while locked.
		st := srv.download(t, ws, 0)
		next := editState(t, st, e2etest.ParseState(t, st).Serial+1, "")
		if r := srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/state-versions", tok2, svCreate(e2etest.ParseState(t, st).Serial+1, md5hex(next), e2etest.ParseState(t, st).Lineage, "x", next)); r.Status != http.StatusConflict {
			t.Errorf("state version by another principal while locked: %s, want 409", r)
		}
		if n := len(srv.versions(t, ws)); n != 1 {
			t.Errorf("%d versions after the refused write, want 1", n)
		}

		// 6. Unlock by the other principal: 409 "is locked by User"; by
		// the holder: 200.
		r = srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/actions/unlock", tok2, nil)
		if r.Status != http.StatusConflict {
			t.Errorf("unlock by another principal: %s, want 409", r)
		} else if errs := errorsOf(t, "unlock by another principal", r); len(errs) > 0 && !strings.Contains(errs[0].Detail, "is locked by User") {
			t.Errorf("unlock by another principal: detail %q, want it to contain \"is locked by User\"", errs[0].Detail)
		}
		if !srv.locked(t, ws) {
			t.Fatalf("unlock by another principal lifted the lock")
		}
		r = srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/actions/unlock", tok, nil)
		e2etest.Expect(t, "unlock by the holder", r, http.StatusOK)
		if l, _ := one(t, r, "workspaces").boolean("locked"); l {
			t.Errorf("unlock answer: locked = true")
		}

		// Cross-surface: a /v1 lock blocks a cloud-block apply ...
		v1 := "/v1/units/" + url.PathEscape(ws)
		r = srv.Do(t, http.MethodPost, v1+"/lock", tok3, lockBody("v1-lock-1", "ops@console"), "Content-Type", "application/json")
		e2etest.Expect(t, "POST /v1 lock", r, http.StatusOK)
		if !srv.locked(t, ws) {
			t.Errorf("a /v1 lock does not show as locked:true on the workspace")
		}
		c.mustFail(t, tl, "Error acquiring the state lock", "apply", "-auto-approve", "-var", "v=two")
		if n := len(srv.versions(t, ws)); n != 1 {
			t.Errorf("%d versions after an apply against a /v1 lock, want 1", n)
		}
		r = srv.Do(t, http.MethodDelete, v1+"/unlock", tok3, []byte(`{"id":"v1-lock-1"}`), "Content-Type", "application/json")
		e2etest.Expect(t, "DELETE /v1 unlock", r, http.StatusOK)

		// ... and a TFE lock makes a /v1 lock a conflict.
		e2etest.Expect(t, "TFE lock", srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/actions/lock", tok, []byte(`{"reason":"freeze again"}`)), http.StatusOK)
		r = srv.Do(t, http.MethodPost, v1+"/lock", tok3, lockBody("v1-lock-2", "ops@console"), "Content-Type", "application/json")
		if r.Status != http.StatusConflict {
			t.Errorf("POST /v1 lock while TFE-locked: %s, want 409", r)
		}
		e2etest.Expect(t, "unlock by the holder", srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/actions/unlock", tok, nil), http.StatusOK)

		// Once free, the other principal's apply goes through.
		c.mustRun(t, tl, "apply", "-auto-approve", "-var", "v=two")
		if n := len(srv.versions(t, ws)); n != 2 {
			t.Errorf("%d versions after the final apply, want 2", n)
		}
		if srv.locked(t, ws) {
			t.Errorf("workspace still locked after the final apply")
		}
	})
}
