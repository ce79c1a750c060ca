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
)

// checkHolder fails the test unless r refuses with one of the statuses in
// want and its body is the holder's lock info in Terraform's spelling:
// ID lockID, Who who, and the rest of LB.
func checkHolder(t *testing.T, what string, r response, want []int, lockID, who string) {
	t.Helper()
	ok := false
	for _, st := range want {
		ok = ok || r.status == st
	}
	if !ok {
		t.Errorf("%s: status %d, want one of %v; body %s", what, r.status, want, r.body)
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", what, err, r.body)
		return
	}
	var wantBody map[string]any
	if err := json.Unmarshal([]byte(lb(lockID, who)), &wantBody); err != nil {
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
	forEachTool(t, func(t *testing.T, tl tool) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				id := "u1/" + tl.name
				dir := writeConfig(t, "r", srv.httpBackend(id, v.opts))
				mustRun(t, tl, dir, "init")
				expect(t, "LOCK L1", srv.lockVia(t, id, v.opts, lb("L1", "ci@runner")), http.StatusOK)

				res := run(t, tl, dir, "plan", "-lock-timeout=0s")
				if res.code != 1 || !strings.Contains(res.out(), "ID=L1") {
					t.Errorf("plan while L1 holds the lock: exit %d, want 1 with ID=L1 in the output", res.code)
				}
				mustRun(t, tl, dir, "force-unlock", "-force", "L1")
				if l := srv.lockOf(t, id); l != nil {
					t.Fatalf("after force-unlock: unit still locked by %+v", l)
				}
				// terraform sends an empty body, a force-unlock that the
				// server audits; tofu 1.10 sends {"ID": "L1"}, a plain unlock.
				audited := false
				for _, l := range srv.logLines(t) {
					audited = audited || l.Event == "force_unlock" && l.Unit == id && l.LockID == "L1" && l.Principal != ""
				}
				if !audited && tl.name == "terraform" {
					t.Errorf("no force_unlock audit line for L1 in the server log")
				}
				mustRun(t, tl, dir, "plan")

				// Step 5: unlock with the ID only.
				expect(t, "LOCK L2", srv.lockVia(t, id, v.opts, lb("L2", "ci")), http.StatusOK)
				expect(t, `UNLOCK {"ID":"L2"}`, srv.unlockVia(t, id, v.opts, []byte(`{"ID":"L2"}`)), http.StatusOK)
				if l := srv.lockOf(t, id); l != nil {
					t.Errorf("after UNLOCK by ID: still locked by %+v", l)
				}

				// Step 6: a wrong ID is refused with the holder.
				expect(t, "LOCK L3", srv.lockVia(t, id, v.opts, lb("L3", "ci")), http.StatusOK)
				checkHolder(t, "UNLOCK WRONG", srv.unlockVia(t, id, v.opts, []byte(lb("WRONG", "someone"))), locked, "L3", "ci")
				if l := srv.lockOf(t, id); l == nil || l.ID != "L3" {
					t.Errorf("after UNLOCK WRONG: lock %+v, want L3 still held", l)
				}

				// An empty body with a JSON content type: a force-unlock
				// (allowed with auth disabled), locked or not, never a 5xx.
				expect(t, "empty UNLOCK of L3", srv.unlockVia(t, id, v.opts, nil), http.StatusOK)
				if l := srv.lockOf(t, id); l != nil {
					t.Errorf("after the empty UNLOCK: still locked by %+v", l)
				}
				expect(t, "empty UNLOCK when unlocked", srv.unlockVia(t, id, v.opts, nil), http.StatusOK)
				expect(t, "empty UNLOCK of an unknown unit", srv.unlockVia(t, "nobody/"+tl.name, v.opts, nil), http.StatusOK)
			})
		}
	})
}

