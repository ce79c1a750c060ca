package graph

import (
	"context"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/store"
)

// wantColors checks the colour of each unit, given as "A=green B=red",
// through GET /v1/units/{id}/status and GET /v1/status.
func wantColors(t *testing.T, s *server, spec string) {
	t.Helper()
	ctx := context.Background()
	list, err := s.client.Statuses(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	bulk := map[string]string{}
	for _, st := range list.Units {
		bulk[st.UnitID] = st.Status
	}
	for _, kv := range strings.Fields(spec) {
		id, want, _ := strings.Cut(kv, "=")
		st, err := s.client.UnitStatus(ctx, id)
		if err != nil {
			t.Fatalf("status of %s: %v", id, err)
		} else if st.Status != want || bulk[id] != want {
			t.Fatalf("status of %s = %s (in /v1/status: %s), want %s; incoming %+v", id, st.Status, bulk[id], want, st.Incoming)
		}
	}
}

// wantOffender checks that unit id is red with one pending edge, from
// output from/output.
func wantOffender(t *testing.T, s *server, id, from, output string) {
	t.Helper()
	st, err := s.client.UnitStatus(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	off := st.FirstOffender()
	if st.Status != "red" || st.Summary.Pending != 1 || off == nil || off.FromUnitID != from || off.FromOutput != output {
		t.Fatalf("status of %s = %+v; want red, 1 pending, first offender %s/%s", id, st, from, output)
	}
}

// wantCLI runs `opentaco unit status` and checks its exit code and that
// each want line appears, fields separated by single spaces.
func wantCLI(t *testing.T, s *server, code int, want ...string) {
	t.Helper()
	r := s.cli(t, "unit", "status")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	if r.code != code {
		t.Fatalf("opentaco unit status: exit %d, want %d\n%s%s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains("\n"+strings.Join(got, "\n")+"\n", "\n"+w+"\n") {
			t.Fatalf("opentaco unit status lacks %q:\n%s", w, r.stdout)
		}
	}
}

// versionCount is the number of versions of unit id.
func versionCount(t *testing.T, s *server, id string) int {
	t.Helper()
	u, err := s.client.GetUnit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.VersionCount
}

// edgesOf returns "from:output→to" of every edge into and out of id,
// with a "*" after inferred ones.
func edgesOf(t *testing.T, s *server, id string) string {
	t.Helper()
	d, err := s.client.Dependencies(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range append(d.Incoming, d.Outgoing...) {
		f := e.FromUnitID + ":" + e.FromOutput + "→" + e.ToUnitID
		if e.Inferred {
			f += "*"
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

// TestGraph_Declared runs the chain A → B → C with declared edges: A's
// output db_url feeds B, B's output image_tag feeds C.
func TestGraph_Declared(t *testing.T) {
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		ctx := context.Background()
		s := startServer(t)
		for _, id := range []string{"A", "B", "C"} {
			if _, err := s.client.CreateUnit(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range [][3]string{{"A", "db_url", "B"}, {"B", "image_tag", "C"}} {
			if _, err := s.client.AddDependency(ctx, d[2], store.DependencyRequest{FromUnitID: d[0], FromOutput: d[1]}); err != nil {
				t.Fatal(err)
			}
		}
		if r := s.cli(t, "dep", "add", "C:db_url", "A"); r.code != 5 || !strings.Contains(r.stderr, "C → A → B → C") {
			t.Fatalf("cycle through the CLI: %+v", r)
		}
		a, b, c := newConfig(t, s, "a", "A"), newConfig(t, s, "b-declared", "B"), newConfig(t, s, "c-declared", "C")

		a.apply(t, tl, "db_url=pg://one")
		wantColors(t, s, "A=green B=red C=yellow")
		b.apply(t, tl, "db_url=pg://one")
		c.apply(t, tl, "image_tag=v1")
		wantColors(t, s, "A=green B=green C=green")
		wantCLI(t, s, 0, "A green 0 -", "B green 0 -", "C green 0 -")

		a.apply(t, tl, "db_url=pg://two")
		wantColors(t, s, "A=green B=red C=yellow")
		wantOffender(t, s, "B", "A", "db_url")
		wantCLI(t, s, 2, "UNIT STATUS PENDING FIRST OFFENDER", "B red 1 A/db_url", "C yellow 0 B (upstream)")

		b.apply(t, tl, "db_url=pg://two")
		wantColors(t, s, "A=green B=green C=green")

		// A re-apply of A that leaves db_url as it is: still all green.
		n := versionCount(t, s, "A")
		a.apply(t, tl, "db_url=pg://two", "note=changed")
		if versionCount(t, s, "A") != n+1 {
			t.Fatalf("the re-apply of A wrote no new version")
		}
		wantColors(t, s, "A=green B=green C=green")
		wantCLI(t, s, 0)

		if err := s.client.DeleteUnit(ctx, "B", false); err != nil {
			t.Fatal(err)
		}
		if got := edgesOf(t, s, "A") + edgesOf(t, s, "C"); got != "" {
			t.Fatalf("edges left after deleting B: %s", got)
		}
		wantColors(t, s, "A=green C=green")
	})
}

// TestGraph_Inferred runs the same chain with the edges inferred from
// terraform_remote_state data sources (http backend, percent-encoded
// addresses), units created by the backend on first write.
func TestGraph_Inferred(t *testing.T) {
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		ctx := context.Background()
		s := startServer(t)
		a, b, c := newConfig(t, s, "a", "app/a"), newConfig(t, s, "b-inferred", "app/b"), newConfig(t, s, "c-inferred", "app/c")
		aAddr, bAddr := "a_address="+s.BackendURL("app/a"), "b_address="+s.BackendURL("app/b")

		a.apply(t, tl, "db_url=pg://one")
		b.apply(t, tl, aAddr)
		c.apply(t, tl, bAddr)
		if got := edgesOf(t, s, "app/b"); got != "app/a:db_url→app/b* app/b:image_tag→app/c*" {
			t.Fatalf("edges of app/b: %s", got)
		}
		wantColors(t, s, "app/a=green app/b=green app/c=green")
		wantCLI(t, s, 0)

		a.apply(t, tl, "db_url=pg://two")
		wantColors(t, s, "app/a=green app/b=red app/c=yellow")
		wantOffender(t, s, "app/b", "app/a", "db_url")
		wantCLI(t, s, 2, "app/b red 1 app/a/db_url", "app/c yellow 0 app/b (upstream)")

		b.apply(t, tl, aAddr)
		wantColors(t, s, "app/a=green app/b=green app/c=green")

		n := versionCount(t, s, "app/a")
		a.apply(t, tl, "db_url=pg://two", "note=changed")
		if versionCount(t, s, "app/a") != n+1 {
			t.Fatalf("the re-apply of app/a wrote no new version")
		}
		wantColors(t, s, "app/a=green app/b=green app/c=green")

		if err := s.client.DeleteUnit(ctx, "app/b", false); err != nil {
			t.Fatal(err)
		}
		if got := edgesOf(t, s, "app/a") + edgesOf(t, s, "app/c"); got != "" {
			t.Fatalf("edges left after deleting app/b: %s", got)
		}
		wantColors(t, s, "app/a=green app/c=green")
	})
}
