package httpapi_test

// The RBAC matrix itself: the action table, the cells, and the list and
// graph routes that must never reveal a hidden unit (see rbac_harness_test.go).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

var rbActions = []rbAction{
	// --- /v1 ---
	{name: "v1 get", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1Extra,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp) }, ok: 200},
	{name: "v1 download", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/download") }, ok: 200},
	{name: "v1 download version", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1[:1],
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/download?version=1") }, ok: 200},
	{name: "v1 versions", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/versions") }, ok: 200},
	{name: "v1 get lock", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/lock") }, ok: 200},
	{name: "v1 upload", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllV1Extra,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/upload", rbState(2)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "v1 upload with lock", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/upload?if_locked_by=" + rbAdminLock, rbState(2)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "v1 restore", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/restore", []byte(`{"version":1}`)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditRestore}},
	{name: "v1 lock", surface: "v1", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units/" + sp + "/lock", []byte(`{"id":"L-cell","operation":"test"}`)
		}, ok: 200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "v1 unlock", surface: "v1", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/unlock", fmt.Appendf(nil, `{"id":%q}`, rbAdminLock)
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "v1 unlock ?id", surface: "v1", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1[1:],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/unlock?id=" + rbAdminLock, nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "v1 force unlock", surface: "v1", need: []string{store.ActionForceUnlock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/unlock?force=true", nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},
	{name: "v1 delete", surface: "v1", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodDelete, "/v1/units/" + sp, nil },
		ok:  204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "v1 delete force", surface: "v1", need: []string{store.ActionDelete, store.ActionForceUnlock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllV1,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "?force=true", nil
		},
		ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "v1 create", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: []rbSpelling{rbSpBody, rbSpBodyUnnorm},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units", rbJSON(map[string]string{"id": sp})
		}, ok: 201, denied: 403, effect: rbEffCreated, audit: []string{store.AuditCreate}},
	{name: "v1 create name", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: []rbSpelling{rbSpBody},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units", rbJSON(map[string]string{"name": sp})
		}, ok: 201, denied: 403, effect: rbEffCreated, audit: []string{store.AuditCreate}},
	{name: "v1 create existing", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{}, spellings: []rbSpelling{rbSpBody},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/units", rbJSON(map[string]string{"id": sp})
		}, ok: 409, denied: 403},

	{name: "v1 status", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true, src: true, edge: true}, spellings: rbAllV1, graph: true,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/status") }, ok: 200},
	{name: "v1 dependencies", surface: "v1", need: []string{store.ActionRead}, setup: rbSetup{state: true, src: true, edge: true}, spellings: rbAllV1, graph: true,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/units/" + sp + "/dependencies") }, ok: 200},
	{name: "v1 add dependency", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true, src: true}, spellings: rbAllV1, graph: true,
		req: func(sp, id string) (string, string, []byte) {
			return http.MethodPut, "/v1/units/" + sp + "/dependencies", rbJSON(map[string]string{"from_unit_id": id + "-s", "from_output": "o"})
		}, ok: 201, audit: []string{store.AuditDependency}},
	{name: "v1 delete dependency", surface: "v1", need: []string{store.ActionWrite}, setup: rbSetup{state: true, src: true, edge: true}, spellings: rbAllV1, graph: true,
		req: func(sp, id string) (string, string, []byte) {
			return http.MethodDelete, "/v1/units/" + sp + "/dependencies/" + rbEdgeID(id+"-s", "o", id, "o"), nil
		}, ok: 204, audit: []string{store.AuditDependency}},

	// --- http backend ---
	{name: "backend GET", surface: "backend", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllBkExtra,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/backend/" + sp) }, ok: 200},
	{name: "backend HEAD", surface: "head", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllBackend[:1],
		req: func(sp, _ string) (string, string, []byte) { return http.MethodHead, "/v1/backend/" + sp, nil }, ok: 200},
	{name: "backend GET lock", surface: "backend", need: []string{store.ActionRead}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/v1/backend/" + sp + "/lock") }, ok: 200},
	{name: "backend POST", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllBkExtra,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodPost, "/v1/backend/" + sp, rbState(2) },
		ok:  200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "backend PUT", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodPut, "/v1/backend/" + sp, rbState(2) },
		ok:  200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "backend POST locked", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/backend/" + sp + "?ID=" + rbAdminLock, rbState(2)
		}, ok: 200, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "backend POST new unit", surface: "backend", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return http.MethodPost, "/v1/backend/" + sp, rbState(1) },
		ok:  200, effect: rbEffCreated, audit: []string{store.AuditWrite}},
	{name: "backend LOCK", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) { return "LOCK", "/v1/backend/" + sp, rbLockBody("L-cell") },
		ok:  200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "backend LOCK new unit", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{absent: true}, spellings: rbAllBackend[:1],
		req: func(sp, _ string) (string, string, []byte) { return "LOCK", "/v1/backend/" + sp, rbLockBody("L-cell") },
		ok:  200, effect: rbEffCreated, audit: []string{store.AuditLock}},
	{name: "backend POST /lock", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, "/v1/backend/" + sp + "/lock", rbLockBody("L-cell")
		}, ok: 200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "backend UNLOCK", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) {
			return "UNLOCK", "/v1/backend/" + sp, rbLockBody(rbAdminLock)
		},
		ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "backend DELETE /lock", surface: "backend", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/backend/" + sp + "/lock", rbLockBody(rbAdminLock)
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "backend UNLOCK empty (force-unlock)", surface: "backend", need: []string{store.ActionLock, store.ActionForceUnlock},
		setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend, emptyOut: true,
		req: func(sp, _ string) (string, string, []byte) { return "UNLOCK", "/v1/backend/" + sp, nil },
		ok:  200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},
	{name: "backend DELETE /lock empty (force-unlock)", surface: "backend", need: []string{store.ActionLock, store.ActionForceUnlock},
		setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllBackend[1:], emptyOut: true,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, "/v1/backend/" + sp + "/lock", nil
		},
		ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},

	// --- Terraform Cloud API ---
	{name: "tfe get workspace", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) { return rbGet(rbTFE("/workspaces/" + sp)) }, ok: 200},
	{name: "tfe get workspace (/api/v2)", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) { return rbGet("/api/v2/workspaces/" + sp) }, ok: 200},
	{name: "tfe get workspace by name", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSName,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/organizations/" + rbOrg + "/workspaces/" + sp))
		}, ok: 200},
	{name: "tfe current state version", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/current-state-version"))
		}, ok: 200},
	{name: "tfe current outputs", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/current-state-version-outputs"))
		}, ok: 200},
	{name: "tfe state versions", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/state-versions"))
		}, ok: 200},
	{name: "tfe state versions by filter", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSName,
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/state-versions?filter%5Bworkspace%5D%5Bname%5D=" + url.QueryEscape(sp) + "&filter%5Borganization%5D%5Bname%5D=" + rbOrg))
		}, ok: 200},
	{name: "tfe state version", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) { return rbGet(rbTFE("/state-versions/sv-" + sp + ".v1")) }, ok: 200},
	{name: "tfe state version download", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/state-versions/sv-" + sp + ".v1/download"))
		}, ok: 200},
	{name: "tfe state version outputs", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/state-versions/sv-" + sp + ".v1/outputs"))
		}, ok: 200},
	{name: "tfe state version output", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: []rbSpelling{rbSpOpaque},
		req: func(_, id string) (string, string, []byte) {
			return rbGet(rbTFE("/state-version-outputs/wsout-" + base64.RawURLEncoding.EncodeToString([]byte(id+"\x001\x00o"))))
		}, ok: 200},
	{name: "tfe tag bindings", surface: "tfe", need: []string{store.ActionRead}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return rbGet(rbTFE("/workspaces/" + sp + "/tag-bindings"))
		}, ok: 200},
	{name: "tfe lock", surface: "tfe", need: []string{store.ActionLock}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/lock"), []byte(`{"reason":"rbac"}`)
		}, ok: 200, effect: rbEffLocked, audit: []string{store.AuditLock}},
	{name: "tfe unlock", surface: "tfe", need: []string{store.ActionLock}, setup: rbSetup{state: true, lock: "self"}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/unlock"), nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditUnlock}},
	{name: "tfe force-unlock", surface: "tfe", need: []string{store.ActionForceUnlock}, setup: rbSetup{state: true, lock: "admin"}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/force-unlock"), nil
		}, ok: 200, effect: rbEffUnlocked, audit: []string{store.AuditForceUnlock}},
	{name: "tfe state version create", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/state-versions"), rbSVCreate(2)
		}, ok: 201, effect: rbEffVersion, audit: []string{store.AuditWrite}},
	{name: "tfe update workspace", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPatch, rbTFE("/workspaces/" + sp), []byte(`{"data":{"type":"workspaces","attributes":{"terraform-version":"1.11.4"}}}`)
		}, ok: 200},
	{name: "tfe tag bindings patch", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPatch, rbTFE("/workspaces/" + sp + "/tag-bindings"), []byte(`{"data":[{"type":"tag-bindings","attributes":{"key":"env","value":"x"}}]}`)
		}, ok: 200, effect: rbEffLabels, audit: []string{store.AuditLabels}},
	{name: "tfe add tags", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/relationships/tags"), []byte(`{"data":[{"type":"tags","attributes":{"name":"t1"}}]}`)
		}, ok: 204, effect: rbEffLabels, audit: []string{store.AuditLabels}},
	{name: "tfe remove tags", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{state: true}, spellings: rbAllWSID[1:],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, rbTFE("/workspaces/" + sp + "/relationships/tags"), []byte(`{"data":[{"type":"tags","attributes":{"name":"t1"}}]}`)
		}, ok: 204, audit: []string{store.AuditLabels}},
	{name: "tfe delete workspace", surface: "tfe", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllWSID,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, rbTFE("/workspaces/" + sp), nil
		},
		ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "tfe delete workspace by name", surface: "tfe", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllWSName,
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodDelete, rbTFE("/organizations/" + rbOrg + "/workspaces/" + sp), nil
		}, ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "tfe safe-delete workspace", surface: "tfe", need: []string{store.ActionDelete}, setup: rbSetup{state: true}, spellings: rbAllWSID[:1],
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/workspaces/" + sp + "/actions/safe-delete"), nil
		}, ok: 204, effect: rbEffDeleted, audit: []string{store.AuditDelete}},
	{name: "tfe create workspace", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{absent: true}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/organizations/" + rbOrg + "/workspaces"), rbWSCreate(sp)
		}, ok: 201, denied: 403, effect: rbEffCreated, audit: []string{store.AuditCreate}},
	{name: "tfe create existing workspace", surface: "tfe", need: []string{store.ActionWrite}, setup: rbSetup{}, spellings: []rbSpelling{rbSpWSName},
		req: func(sp, _ string) (string, string, []byte) {
			return http.MethodPost, rbTFE("/organizations/" + rbOrg + "/workspaces"), rbWSCreate(sp)
		}, ok: 422, denied: 403},
}

