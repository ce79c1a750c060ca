package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// checkHolder fails the test unless r refuses with one of the statuses in
// want and its body is the holder's lock info in Terraform's spelling:
// ID lockID, Who who, and the rest of LB.
func checkHolder(t *testing.T, what string, r e2etest.Response, want []int, lockID, who string) {
	t.Helper()
	ok := false
	for _, st := range want {
		ok = ok || r.Status == st
	}
	if !ok {
		t.Errorf("%s: status %d, want one of %v; body %s", what, r.Status, want, r.Body)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", what, err, r.Body)
		return
	}
	var wantBody map[string]any
	if err := json.Unmarshal([]byte(e2etest.LockInfo(lockID, who)), &wantBody); err != nil {
		t.Fatal(err)
	}
	for k, v := range wantBody {
		if got[k] != v {
			t.Errorf("%s: body %s = %v, want %v (holder %s)", what, k, got[k], v, lockID)
		}
	}
}

var locked = []int{http.StatusConflict, http.StatusLocked}

// TestBackend_ForceUnlock is BR-01: `force-unlock` sends no lock info and
// must still clear a stale lock; UNLOCK by ID only works; a wrong ID is
// refused with the holder; an empty body is never a 5xx.
func TestBackend_ForceUnlock(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				id := "u1/" + tl.Name
				sb := writeConfig(t, "r", srv.httpBackend(id, v.opts))
				sb.MustRun(t, tl, "init")
				e2etest.Expect(t, "LOCK L1", srv.lockVia(t, id, v.opts, e2etest.LockInfo("L1", "ci@runner")), http.StatusOK)

				res := sb.Run(t, tl, "plan", "-lock-timeout=0s")
				if res.Code != 1 || !strings.Contains(res.Out(), "ID=L1") {
					t.Errorf("plan while L1 holds the lock: exit %d, want 1 with ID=L1 in the output", res.Code)
				}
				sb.MustRun(t, tl, "force-unlock", "-force", "L1")
				if l := srv.LockOf(t, id); l != nil {
					t.Fatalf("after force-unlock: unit still locked by %+v", l)
				}
				// terraform sends an empty body, a force-unlock that the
				// server audits; tofu 1.10 sends {"ID": "L1"}, a plain unlock.
				audited := false
				for _, l := range srv.logLines(t) {
					audited = audited || l.Event == "force_unlock" && l.Unit == id && l.LockID == "L1" && l.Principal != ""
				}
				if !audited && tl.Name == "terraform" {
					t.Errorf("no force_unlock audit line for L1 in the server log")
				}
				sb.MustRun(t, tl, "plan")

				// Step 5: unlock with the ID only.
				e2etest.Expect(t, "LOCK L2", srv.lockVia(t, id, v.opts, e2etest.LockInfo("L2", "ci")), http.StatusOK)
				e2etest.Expect(t, `UNLOCK {"ID":"L2"}`, srv.unlockVia(t, id, v.opts, []byte(`{"ID":"L2"}`)), http.StatusOK)
				if l := srv.LockOf(t, id); l != nil {
					t.Errorf("after UNLOCK by ID: still locked by %+v", l)
				}

				// Step 6: a wrong ID is refused with the holder.
				e2etest.Expect(t, "LOCK L3", srv.lockVia(t, id, v.opts, e2etest.LockInfo("L3", "ci")), http.StatusOK)
				checkHolder(t, "UNLOCK WRONG", srv.unlockVia(t, id, v.opts, []byte(e2etest.LockInfo("WRONG", "someone"))), locked, "L3", "ci")
				if l := srv.LockOf(t, id); l == nil || l.ID != "L3" {
					t.Errorf("after UNLOCK WRONG: lock %+v, want L3 still held", l)
				}

				// An empty body with a JSON content type: a force-unlock
				// (allowed with auth disabled), locked or not, never a 5xx.
				e2etest.Expect(t, "empty UNLOCK of L3", srv.unlockVia(t, id, v.opts, nil), http.StatusOK)
				if l := srv.LockOf(t, id); l != nil {
					t.Errorf("after the empty UNLOCK: still locked by %+v", l)
				}
				e2etest.Expect(t, "empty UNLOCK when unlocked", srv.unlockVia(t, id, v.opts, nil), http.StatusOK)
				e2etest.Expect(t, "empty UNLOCK of an unknown unit", srv.unlockVia(t, "nobody/"+tl.Name, v.opts, nil), http.StatusOK)
			})
		}
	})
}

