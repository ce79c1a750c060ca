package cloud

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// stateVersions lists the TFE state versions of workspace wsID (newest
// first, as TFE answers).
func (s *server) stateVersions(t *testing.T, wsID string) []*resource {
	t.Helper()
	r := s.api(t, http.MethodGet, "/workspaces/"+wsID+"/state-versions", tok, nil)
	e2etest.Expect(t, "list state versions of "+wsID, r, http.StatusOK)
	return many(t, r, "state-versions")
}

// TestCloud_Lifecycle: the cloud block creates its workspace on init;
// plan, two applies, and the state the CLI reads back (pull, list, output)
// is what the server stores. Every apply is one /v1 version and one TFE
// state version, and each TFE state version downloads its own bytes.
func TestCloud_Lifecycle(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		ws := "life__" + tl.Short() // unit life/<tool>
		c := newConfig(t, srv, "r", cloudBlock(srv.Host, ws), tok)

		if r := srv.api(t, http.MethodGet, "/organizations/"+org+"/workspaces/"+ws, tok, nil); r.Status != http.StatusNotFound {
			t.Fatalf("workspace %s before init: %s, want 404", ws, r)
		}
		res := c.mustRun(t, tl, "init")
		if !strings.Contains(strings.ToLower(res.Out()), "successfully initialized") {
			t.Errorf("init output lacks \"successfully initialized\":\n%s", e2etest.Tail(res.Out(), 2000))
		}
		w := srv.workspace(t, ws)
		if w.ID != "ws-"+ws {
			t.Errorf("workspace id %q, want %q", w.ID, "ws-"+ws)
		}
		if m := w.str("execution-mode"); m != "local" {
			t.Errorf("workspace execution-mode %q, want local", m)
		}

		// An empty workspace has no outputs, which is not an error
		// (TFE.md §3.8: the outputs list answers 200 with data []).
		c.mustRun(t, tl, "output", "-json")

		c.mustRun(t, tl, "plan")
		c.mustRun(t, tl, "apply", "-auto-approve")
		c.mustRun(t, tl, "apply", "-auto-approve", "-var", "v=two")

		pulled := c.statePull(t, tl)
		stored := srv.download(t, ws, 0)
		if !sameJSON(t, pulled, stored) {
			t.Errorf("state pull and the /v1 download hold different JSON:\n%s\n---\n%s", pulled, stored)
		}
		if !bytes.Equal(pulled, stored) {
			t.Errorf("state pull (minus its newline) differs from the /v1 download: %d vs %d bytes", len(pulled), len(stored))
		}
		if out := c.mustRun(t, tl, "state", "list").Stdout; !slices.Contains(strings.Fields(out), "terraform_data.r") {
			t.Errorf("state list does not show terraform_data.r:\n%s", out)
		}
		var outputs map[string]struct {
			Value any `json:"value"`
		}
		m := srv.Requests.Mark()
		e2etest.MustJSON(t, []byte(c.mustRun(t, tl, "output", "-json").Stdout), &outputs)
		if v := outputs["v"].Value; v != "two" {
			t.Errorf("output v = %v, want two", v)
		}
		// The outputs came from current-state-version-outputs; a missing
		// detailed-type would have made the CLI download the whole state.
		if n := len(srv.Requests.Since(m, http.MethodGet, "/current-state-version-outputs")); n != 1 {
			t.Errorf("output -json read current-state-version-outputs %d times, want 1", n)
		}
		if dl := srv.Requests.Since(m, http.MethodGet, "/download"); len(dl) != 0 {
			t.Errorf("output -json fell back to downloading the state (%s): the outputs list lacks something the CLI needs", dl[0].Path)
		}

		// History: two applies, two versions on both surfaces.
		vs := srv.versions(t, ws)
		if len(vs) != 2 {
			t.Fatalf("/v1 versions: %d, want 2 (one per apply)", len(vs))
		}
		svs := srv.stateVersions(t, w.ID)
		if len(svs) != len(vs) {
			t.Fatalf("TFE state versions: %d, want %d", len(svs), len(vs))
		}
		seen := map[string]bool{}
		for i, sv := range svs {
			v := vs[i] // both newest first
			if seen[sv.ID] {
				t.Errorf("state version id %s listed twice", sv.ID)
			}
			seen[sv.ID] = true
			if st := sv.str("status"); st != "finalized" {
				t.Errorf("state version %s: status %q, want finalized", sv.ID, st)
			}
			serial, ok := sv.num("serial")
			if !ok || serial != v.Serial {
				t.Errorf("state version %s (#%d in the list): serial %v, /v1 version %d has %d", sv.ID, i, sv.Attributes["serial"], v.Version, v.Serial)
			}
			dl := srv.Do(t, http.MethodGet, tfePath("/state-versions/"+sv.ID+"/download"), tok, nil)
			e2etest.Expect(t, "download state version "+sv.ID, dl, http.StatusOK)
			want := srv.download(t, ws, v.Version)
			if !bytes.Equal(dl.Body, want) {
				t.Errorf("state version %s downloads %d bytes that differ from /v1 version %d (%d bytes)", sv.ID, len(dl.Body), v.Version, len(want))
			}
			if got := e2etest.ParseState(t, dl.Body).Serial; got != serial {
				t.Errorf("state version %s: bytes have serial %d, attribute %d", sv.ID, got, serial)
			}
			if u := sv.str("hosted-state-download-url"); u != "" {
				hd := srv.Do(t, http.MethodGet, u, tok, nil, "Accept", "application/json")
				if hd.Status != http.StatusOK || !bytes.Equal(hd.Body, want) {
					t.Errorf("hosted-state-download-url of %s: %d, %d bytes; want 200 and the bytes of /v1 version %d", sv.ID, hd.Status, len(hd.Body), v.Version)
				}
			} else {
				t.Errorf("state version %s has no hosted-state-download-url", sv.ID)
			}
		}
		if len(svs) == 2 {
			s0, _ := svs[0].num("serial")
			s1, _ := svs[1].num("serial")
			if s0 <= s1 {
				t.Errorf("state versions not newest first: serials %d, %d", s0, s1)
			}
		}
		cur := srv.api(t, http.MethodGet, "/workspaces/"+w.ID+"/current-state-version", tok, nil)
		e2etest.Expect(t, "current-state-version", cur, http.StatusOK)
		if id := one(t, cur, "state-versions").ID; len(svs) > 0 && id != svs[0].ID {
			t.Errorf("current-state-version is %s, want the newest listed %s", id, svs[0].ID)
		}
		if srv.locked(t, ws) {
			t.Errorf("workspace %s still locked after the runs", ws)
		}
	})
}