// expect returns the status p must get for a on unit id.
func (a rbAction) expect(p rbPrincipal, id string) int {
	allowed := true
	for _, n := range a.need {
		allowed = allowed && p.may(n, id)
	}
	switch {
	case allowed:
		return a.ok
	case a.denied != 0:
		return a.denied
	case p.may(store.ActionRead, id):
		return http.StatusForbidden
	}
	return http.StatusNotFound
}

// rbCheckErrorBody checks the error shape of a refusal on each surface.
func rbCheckErrorBody(t *testing.T, surface string, a rbAnswer) {
	t.Helper()
	want := map[int]string{403: store.EFORBIDDEN, 404: store.ENOTFOUND}[a.status]
	switch surface {
	case "head":
		return
	case "tfe":
		var doc struct {
			Errors []struct{ Status, Title, Detail string } `json:"errors"`
		}
		if err := json.Unmarshal(a.body, &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Status != strconv.Itoa(a.status) {
			t.Errorf("TFE refusal body is not a JSON:API error for %d: %s", a.status, a)
		}
	default:
		var body httpapi.ErrorBody
		if err := json.Unmarshal(a.body, &body); err != nil || body.Code != want || body.Error == "" {
			t.Errorf("refusal body = %s, want {\"error\", \"code\": %q}", a, want)
		}
	}
}

// ---------------------------------------------------------------------------
// The matrix

func TestRBAC_Matrix(t *testing.T) {
	t.Parallel()
	s := newRBServer(t)

	var graph rbGraph
	t.Run("Lists", func(t *testing.T) { graph = rbLists(t, s) })
	t.Run("Cells", func(t *testing.T) {
		for _, p := range rbPrincipals {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				for _, a := range rbActions {
					for _, ns := range rbNamespaces {
						for _, sp := range a.spellings {
							name := fmt.Sprintf("%s/%s/%s", a.name, strings.TrimSuffix(ns, "/"), sp.name)
							t.Run(name, func(t *testing.T) {
								if a.graph && !(graph.deps && graph.unitStatus) {
									t.Skip("the server has no dependency/status routes")
								}
								t.Parallel()
								rbCell(t, s, p, a, ns, sp)
							})
						}
					}
				}
			})
		}
	})
}

