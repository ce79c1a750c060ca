package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// Timing of BR-11: T1 lives t1Life seconds and the apply holds the lock
// for 10 s (the provisioner's sleep), so the lock is taken with a valid T1
// and T1 expires during the sleep, before the final write and the unlock.
const t1Life = 4

var lockIDRe = regexp.MustCompile(`(?:ID=|ID:\s+)([0-9a-fA-F-]{36})`)

// TestBackend_TokenExpiresMidApply is BR-11 (hashicorp/terraform#33264,
// recovery as in #18741): the credential of an apply expires while it
// runs; the final write and the unlock fail with 401, and a new
// credential recovers without losing the state.
//
// "Fresh" is the case as written: R-slow on a new unit. Terraform then
// reads the remote state again before its first write, so the request
// that fails is that read, and errored.tfstate has no lineage yet.
// "PriorState" first applies once with the admin token, so the final write
// itself is the request refused. Either way the version that `state push`
// creates is errored.tfstate byte for byte but for the serial (which the
// push bumps) and, when it had none, the lineage.
func TestBackend_TokenExpiresMidApply(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		for _, prior := range []bool{false, true} {
			name := map[bool]string{false: "Fresh", true: "PriorState"}[prior]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tokenExpiresMidApply(t, tl, prior)
			})
		}
	})
}

func tokenExpiresMidApply(t *testing.T, tl e2etest.Tool, prior bool) {
	const id = "x1"
	srv := startServer(t)
	fixture, applyArgs := "r-slow", []string{"apply", "-auto-approve"}
	if prior {
		fixture = "r-slow-replace"
	}
	sb := writeConfig(t, fixture, srv.httpBackend(id))
	mustRun(t, tl, sb, srv.Admin, "init")
	if prior {
		mustRun(t, tl, sb, srv.Admin, "apply", "-auto-approve", "-var", "v=zero", "-var", "sleep=0")
	}
	before := len(srv.Versions(t, id))

	// Steps 1-2: T1, valid for a few seconds; the slow apply.
	t1 := srv.createToken(t, "t1", t1Life)
	if t1.Expires == nil {
		t.Fatal("T1 has no expiry")
	}
	res := run(t, tl, sb, t1.Token, applyArgs...)
	if res.Code != 1 {
		t.Fatalf("apply with T1 expiring mid-run: exit %d, want 1", res.Code)
	}
	saved, err := os.ReadFile(filepath.Join(sb.Dir, "errored.tfstate"))
	if err != nil {
		t.Fatalf("apply left no errored.tfstate: %v", err)
	}
	out := res.Out()
	if !regexp.MustCompile(`(?i)error releasing the state lock`).MatchString(out) || !strings.Contains(out, "401") {
		t.Errorf("apply output does not report that releasing the lock failed with 401")
	}

	// What the server answered to T1: the lock while T1 was valid, then
	// 401 for every request after its expiry (not 403, 5xx or a
	// redirect), the unlock among them.
	var locked, unlocked, wrote bool
	var late int
	for _, r := range srv.Requests.With(t1.Token) {
		switch {
		case r.At.After(*t1.Expires):
			late++
			if r.Status != http.StatusUnauthorized {
				t.Errorf("%s %s with T1 after its expiry → %d, want 401", r.Method, r.Path, r.Status)
			}
			unlocked = unlocked || r.Method == "UNLOCK"
			wrote = wrote || r.Method == http.MethodPost || r.Method == http.MethodPut
		case r.Method == "LOCK":
			locked = r.Status == http.StatusOK
		case r.Status >= 300 && !(r.Method == http.MethodGet && r.Status == http.StatusNotFound):
			t.Errorf("%s %s with T1 before its expiry → %d", r.Method, r.Path, r.Status)
		}
	}
	if !locked {
		t.Fatalf("the lock was not taken with T1 before it expired (machine too slow for a %d s token?)", t1Life)
	}
	if late < 2 || !unlocked {
		t.Errorf("after T1 expired: %d requests, unlock seen %v; want the final write (or its read) and the unlock", late, unlocked)
	}
	if prior && !wrote {
		t.Errorf("with a prior state the final write was not attempted with T1")
	}
	if after := len(srv.Versions(t, id)); after != before {
		t.Errorf("versions: %d before the apply, %d after; want nothing written", before, after)
	}
	held := srv.LockOf(t, id)
	if held == nil {
		t.Fatal("the lock of the failed apply vanished with its token")
	}

	// Step 3: T2; plan names the holder L.
	t2 := srv.createToken(t, "t2", 0)
	res = run(t, tl, sb, t2.Token, "plan", "-lock-timeout=0s")
	m := lockIDRe.FindStringSubmatch(res.Out())
	if res.Code != 1 || m == nil {
		t.Fatalf("plan with T2 while the lock is held: exit %d, want 1 naming the lock ID", res.Code)
	}
	lockID := m[1]
	if lockID != held.ID {
		t.Errorf("plan names lock %s, the server holds %s", lockID, held.ID)
	}

	// Step 4: force-unlock with T2.
	mustRun(t, tl, sb, t2.Token, "force-unlock", "-force", lockID)
	if l := srv.LockOf(t, id); l != nil {
		t.Fatalf("after force-unlock the unit is still locked by %+v", l)
	}

	// Step 5: push the saved state; it becomes a version equal to it.
	mustRun(t, tl, sb, t2.Token, "state", "push", "errored.tfstate")
	if vs := srv.Versions(t, id); len(vs) != before+1 {
		t.Fatalf("versions after state push: %d, want %d", len(vs), before+1)
	}
	got := srv.Download(t, id)
	if want := asPushed(t, saved, got); !bytes.Equal(got, want) {
		t.Errorf("stored state (%d bytes) differs from errored.tfstate (%d bytes)\nstored:\n%s\nerrored.tfstate:\n%s", len(got), len(saved), e2etest.Tail(string(got), 1500), e2etest.Tail(string(saved), 1500))
	}

	// Step 6: nothing left to do.
	res = mustRun(t, tl, sb, t2.Token, "plan", "-detailed-exitcode")
	if !strings.Contains(res.Out(), "No changes") {
		t.Errorf("plan after recovery does not say \"No changes\"")
	}
	for _, r := range srv.Requests.With(t2.Token) {
		if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status >= 500 {
			t.Errorf("%s %s with T2 → %d", r.Method, r.Path, r.Status)
		}
	}
	if r := srv.do(t, http.MethodGet, "/v1/backend/"+id, t1.Token, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GET with T1 after recovery → %d, want 401", r.Status)
	}
}