// TestCloud_StatePush: `state push` of a newer serial, and `state push
// -force` of a foreign lineage with a lower serial, which cloud-block
// clients send with force:false (TFE.md §3.5) and which must be accepted.
func TestCloud_StatePush(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		ws := "push-" + tl.Short()
		c := newConfig(t, srv, "r", cloudBlock(srv.Host, ws), tok)
		c.mustRun(t, tl, "init")
		c.mustRun(t, tl, "apply", "-auto-approve")
		c.mustRun(t, tl, "apply", "-auto-approve", "-var", "v=two")
		before := e2etest.ParseState(t, srv.download(t, ws, 0))
		nv := len(srv.versions(t, ws))

		// A newer serial of the same lineage.
		newer := editState(t, c.statePull(t, tl), before.Serial+1, "")
		e2etest.WriteFile(t, filepath.Join(c.sb.Dir, "newer.tfstate"), newer)
		c.mustRun(t, tl, "state", "push", "newer.tfstate")
		got := e2etest.ParseState(t, srv.download(t, ws, 0))
		if got.Lineage != before.Lineage || got.Serial < before.Serial+1 {
			t.Errorf("after push: serial %d lineage %s; want serial ≥ %d and lineage %s", got.Serial, got.Lineage, before.Serial+1, before.Lineage)
		}
		if n := len(srv.versions(t, ws)); n != nv+1 {
			t.Errorf("after push: %d versions, want %d", n, nv+1)
		}

		// A foreign lineage with a lower serial, forced.
		const foreign = "11111111-2222-3333-4444-555555555555"
		old := editState(t, newer, 1, foreign)
		e2etest.WriteFile(t, filepath.Join(c.sb.Dir, "foreign.tfstate"), old)
		c.mustRun(t, tl, "state", "push", "-force", "foreign.tfstate")
		cur := srv.download(t, ws, 0)
		if got := e2etest.ParseState(t, cur); got.Lineage != foreign {
			t.Errorf("after push -force: lineage %s serial %d; want lineage %s", got.Lineage, got.Serial, foreign)
		}
		if n := len(srv.versions(t, ws)); n != nv+2 {
			t.Errorf("after push -force: %d versions, want %d", n, nv+2)
		}
		if pulled := c.statePull(t, tl); !bytes.Equal(pulled, cur) {
			t.Errorf("state pull after push -force differs from the /v1 download")
		}
		if srv.locked(t, ws) {
			t.Errorf("workspace %s still locked after the pushes", ws)
		}
	})
}