// TestBackend_LockConflictBody is BR-02: a refused LOCK answers 423 with
// the stored holder as the body, which the CLI prints as ID=...
func TestBackend_LockConflictBody(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				id := "u2"
				e2etest.Expect(t, "LOCK H1", srv.lockVia(t, id, v.opts, e2etest.LockInfo("H1", "build-agent-7")), http.StatusOK)
				r := srv.lockVia(t, id, v.opts, e2etest.LockInfo("H2", "laptop"))
				checkHolder(t, "LOCK H2", r, []int{http.StatusLocked}, "H1", "build-agent-7")
				if bytes.Contains(r.Body, []byte("H2")) || bytes.Contains(r.Body, []byte("laptop")) {
					t.Errorf("LOCK H2: body mentions the refused lock: %s", r.Body)
				}

				sb := writeConfig(t, "r", srv.httpBackend(id, v.opts))
				sb.MustRun(t, tl, "init")
				res := sb.Run(t, tl, "plan", "-lock-timeout=0s")
				if res.Code != 1 || !strings.Contains(res.Out(), "ID=H1") || !strings.Contains(res.Out(), "Error acquiring the state lock") {
					t.Errorf("plan: exit %d, want 1 with ID=H1 and \"Error acquiring the state lock\"", res.Code)
				}

				u := srv.Unit(t, id)
				if u == nil || !u.Locked || u.Lock == nil || u.Lock.ID != "H1" || u.Lock.Who != "build-agent-7" ||
					u.Lock.Operation != "OperationTypeApply" || u.Lock.Created != "2025-01-01T00:00:00Z" {
					t.Errorf("GET /v1/units/u2 = %+v; want locked by H1 (build-agent-7)", u)
				}
			})
		}
	})
}

// TestBackend_LockTimeout is BR-03: -lock-timeout waits through 423
// answers until the holder lets go; -lock-timeout=0s fails at once with a
// lock error.
func TestBackend_LockTimeout(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		id := "u3/" + tl.Name
		sb := writeConfig(t, "r", srv.httpBackend(id, backendOpts{}))
		sb.MustRun(t, tl, "init")
		e2etest.Expect(t, "LOCK Q1", srv.lockRaw(t, id, "Q1", "other-run"), http.StatusOK)
		nLock := len(srv.requests(t, backendRoute)) // our LOCK is the last one

		const hold = 4 * time.Second
		unlocked := make(chan int, 1)
		go func() {
			time.Sleep(hold)
			req, _ := http.NewRequest("UNLOCK", srv.BackendURL(id), strings.NewReader(e2etest.LockInfo("Q1", "other-run")))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				unlocked <- -1
				return
			}
			res.Body.Close()
			unlocked <- res.StatusCode
		}()
		start := time.Now()
		res := sb.Run(t, tl, "apply", "-auto-approve", "-lock-timeout=30s")
		took := time.Since(start)
		if st := <-unlocked; st != http.StatusOK {
			t.Fatalf("background UNLOCK Q1: status %d, want 200", st)
		}
		if res.Code != 0 || took < hold-500*time.Millisecond {
			t.Fatalf("apply -lock-timeout=30s: exit %d after %s; want 0 after waiting about %s", res.Code, took, hold)
		}
		var refused, taken int
		for _, l := range srv.requests(t, backendRoute)[nLock:] {
			switch {
			case l.Method != "LOCK":
			case l.Status == http.StatusLocked && taken == 0:
				refused++
			case l.Status == http.StatusOK:
				taken++
			default:
				t.Errorf("LOCK answered %d (refused %d, taken %d before)", l.Status, refused, taken)
			}
		}
		if refused < 2 || taken != 1 {
			t.Errorf("LOCK attempts while waiting: %d answered 423, then %d answered 200; want several, then 1", refused, taken)
		}
		if vs := srv.Versions(t, id); len(vs) != 1 {
			t.Errorf("%d versions after the apply, want 1", len(vs))
		}

		e2etest.Expect(t, "re-LOCK Q1", srv.lockRaw(t, id, "Q1", "other-run"), http.StatusOK)
		res = sb.Run(t, tl, "apply", "-auto-approve", "-lock-timeout=0s", "-var", "v=two")
		if res.Code != 1 || !strings.Contains(res.Out(), "Error acquiring the state lock") ||
			strings.Contains(res.Out(), "Unexpected HTTP response code") || res.Dur > 20*time.Second {
			t.Errorf("apply -lock-timeout=0s: exit %d after %s; want 1 at once with \"Error acquiring the state lock\"", res.Code, res.Dur)
		}
		if vs := srv.Versions(t, id); len(vs) != 1 {
			t.Errorf("%d versions after the refused apply, want 1", len(vs))
		}
		if l := srv.LockOf(t, id); l == nil || l.ID != "Q1" {
			t.Errorf("lock %+v, want Q1 still held", l)
		}
	})
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestBackend_ConcurrentApply: two applies of one unit at once; one holds
// the lock, the other fails naming the winner's lock ID.
func TestBackend_ConcurrentApply(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		id := "u5/" + tl.Name
		var sbs [2]*e2etest.Sandbox
		for i := range sbs {
			sbs[i] = writeConfig(t, "r-slow", srv.httpBackend(id, backendOpts{}))
			sbs[i].MustRun(t, tl, "init")
		}
		before := len(srv.Versions(t, id))

		var wg sync.WaitGroup
		var results [2]e2etest.Result
		for i := range sbs {
			wg.Go(func() { results[i] = sbs[i].Run(t, tl, "apply", "-auto-approve", "-var", fmt.Sprintf("v=c%d", i)) })
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		// Watch the lock while the runs go on; the winner holds it for
		// the 3 s of its provisioner.
		var seen []string
	watch:
		for {
			if l := srv.LockOf(t, id); l != nil && (len(seen) == 0 || seen[len(seen)-1] != l.ID) {
				seen = append(seen, l.ID)
			}
			select {
			case <-done:
				break watch
			case <-time.After(20 * time.Millisecond):
			}
		}
		if len(seen) != 1 || !uuidRE.MatchString(seen[0]) {
			t.Fatalf("locks seen during the runs: %q; want one UUID", seen)
		}
		winner := seen[0]
		var ok, failed int
		for i, res := range results {
			switch res.Code {
			case 0:
				ok++
			case 1:
				failed++
				if !strings.Contains(res.Out(), "ID="+winner) || !strings.Contains(res.Out(), "Error acquiring the state lock") {
					t.Errorf("run %d failed without naming the holder: want \"Error acquiring the state lock\" and ID=%s", i, winner)
				}
			}
		}
		if ok != 1 || failed != 1 {
			t.Errorf("exit codes %d and %d; want one 0 and one 1", results[0].Code, results[1].Code)
		}
		if after := len(srv.Versions(t, id)); after != before+1 {
			t.Errorf("%d versions after the runs, want %d", after, before+1)
		}
		if l := srv.LockOf(t, id); l != nil {
			t.Errorf("still locked after the runs: %+v", l)
		}
	})
}