// rbCell runs one call of the matrix and checks status, body, effect and
// audit trail.
func rbCell(t *testing.T, s *rbServer, p rbPrincipal, a rbAction, ns string, sp rbSpelling) {
	id := s.uid(ns)
	s.prepare(t, id, a.setup, p)
	before := s.snap(t, id)
	method, path, body := a.req(sp.spell(id), id)
	if a.emptyOut {
		body = nil
	}
	start := time.Now()
	ans := s.call(t, p.name, method, path, body)
	want := a.expect(p, id)
	if ans.status != want {
		t.Fatalf("%s %s %s (unit %s): %s, want %d", p.name, method, path, id, ans, want)
	}
	after := s.snap(t, id)
	reqID := ans.header.Get("X-Request-ID")
	if reqID == "" {
		t.Fatal("no X-Request-ID on the answer")
	}
	recs := s.auditOf(t, reqID, start)
	if want != a.ok {
		rbCheckErrorBody(t, a.surface, ans)
		if before != after {
			t.Errorf("refused call changed the unit: %+v → %+v", before, after)
		}
		if len(recs) != 0 {
			t.Errorf("refused call left audit records: %+v", recs[0])
		}
		for _, secret := range []string{rbAdminLock, `"l-rbac"`, `"o"`} {
			if bytes.Contains(ans.body, []byte(secret)) {
				t.Errorf("refusal body reveals %s: %s", secret, ans)
			}
		}
		return
	}
	if !rbEffectOK(a.effect, before, after) {
		t.Errorf("allowed call: unit %+v → %+v, want effect %q", before, after, a.effect)
	}
	var got []string
	for i := len(recs) - 1; i >= 0; i-- { // oldest first
		r := recs[i]
		got = append(got, r.Action)
		if r.Principal != p.subject || r.Unit != id || r.Result != "ok" {
			t.Errorf("audit record %+v, want principal %s, unit %s, result ok", r, p.subject, id)
		}
	}
	if !slices.Equal(got, a.audit) {
		t.Errorf("audit actions %v, want %v", got, a.audit)
	}
}