// tagsBlock is the cloud block selecting workspaces by tags.
func tagsBlock(host string, tags ...string) string { return e2etest.CloudBlockTags(host, org, tags...) }

// TestCloud_Workspaces: with a tags mapping, `workspace new` creates
// tagged workspaces, `workspace list` shows exactly the workspaces that
// carry the tag, and `workspace select` + apply writes the selected one.
func TestCloud_Workspaces(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		a1, a2 := "a1-"+tl.Short(), "a2-"+tl.Short()
		untagged := "plain-" + tl.Short()
		srv.createWorkspace(t, untagged)
		unitOnly := "plain__unit-" + tl.Short() // a /v1 unit is a workspace too
		if _, err := srv.V1.CreateUnit(context.Background(), unitOf(unitOnly)); err != nil {
			t.Fatalf("create unit %s: %v", unitOf(unitOnly), err)
		}
		c := newConfig(t, srv, "r", tagsBlock(srv.Host, "app"), tok)

		// With no tagged workspace yet, init asks for the name of one to
		// create (even with TF_INPUT=0); it creates a1 with the tag.
		if res := c.runStdin(t, tl, a1+"\n", "init"); res.Code != 0 {
			t.Fatalf("init (answering %s to the prompt): exit %d, want 0", a1, res.Code)
		}
		if r := srv.api(t, http.MethodGet, "/organizations/"+org+"/workspaces/"+a1, tok, nil); r.Status != http.StatusOK {
			t.Errorf("workspace %s after init: %s, want 200", a1, r)
		}
		c.mustRun(t, tl, "workspace", "new", a2)
		list := c.mustRun(t, tl, "workspace", "list").Stdout
		names := strings.Fields(strings.ReplaceAll(list, "*", " "))
		for _, want := range []string{a1, a2} {
			if !slices.Contains(names, want) {
				t.Errorf("workspace list lacks %s:\n%s", want, list)
			}
		}
		for _, name := range []string{untagged, unitOnly} {
			if slices.Contains(names, name) {
				t.Errorf("workspace list shows %s, which lacks the tag:\n%s", name, list)
			}
		}
		if r := srv.api(t, http.MethodGet, "/organizations/"+org+"/workspaces/"+unitOnly, tok, nil); r.Status != http.StatusOK {
			t.Errorf("the /v1 unit %s as a workspace: %s, want 200", unitOf(unitOnly), r)
		}
		for _, name := range []string{a1, a2} {
			w := srv.workspace(t, name)
			if tags, _ := w.Attributes["tag-names"].([]any); !slices.Contains(tags, any("app")) {
				t.Errorf("workspace %s: tag-names %v, want it to hold app", name, w.Attributes["tag-names"])
			}
		}
		r := srv.api(t, http.MethodGet, "/organizations/"+org+"/workspaces?search%5Btags%5D=app", tok, nil)
		e2etest.Expect(t, "list workspaces tagged app", r, http.StatusOK)
		var listed []string
		for _, w := range many(t, r, "workspaces") {
			listed = append(listed, w.str("name"))
		}
		slices.Sort(listed)
		if want := []string{a1, a2}; !slices.Equal(listed, want) {
			t.Errorf("search[tags]=app lists %v, want %v", listed, want)
		}

		c.mustRun(t, tl, "workspace", "select", a1)
		c.mustRun(t, tl, "apply", "-auto-approve")
		if vs := srv.versions(t, a1); len(vs) != 1 {
			t.Errorf("%s: %d versions after apply, want 1", a1, len(vs))
		}
		if r := srv.api(t, http.MethodGet, "/workspaces/ws-"+a2+"/current-state-version", tok, nil); r.Status != http.StatusNotFound {
			t.Errorf("%s (not selected) current-state-version: %s, want 404", a2, r)
		}
		if out := c.mustRun(t, tl, "workspace", "show").Stdout; strings.TrimSpace(out) != a1 {
			t.Errorf("workspace show: %q, want %s", out, a1)
		}
	})
}