// TestBackend_WriteRespectsLock is BR-04: no state write gets past
// someone else's lock unless it names that lock; an unlocked unit takes
// any write.
func TestBackend_WriteRespectsLock(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				id := "u4/" + tl.Name
				sb := writeConfig(t, "r", srv.httpBackend(id, v.opts))
				sb.MustRun(t, tl, "init")
				sb.MustRun(t, tl, "apply", "-auto-approve")
				first := srv.backendState(t, id)
				serial := e2etest.ParseState(t, first).Serial
				nv := len(srv.Versions(t, id))

				e2etest.Expect(t, "LOCK OTHER", srv.lockVia(t, id, v.opts, e2etest.LockInfo("OTHER", "ci")), http.StatusOK)
				res := sb.Run(t, tl, "apply", "-auto-approve", "-lock=false", "-var", "v=two")
				out := res.Out()
				if res.Code != 1 || !strings.Contains(out, "Error saving state") ||
					!strings.Contains(out, "409") && !strings.Contains(out, "423") {
					t.Errorf("apply -lock=false: exit %d; want 1 with \"Error saving state\" and HTTP 409 or 423", res.Code)
				}
				if _, err := os.Stat(filepath.Join(sb.Dir, "errored.tfstate")); err != nil {
					t.Errorf("apply -lock=false left no errored.tfstate: %v", err)
				}
				cur := srv.backendState(t, id)
				if st := e2etest.ParseState(t, cur); !bytes.Equal(cur, first) || st.Serial != serial || st.Outputs["v"].Value != "one" {
					t.Errorf("stored state changed: serial %d (want %d), output v %v (want one)", st.Serial, serial, st.Outputs["v"].Value)
				}
				if n := len(srv.Versions(t, id)); n != nv {
					t.Errorf("%d versions after the refused apply, want %d", n, nv)
				}

				s1 := withSerial(t, first, serial+1)
				checkHolder(t, "POST ?ID=WRONG", srv.Do(t, http.MethodPost, srv.BackendURL(id)+"?ID=WRONG", "", s1), locked, "OTHER", "ci")
				checkHolder(t, "POST without ID", srv.Do(t, http.MethodPost, srv.BackendURL(id), "", s1), locked, "OTHER", "ci")
				if n := len(srv.Versions(t, id)); n != nv {
					t.Errorf("%d versions after the refused POSTs, want %d", n, nv)
				}
				e2etest.Expect(t, "POST ?ID=OTHER", srv.Do(t, http.MethodPost, srv.BackendURL(id)+"?ID=OTHER", "", s1), http.StatusOK)
				if n := len(srv.Versions(t, id)); n != nv+1 {
					t.Errorf("%d versions after POST ?ID=OTHER, want %d", n, nv+1)
				}
				if got := srv.Download(t, id); !bytes.Equal(got, s1) {
					t.Errorf("stored bytes differ from the POSTed ones")
				}

				e2etest.Expect(t, "UNLOCK OTHER", srv.unlockVia(t, id, v.opts, []byte(e2etest.LockInfo("OTHER", "ci"))), http.StatusOK)
				s2 := withSerial(t, first, serial+2)
				e2etest.Expect(t, "POST without ID, unlocked", srv.Do(t, http.MethodPost, srv.BackendURL(id), "", s2), http.StatusOK)
				if n := len(srv.Versions(t, id)); n != nv+2 {
					t.Errorf("%d versions after the unlocked POST, want %d", n, nv+2)
				}
			})
		}
	})
}

// withSerial returns state with its top-level serial set to n.
func withSerial(t *testing.T, state []byte, n int64) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	e2etest.MustJSON(t, state, &m)
	m["serial"], _ = json.Marshal(n)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