// ---------------------------------------------------------------------------
// Lists never reveal what the caller may not read

// rbListUnits are the units of the list checks: each namespace, plus
// near misses of the custom role's glob (case, a longer first segment).
var rbListUnits = []string{
	"team-a/app/lst-1", "team-a/prod/lst-2", "team-a/prod/deep/lst-3", "team-b/lst-4",
	"other/lst-5", "TEAM-A/lst-6", "team-a2/lst-7", "team-b2/lst-8", "lst-9",
}

func rbLists(t *testing.T, s *rbServer) rbGraph {
	for _, id := range rbListUnits {
		s.must(t, "admin", http.MethodPost, "/v1/backend/"+id, rbState(1), http.StatusOK)
	}
	graph := rbGraphRoutes(t, s)
	for _, p := range rbPrincipals {
		var visible, hidden []string
		for _, id := range rbListUnits {
			if p.may(store.ActionRead, id) {
				visible = append(visible, id)
			} else {
				hidden = append(hidden, id)
			}
		}
		sort.Strings(visible)
		noLeak := func(t *testing.T, what string, a rbAnswer) {
			t.Helper()
			for _, h := range hidden {
				for _, form := range []string{h, store.EncodeID(h), url.PathEscape(h)} {
					if bytes.Contains(a.body, []byte(form)) {
						t.Errorf("%s reveals hidden unit %s (as %q): %s", what, h, form, a)
					}
				}
			}
		}
		t.Run(p.name, func(t *testing.T) {
			for _, prefix := range []string{"", "team", "team-a/", "other", "lst", "nope"} {
				a := s.must(t, p.name, http.MethodGet, "/v1/units?prefix="+url.QueryEscape(prefix), nil, http.StatusOK)
				var list httpapi.UnitList
				rbDecode(t, a.body, &list)
				var got, want []string
				for _, u := range list.Units {
					got = append(got, u.ID)
				}
				for _, id := range visible {
					if strings.HasPrefix(id, prefix) {
						want = append(want, id)
					}
				}
				if !slices.Equal(got, want) || list.Count != len(want) || list.Units == nil {
					t.Errorf("GET /v1/units?prefix=%s: units %v count %d, want %v count %d (and [] not null)", prefix, got, list.Count, want, len(want))
				}
				noLeak(t, "GET /v1/units?prefix="+prefix, a)
			}
			for _, org := range []string{rbOrg, "another-org"} {
				for _, q := range []string{"", "&search%5Bname%5D=lst", "&search%5Bwildcard-name%5D=%2Alst%2A"} {
					path := rbTFE("/organizations/" + org + "/workspaces?page%5Bsize%5D=100" + q)
					a := s.must(t, p.name, http.MethodGet, path, nil, http.StatusOK)
					var doc struct {
						Data []struct {
							ID         string `json:"id"`
							Attributes struct {
								Name string `json:"name"`
							} `json:"attributes"`
						} `json:"data"`
						Meta struct {
							Pagination struct {
								TotalCount int `json:"total-count"`
							} `json:"pagination"`
						} `json:"meta"`
					}
					rbDecode(t, a.body, &doc)
					var got, want []string
					for _, w := range doc.Data {
						got = append(got, w.Attributes.Name)
						if w.ID != "ws-"+w.Attributes.Name {
							t.Errorf("workspace %s has ID %s", w.Attributes.Name, w.ID)
						}
					}
					for _, id := range visible {
						want = append(want, store.EncodeID(id))
					}
					sort.Strings(got)
					sort.Strings(want)
					if !slices.Equal(got, want) || doc.Meta.Pagination.TotalCount != len(want) {
						t.Errorf("GET %s: workspaces %v total %d, want %v total %d", path, got, doc.Meta.Pagination.TotalCount, want, len(want))
					}
					noLeak(t, "GET "+path, a)
				}
			}
			graph.check(t, s, p, visible, hidden, noLeak)
		})
	}
	return graph
}