// TestCloud_Project: a cloud block with a project (TF 1.11.4 crashes when
// the projects list answers 404, TFE.md §4.8).
func TestCloud_Project(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		ws := "proj-" + tl.Short()
		c := newConfig(t, srv, "r", fmt.Sprintf(`terraform {
  cloud {
    hostname     = %q
    organization = %q
    workspaces {
      name    = %q
      project = "platform"
    }
  }
}
`, srv.Host, org, ws), tok)
		c.mustRun(t, tl, "init")
		c.mustRun(t, tl, "apply", "-auto-approve")
		if vs := srv.versions(t, ws); len(vs) != 1 {
			t.Errorf("%d versions after apply, want 1", len(vs))
		}
		r := srv.api(t, http.MethodGet, "/organizations/"+org+"/projects?filter%5Bnames%5D=platform", tok, nil)
		e2etest.Expect(t, "list projects", r, http.StatusOK)
		var names []string
		for _, p := range many(t, r, "projects") {
			names = append(names, p.str("name"))
		}
		if !slices.Contains(names, "platform") {
			t.Errorf("projects filtered by name platform: %v, want it listed", names)
		}
		for _, n := range names {
			if n != "platform" {
				t.Errorf("projects filtered by name platform lists %q too", n)
			}
		}
	})
}

// TestCloud_RemoteBackend: the remote backend (which needs tfe.v2.1 in
// discovery and never uploads JSON state).
func TestCloud_RemoteBackend(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		ws := "remote__" + tl.Short()
		c := newConfig(t, srv, "r", fmt.Sprintf(`terraform {
  backend "remote" {
    hostname     = %q
    organization = %q
    workspaces {
      name = %q
    }
  }
}
`, srv.Host, org, ws), tok)
		c.mustRun(t, tl, "init")
		c.mustRun(t, tl, "apply", "-auto-approve")
		c.mustRun(t, tl, "apply", "-auto-approve", "-var", "v=two")
		pulled := c.statePull(t, tl)
		stored := srv.download(t, ws, 0)
		if !bytes.Equal(pulled, stored) {
			t.Errorf("state pull (minus its newline) differs from the /v1 download: %d vs %d bytes", len(pulled), len(stored))
		}
		if v := e2etest.ParseState(t, stored).Outputs["v"].Value; v != "two" {
			t.Errorf("stored output v = %v, want two", v)
		}
		if vs := srv.versions(t, ws); len(vs) != 2 {
			t.Errorf("%d versions, want 2", len(vs))
		}
		if srv.locked(t, ws) {
			t.Errorf("workspace %s still locked after the runs", ws)
		}
	})
}
