//go:build unix

package cloud

import (
	"bytes"
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// TestCloud_ForceUnlockAfterKill is BR-17: an apply killed with SIGKILL
// while it holds the workspace lock leaves the lock behind; the CLI
// refuses a lock ID other than <org>/<workspace> without a request, and
// `force-unlock -force acme/<ws>` clears the lock through
// actions/force-unlock. (Step 6, a token without the force-unlock
// permission, needs authentication and is not run here: the server runs
// with AuthDisabled.)
func TestCloud_ForceUnlockAfterKill(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		ws := "kill-" + tl.Short()
		c := newConfig(t, srv, "r-slow", cloudBlock(srv.Host, ws), tok)
		c.mustRun(t, tl, "init")

		// 1. apply R-slow(60) in the background, in its own process group
		// so that the local-exec sleep dies with it.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := c.command(ctx, tl, "apply", "-auto-approve")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(90 * time.Second)
		for !srv.locked(t, ws) {
			select {
			case err := <-exited:
				t.Fatalf("apply ended (%v) before the workspace showed locked:true:\n%s", err, e2etest.Tail(out.String(), 2000))
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatalf("the workspace never showed locked:true during the apply:\n%s", e2etest.Tail(out.String(), 2000))
			}
		}
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the apply: %v", err)
		}
		<-exited
		t.Logf("killed %s apply; its output:\n%s", tl.Name, e2etest.Tail(e2etest.StripANSI(out.String()), 1500))
		if !srv.locked(t, ws) {
			t.Fatalf("the lock vanished with the killed apply")
		}

		// 2. The stranded lock blocks a plan.
		c.mustFail(t, tl, "Error acquiring the state lock", "plan", "-lock-timeout=0s")

		// 3. A lock ID other than <org>/<ws> is refused client side.
		m := srv.Requests.Mark()
		c.mustFail(t, tl, "", "force-unlock", "-force", "someone/"+ws)
		if reqs := srv.Requests.Since(m, "", "/actions/force-unlock"); len(reqs) != 0 {
			t.Errorf("force-unlock of someone/%s sent %d force-unlock requests, want none", ws, len(reqs))
		}
		if !srv.locked(t, ws) {
			t.Fatalf("force-unlock with a wrong lock ID unlocked the workspace")
		}

		// 4. The right lock ID goes through actions/force-unlock.
		m = srv.Requests.Mark()
		c.mustRun(t, tl, "force-unlock", "-force", org+"/"+ws)
		reqs := srv.Requests.Since(m, http.MethodPost, "/workspaces/ws-"+ws+"/actions/force-unlock")
		if len(reqs) != 1 || reqs[0].Status != http.StatusOK {
			t.Errorf("force-unlock of %s/%s: requests %+v, want one POST …/actions/force-unlock answered 200", org, ws, reqs)
		}
		if srv.locked(t, ws) {
			t.Fatalf("workspace still locked after force-unlock")
		}

		// 5. A normal apply works again.
		c.mustRun(t, tl, "apply", "-auto-approve", "-var", "sleep=0")
		if n := len(srv.versions(t, ws)); n != 1 {
			t.Errorf("%d versions after the recovery apply, want 1", n)
		}
		if srv.locked(t, ws) {
			t.Errorf("workspace still locked after the recovery apply")
		}
	})
}