// rbGraph holds which dependency/status routes the server has (they are
// optional for this test: it checks them when they exist).
type rbGraph struct {
	unitStatus, allStatus, deps bool
}

// rbGraphRoutes probes the graph routes as the admin, and where edges can
// be declared, links visible and hidden units: other/lst-5 → team-a/app/lst-1
// → team-b/lst-4.
func rbGraphRoutes(t *testing.T, s *rbServer) rbGraph {
	exists := func(a rbAnswer) bool {
		return a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed
	}
	g := rbGraph{
		unitStatus: exists(s.call(t, "admin", http.MethodGet, "/v1/units/other__lst-5/status", nil)),
		allStatus:  exists(s.call(t, "admin", http.MethodGet, "/v1/status", nil)),
		deps:       exists(s.call(t, "admin", http.MethodGet, "/v1/units/other__lst-5/dependencies", nil)),
	}
	t.Logf("graph routes present: unit status %v, /v1/status %v, dependencies %v", g.unitStatus, g.allStatus, g.deps)
	if g.deps {
		for _, e := range [][2]string{{"other/lst-5", "team-a__app__lst-1"}, {"team-a/app/lst-1", "team-b__lst-4"}} {
			a := s.call(t, "admin", http.MethodPut, "/v1/units/"+e[1]+"/dependencies", rbJSON(map[string]string{"from_unit_id": e[0], "from_output": "o"}))
			if a.status != http.StatusOK && a.status != http.StatusCreated {
				t.Errorf("declare edge %s → %s: %s", e[0], e[1], a)
			}
		}
	}
	return g
}