// TestBackend_LockConflictBody is BR-02: a refused LOCK answers 423 with
// the stored holder as the body, which the CLI prints as ID=...
func TestBackend_LockConflictBody(t *testing.T) {
	t.Parallel()
	forEachTool(t, func(t *testing.T, tl tool) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				id := "u2"
				expect(t, "LOCK H1", srv.lockVia(t, id, v.opts, lb("H1", "build-agent-7")), http.StatusOK)
				r := srv.lockVia(t, id, v.opts, lb("H2", "laptop"))
				checkHolder(t, "LOCK H2", r, []int{http.StatusLocked}, "H1", "build-agent-7")
				if bytes.Contains(r.body, []byte("H2")) || bytes.Contains(r.body, []byte("laptop")) {
					t.Errorf("LOCK H2: body mentions the refused lock: %s", r.body)
				}

				dir := writeConfig(t, "r", srv.httpBackend(id, v.opts))
				mustRun(t, tl, dir, "init")
				res := run(t, tl, dir, "plan", "-lock-timeout=0s")
				if res.code != 1 || !strings.Contains(res.out(), "ID=H1") || !strings.Contains(res.out(), "Error acquiring the state lock") {
					t.Errorf("plan: exit %d, want 1 with ID=H1 and \"Error acquiring the state lock\"", res.code)
				}

				u := srv.unit(t, id)
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
	forEachTool(t, func(t *testing.T, tl tool) {
		srv := startServer(t)
		id := "u3/" + tl.name
		dir := writeConfig(t, "r", srv.httpBackend(id, backendOpts{}))
		mustRun(t, tl, dir, "init")
		expect(t, "LOCK Q1", srv.lockRaw(t, id, "Q1", "other-run"), http.StatusOK)
		nLock := len(srv.requests(t, backendRoute)) // our LOCK is the last one

		const hold = 4 * time.Second
		unlocked := make(chan int, 1)
		go func() {
			time.Sleep(hold)
			req, _ := http.NewRequest("UNLOCK", srv.backendURL(id), strings.NewReader(lb("Q1", "other-run")))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				unlocked <- -1
				return
			}
			res.Body.Close()
			unlocked <- res.StatusCode
		}()
		start := time.Now()
		res := run(t, tl, dir, "apply", "-auto-approve", "-lock-timeout=30s")
		took := time.Since(start)
		if st := <-unlocked; st != http.StatusOK {
			t.Fatalf("background UNLOCK Q1: status %d, want 200", st)
		}
		if res.code != 0 || took < hold-500*time.Millisecond {
			t.Fatalf("apply -lock-timeout=30s: exit %d after %s; want 0 after waiting about %s", res.code, took, hold)
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
		if vs := srv.versions(t, id); len(vs) != 1 {
			t.Errorf("%d versions after the apply, want 1", len(vs))
		}

		expect(t, "re-LOCK Q1", srv.lockRaw(t, id, "Q1", "other-run"), http.StatusOK)
		res = run(t, tl, dir, "apply", "-auto-approve", "-lock-timeout=0s", "-var", "v=two")
		if res.code != 1 || !strings.Contains(res.out(), "Error acquiring the state lock") ||
			strings.Contains(res.out(), "Unexpected HTTP response code") || res.dur > 20*time.Second {
			t.Errorf("apply -lock-timeout=0s: exit %d after %s; want 1 at once with \"Error acquiring the state lock\"", res.code, res.dur)
		}
		if vs := srv.versions(t, id); len(vs) != 1 {
			t.Errorf("%d versions after the refused apply, want 1", len(vs))
		}
		if l := srv.lockOf(t, id); l == nil || l.ID != "Q1" {
			t.Errorf("lock %+v, want Q1 still held", l)
		}
	})
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestBackend_ConcurrentApply: two applies of one unit at once; one holds
// the lock, the other fails naming the winner's lock ID.
func TestBackend_ConcurrentApply(t *testing.T) {
	t.Parallel()
	forEachTool(t, func(t *testing.T, tl tool) {
		srv := startServer(t)
		id := "u5/" + tl.name
		var dirs [2]string
		for i := range dirs {
			dirs[i] = writeConfig(t, "r-slow", srv.httpBackend(id, backendOpts{}))
			mustRun(t, tl, dirs[i], "init")
		}
		before := len(srv.versions(t, id))

		var wg sync.WaitGroup
		var results [2]result
		for i := range dirs {
			wg.Go(func() { results[i] = run(t, tl, dirs[i], "apply", "-auto-approve", "-var", fmt.Sprintf("v=c%d", i)) })
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		// Watch the lock while the runs go on; the winner holds it for
		// the 3 s of its provisioner.
		var seen []string
	watch:
		for {
			if l := srv.lockOf(t, id); l != nil && (len(seen) == 0 || seen[len(seen)-1] != l.ID) {
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
			switch res.code {
			case 0:
				ok++
			case 1:
				failed++
				if !strings.Contains(res.out(), "ID="+winner) || !strings.Contains(res.out(), "Error acquiring the state lock") {
					t.Errorf("run %d failed without naming the holder: want \"Error acquiring the state lock\" and ID=%s", i, winner)
				}
			}
		}
		if ok != 1 || failed != 1 {
			t.Errorf("exit codes %d and %d; want one 0 and one 1", results[0].code, results[1].code)
		}
		if after := len(srv.versions(t, id)); after != before+1 {
			t.Errorf("%d versions after the runs, want %d", after, before+1)
		}
		if l := srv.lockOf(t, id); l != nil {
			t.Errorf("still locked after the runs: %+v", l)
		}
	})
}

// TestBackend_WriteRespectsLock is BR-04: no state write gets past
// someone else's lock unless it names that lock; an unlocked unit takes
// any write.
func TestBackend_WriteRespectsLock(t *testing.T) {
	t.Parallel()
	forEachTool(t, func(t *testing.T, tl tool) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				id := "u4/" + tl.name
				dir := writeConfig(t, "r", srv.httpBackend(id, v.opts))
				mustRun(t, tl, dir, "init")
				mustRun(t, tl, dir, "apply", "-auto-approve")
				first := srv.backendState(t, id)
				serial := parseState(t, first).Serial
				nv := len(srv.versions(t, id))

				expect(t, "LOCK OTHER", srv.lockVia(t, id, v.opts, lb("OTHER", "ci")), http.StatusOK)
				res := run(t, tl, dir, "apply", "-auto-approve", "-lock=false", "-var", "v=two")
				out := res.out()
				if res.code != 1 || !strings.Contains(out, "Error saving state") ||
					!strings.Contains(out, "409") && !strings.Contains(out, "423") {
					t.Errorf("apply -lock=false: exit %d; want 1 with \"Error saving state\" and HTTP 409 or 423", res.code)
				}
				if _, err := os.Stat(filepath.Join(dir, "errored.tfstate")); err != nil {
					t.Errorf("apply -lock=false left no errored.tfstate: %v", err)
				}
				cur := srv.backendState(t, id)
				if st := parseState(t, cur); !bytes.Equal(cur, first) || st.Serial != serial || st.Outputs["v"].Value != "one" {
					t.Errorf("stored state changed: serial %d (want %d), output v %v (want one)", st.Serial, serial, st.Outputs["v"].Value)
				}
				if n := len(srv.versions(t, id)); n != nv {
					t.Errorf("%d versions after the refused apply, want %d", n, nv)
				}

				s1 := withSerial(t, first, serial+1)
				checkHolder(t, "POST ?ID=WRONG", do(t, http.MethodPost, srv.backendURL(id)+"?ID=WRONG", s1), locked, "OTHER", "ci")
				checkHolder(t, "POST without ID", do(t, http.MethodPost, srv.backendURL(id), s1), locked, "OTHER", "ci")
				if n := len(srv.versions(t, id)); n != nv {
					t.Errorf("%d versions after the refused POSTs, want %d", n, nv)
				}
				expect(t, "POST ?ID=OTHER", do(t, http.MethodPost, srv.backendURL(id)+"?ID=OTHER", s1), http.StatusOK)
				if n := len(srv.versions(t, id)); n != nv+1 {
					t.Errorf("%d versions after POST ?ID=OTHER, want %d", n, nv+1)
				}
				if got := srv.download(t, id); !bytes.Equal(got, s1) {
					t.Errorf("stored bytes differ from the POSTed ones")
				}

				expect(t, "UNLOCK OTHER", srv.unlockVia(t, id, v.opts, []byte(lb("OTHER", "ci"))), http.StatusOK)
				s2 := withSerial(t, first, serial+2)
				expect(t, "POST without ID, unlocked", do(t, http.MethodPost, srv.backendURL(id), s2), http.StatusOK)
				if n := len(srv.versions(t, id)); n != nv+2 {
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
	mustJSON(t, state, &m)
	m["serial"], _ = json.Marshal(n)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
