package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// checkBackendStatuses fails the test if any http-backend request was
// answered outside 2xx, other than a GET of a unit with no state yet.
func checkBackendStatuses(t *testing.T, srv *server) {
	t.Helper()
	for _, l := range srv.requests(t, backendRoute) {
		if (l.Status < 200 || l.Status > 299) && !(l.Method == http.MethodGet && l.Status == http.StatusNotFound) {
			t.Errorf("backend request %s (request %s) answered %d, want 2xx", l.Method, l.RequestID, l.Status)
		}
	}
}

// countMethods counts the http-backend requests per method.
func countMethods(t *testing.T, srv *server) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, l := range srv.requests(t, backendRoute) {
		n[l.Method]++
	}
	return n
}

// TestBackend_Lifecycle: init, apply, apply with a changed variable; the
// state the CLI reads back, the management download and the backend GET
// are the same bytes, and each apply made exactly one version.
func TestBackend_Lifecycle(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				id := "myapp/" + tl.Name
				sb := writeConfig(t, "r", srv.httpBackend(id, v.opts))
				sb.MustRun(t, tl, "init")
				sb.MustRun(t, tl, "apply", "-auto-approve")
				if vs := srv.Versions(t, id); len(vs) != 1 {
					t.Fatalf("after the first apply: %d versions, want 1", len(vs))
				}
				sb.MustRun(t, tl, "apply", "-auto-approve", "-var", "v=two")

				pulled := sb.StatePull(t, tl, e2etest.RunOpts{})
				stored := srv.Download(t, id)
				if !bytes.Equal(pulled, stored) {
					t.Errorf("state pull (minus its newline) differs from the download: %d vs %d bytes", len(pulled), len(stored))
				}
				if got := srv.backendState(t, id); !bytes.Equal(got, stored) {
					t.Errorf("backend GET differs from the download: %d vs %d bytes", len(got), len(stored))
				}
				st := e2etest.ParseState(t, stored)
				if got := st.Outputs["v"].Value; got != "two" {
					t.Errorf("stored output v = %v, want two", got)
				}

				vs := srv.Versions(t, id)
				if len(vs) != 2 {
					t.Fatalf("%d versions, want 2", len(vs))
				}
				sum := sha256.Sum256(stored)
				cur, old := vs[0], vs[1]
				switch {
				case cur.Version != 2 || old.Version != 1:
					t.Errorf("versions %d, %d; want 2, 1 (newest first)", cur.Version, old.Version)
				case !cur.Current || old.Current:
					t.Errorf("current flags %v, %v; want true, false", cur.Current, old.Current)
				case cur.SHA256 != hex.EncodeToString(sum[:]) || cur.Size != int64(len(stored)):
					t.Errorf("current version sha256 %s size %d; stored bytes have %x, %d", cur.SHA256, cur.Size, sum, len(stored))
				case cur.Serial != st.Serial || cur.Serial <= old.Serial:
					t.Errorf("serials %d, %d; state has %d", cur.Serial, old.Serial, st.Serial)
				case cur.Source != store.SourceBackend || cur.Lineage != st.Lineage:
					t.Errorf("current version source %q lineage %q; want backend, %q", cur.Source, cur.Lineage, st.Lineage)
				}
				if l := srv.LockOf(t, id); l != nil {
					t.Errorf("unit still locked after the applies: %+v", l)
				}
				checkBackendStatuses(t, srv)
				n := countMethods(t, srv)
				if v.opts.postDelete && (n["LOCK"]+n["UNLOCK"] != 0 || n[http.MethodDelete] < 2) {
					t.Errorf("lock_method POST/unlock_method DELETE: requests per method %v", n)
				} else if !v.opts.postDelete && (n["LOCK"] < 2 || n["UNLOCK"] < 2) {
					t.Errorf("LOCK/UNLOCK: requests per method %v", n)
				}
			})
		}
	})
}