func (g rbGraph) check(t *testing.T, s *rbServer, p rbPrincipal, visible, hidden []string, noLeak func(*testing.T, string, rbAnswer)) {
	t.Helper()
	if g.deps && p.may(store.ActionRead, "team-a/app/lst-1") {
		// The edges exist (so the checks below are not vacuous), and those
		// to or from a hidden unit are left out.
		a := s.must(t, p.name, http.MethodGet, "/v1/units/team-a__app__lst-1/dependencies", nil, http.StatusOK)
		var d struct {
			Incoming []struct {
				From string `json:"from_unit_id"`
			} `json:"incoming"`
			Outgoing []struct {
				To string `json:"to_unit_id"`
			} `json:"outgoing"`
		}
		rbDecode(t, a.body, &d)
		wantIn, wantOut := 0, 0
		if p.may(store.ActionRead, "other/lst-5") {
			wantIn = 1
		}
		if p.may(store.ActionRead, "team-b/lst-4") {
			wantOut = 1
		}
		if len(d.Incoming) != wantIn || len(d.Outgoing) != wantOut {
			t.Errorf("dependencies of team-a/app/lst-1: %d incoming, %d outgoing; want %d, %d: %s", len(d.Incoming), len(d.Outgoing), wantIn, wantOut, a)
		}
	}
	if g.unitStatus && p.may(store.ActionRead, "team-a/app/lst-1") {
		a := s.must(t, p.name, http.MethodGet, "/v1/units/team-a__app__lst-1/status", nil, http.StatusOK)
		var st struct {
			Incoming []json.RawMessage `json:"incoming"`
			Summary  struct {
				Hidden int `json:"incoming_hidden"`
			} `json:"summary"`
		}
		rbDecode(t, a.body, &st)
		wantHidden := 1
		if p.may(store.ActionRead, "other/lst-5") {
			wantHidden = 0
		}
		if st.Summary.Hidden != wantHidden || len(st.Incoming) != 1-wantHidden {
			t.Errorf("status of team-a/app/lst-1: %d incoming, %d hidden; want %d, %d: %s", len(st.Incoming), st.Summary.Hidden, 1-wantHidden, wantHidden, a)
		}
	}
	if g.allStatus {
		a := s.must(t, p.name, http.MethodGet, "/v1/status", nil, http.StatusOK)
		var list struct {
			Units []struct {
				UnitID string `json:"unit_id"`
			} `json:"units"`
			Count int `json:"count"`
		}
		rbDecode(t, a.body, &list)
		var got []string
		for _, u := range list.Units {
			got = append(got, u.UnitID)
		}
		if !slices.Equal(got, visible) || list.Count != len(visible) {
			t.Errorf("GET /v1/status: units %v count %d, want %v", got, list.Count, visible)
		}
		noLeak(t, "GET /v1/status", a)
	}
	for _, route := range []struct {
		on     bool
		suffix string
	}{{g.unitStatus, "/status"}, {g.deps, "/dependencies"}} {
		if !route.on {
			continue
		}
		for _, id := range visible {
			a := s.must(t, p.name, http.MethodGet, "/v1/units/"+store.EncodeID(id)+route.suffix, nil, http.StatusOK)
			noLeak(t, "GET "+id+route.suffix, a)
		}
		for _, id := range hidden {
			for _, sp := range []string{store.EncodeID(id), url.PathEscape(id)} {
				a := s.call(t, p.name, http.MethodGet, "/v1/units/"+sp+route.suffix, nil)
				if a.status != http.StatusNotFound {
					t.Errorf("GET %s%s of a hidden unit: %s, want 404", sp, route.suffix, a)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// IDs that are not unit IDs of any surface