// asPushed is saved as `state push` writes it: the state manager bumps
// the serial past the one it last read (terraform and tofu alike) and
// gives a state without lineage (a fresh unit: the apply never read one)
// the lineage it writes. It returns saved with the serial and, when saved
// had none, the lineage of stored put in, keeping the file's spacing, and
// fails unless stored's serial and lineage are consistent with saved's.
func asPushed(t *testing.T, saved, stored []byte) []byte {
	t.Helper()
	var s, g struct {
		Serial  int64  `json:"serial"`
		Lineage string `json:"lineage"`
	}
	if err := json.Unmarshal(saved, &s); err != nil {
		t.Fatalf("errored.tfstate: %v", err)
	}
	if err := json.Unmarshal(stored, &g); err != nil {
		t.Fatalf("stored state: %v", err)
	}
	if g.Serial < s.Serial || g.Serial > s.Serial+1 || g.Lineage == "" || s.Lineage != "" && g.Lineage != s.Lineage {
		t.Errorf("stored serial %d, lineage %q; errored.tfstate serial %d, lineage %q", g.Serial, g.Lineage, s.Serial, s.Lineage)
	}
	out := serialRe.ReplaceAll(saved, fmt.Appendf(nil, "${1}%d", g.Serial))
	return emptyLineageRe.ReplaceAll(out, fmt.Appendf(nil, "${1}%q", g.Lineage))
}

var (
	serialRe       = regexp.MustCompile(`("serial":\s*)\d+`)
	emptyLineageRe = regexp.MustCompile(`("lineage":\s*)""`)
)

// TestBackend_TokenRevokedMidApply is the other half of BR-11 step 1 ("or
// revoke it during the run"): revocation takes effect on the very next
// request of the running apply.
func TestBackend_TokenRevokedMidApply(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		const id = "x1"
		srv := startServer(t)
		sb := writeConfig(t, "r-slow", srv.httpBackend(id))
		mustRun(t, tl, sb, srv.Admin, "init")
		t1 := srv.createToken(t, "t1", 0)
		done := make(chan e2etest.Result, 1)
		go func() { done <- run(t, tl, sb, t1.Token, "apply", "-auto-approve") }()
		// Revoke once the apply holds the lock and has read the state,
		// with a margin so that it is inside the provisioner's 10 s sleep.
		deadline := time.Now().Add(30 * time.Second)
		for len(srv.Requests.With(t1.Token)) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("the apply never took the lock and read the state")
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		if srv.LockOf(t, id) == nil {
			t.Fatal("the apply does not hold the lock")
		}
		revokedAt := time.Now()
		e2etest.Expect(t, "revoke T1", srv.do(t, http.MethodDelete, "/v1/tokens/"+t1.ID, srv.Admin, nil), http.StatusNoContent)
		res := <-done
		if res.Code != 1 {
			t.Fatalf("apply with T1 revoked mid-run: exit %d, want 1", res.Code)
		}
		if _, err := os.Stat(filepath.Join(sb.Dir, "errored.tfstate")); err != nil {
			t.Errorf("no errored.tfstate: %v", err)
		}
		late := 0
		for _, r := range srv.Requests.With(t1.Token) {
			if r.At.After(revokedAt) {
				late++
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s %s with T1 after its revocation → %d, want 401", r.Method, r.Path, r.Status)
				}
			}
		}
		if late < 2 {
			t.Errorf("%d requests with T1 after its revocation, want the final write (or its read) and the unlock", late)
		}
		if vs := srv.Versions(t, id); len(vs) != 0 {
			t.Errorf("%d versions written with a revoked token", len(vs))
		}
		if srv.LockOf(t, id) == nil {
			t.Error("the lock vanished with the revoked token")
		}
	})
}