// TestBackend_DottedIDs is BR-06: dots and encoded slashes are part of the
// unit ID on every route, with and without locking.
func TestBackend_DottedIDs(t *testing.T) {
	t.Parallel()
	type idCase struct {
		id   string
		opts backendOpts
		args []string
	}
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		srv := startServer(t)
		var cases []idCase
		for _, id := range []string{"foo.bar", "app.json", "v1.2.3", "team/app", "team/app.prod"} {
			cases = append(cases,
				idCase{id: id},
				idCase{id: id + "-nl", args: []string{"-lock=false"}})
		}
		for _, id := range []string{"foo.bar", "team/app.prod"} {
			cases = append(cases, idCase{id: id + "-pd", opts: backendOpts{postDelete: true}})
		}
		// The address with real slashes (SPEC §4) names the same units.
		cases = append(cases,
			idCase{id: "org/team/app.prod", opts: backendOpts{rawSlashes: true}},
			idCase{id: "org/team/app.prod-pd", opts: backendOpts{rawSlashes: true, postDelete: true}})
		t.Run("apply", func(t *testing.T) {
			for _, c := range cases {
				t.Run(strings.ReplaceAll(c.id, "/", "%2F"), func(t *testing.T) {
					t.Parallel()
					sb := writeConfig(t, "r", srv.httpBackend(c.id, c.opts))
					sb.MustRun(t, tl, "init")
					sb.MustRun(t, tl, append([]string{"apply", "-auto-approve"}, c.args...)...)
				})
			}
		})
		if t.Failed() {
			return
		}
		for _, c := range cases {
			u := srv.Unit(t, c.id)
			if u == nil || u.ID != c.id || u.VersionCount != 1 || u.Locked {
				t.Errorf("GET /v1/units/%s = %+v; want unit %q with 1 version, unlocked", c.id, u, c.id)
				continue
			}
			if a, b := srv.Download(t, c.id), srv.backendState(t, c.id); !bytes.Equal(a, b) {
				t.Errorf("%s: management download and backend GET differ", c.id)
			}
		}
		for _, missing := range []string{"foo", "app", "v1", "v1.2", "team", "app.prod", "org", "org/team", "org/team/app"} {
			if r := srv.Do(t, http.MethodGet, srv.UnitURL(missing, ""), "", nil); r.Status != http.StatusNotFound {
				t.Errorf("GET /v1/units/%s: status %d, want 404", missing, r.Status)
			}
		}
		for _, id := range []string{"foo.bar", "app.json"} {
			r := srv.Do(t, http.MethodGet, srv.UnitURL(id, ""), "", nil)
			e2etest.Expect(t, "GET unit "+id, r, http.StatusOK)
			var u store.Unit
			if e2etest.MustJSON(t, r.Body, &u); u.ID != id || u.Size == 0 {
				t.Errorf("GET /v1/units/%s = %s; want unit %q with its state", id, r.Body, id)
			}
		}

		r := srv.Do(t, http.MethodGet, srv.URL+"/v1/units", "", nil)
		e2etest.Expect(t, "list units", r, http.StatusOK)
		var list httpapi.UnitList
		e2etest.MustJSON(t, r.Body, &list)
		var got, want []string
		for _, u := range list.Units {
			got = append(got, u.ID)
		}
		for _, c := range cases {
			want = append(want, c.id)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) || list.Count != len(want) {
			t.Errorf("unit list (count %d):\n got %q\nwant %q", list.Count, got, want)
		}
		checkBackendStatuses(t, srv)
	})
}

// TestBackend_LargeState is BR-08: an ~8 MB state is stored byte for
// byte, and the next plan sees no changes; terraform also does ~80 MB.
func TestBackend_LargeState(t *testing.T) {
	t.Parallel()
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		largeState(t, tl, "large", 8_000_000)
	})
	t.Run("80MB", func(t *testing.T) {
		if testing.Short() {
			t.Skip("the ~80 MB state takes long; skipped with -short")
		}
		t.Parallel()
		largeState(t, e2etest.FindTool(t, "terraform"), "large80", 80_000_000)
	})
}

func largeState(t *testing.T, tl e2etest.Tool, fixture string, minSize int64) {
	srv := startServer(t)
	id := "big/" + tl.Name
	sb := writeConfig(t, fixture, srv.httpBackend(id, backendOpts{}))
	sb.MustRun(t, tl, "init")
	if res := sb.RunWith(t, tl, e2etest.RunOpts{Timeout: 8 * time.Minute}, "apply", "-auto-approve"); res.Code != 0 {
		t.Fatalf("apply: exit %d, want 0", res.Code)
	}

	stored := srv.backendState(t, id)
	pulled := sb.StatePull(t, tl, e2etest.RunOpts{})
	if a, b := sha256.Sum256(stored), sha256.Sum256(pulled); a != b {
		t.Errorf("stored state sha256 %x (%d bytes) != state pull %x (%d bytes)", a, len(stored), b, len(pulled))
	}
	if res := sb.RunWith(t, tl, e2etest.RunOpts{Timeout: 8 * time.Minute}, "plan", "-detailed-exitcode"); res.Code != 0 {
		t.Errorf("plan -detailed-exitcode: exit %d, want 0 (no changes)", res.Code)
	}
	vs := srv.Versions(t, id)
	if len(vs) != 1 || vs[0].Size != int64(len(stored)) || vs[0].Size < minSize {
		var sizes []int64
		for _, v := range vs {
			sizes = append(sizes, v.Size)
		}
		t.Errorf("version sizes %v; want one version of %d bytes (at least %d)", sizes, len(stored), minSize)
	}
	if _, err := os.Stat(filepath.Join(sb.Dir, "errored.tfstate")); err == nil {
		t.Errorf("errored.tfstate was written")
	}
	checkBackendStatuses(t, srv)
}
