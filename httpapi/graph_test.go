package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// outState is a state whose outputs are the given strings.
func outState(serial int, outputs map[string]string, remotes ...string) []byte {
	outs := map[string]any{}
	for k, v := range outputs {
		outs[k] = map[string]any{"value": v, "type": "string"}
	}
	res := []any{}
	for i, addr := range remotes {
		res = append(res, map[string]any{"mode": "data", "type": "terraform_remote_state", "name": fmt.Sprintf("r%d", i),
			"instances": []any{map[string]any{"attributes": map[string]any{
				"backend": "http", "config": map[string]any{"value": map[string]any{"address": addr}, "type": "dynamic"},
				"outputs": map[string]any{"value": map[string]any{"db_url": "secret-value"}, "type": "dynamic"},
			}}}})
	}
	b, _ := json.Marshal(map[string]any{"version": 4, "serial": serial, "lineage": "L", "outputs": outs, "resources": res})
	return b
}

// rawCall sends a request and returns the status and body.
func rawCall(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func keysOf(m map[string]any) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return strings.Join(k, ",")
}

func TestClient_Graph(t *testing.T) {
	c := newServer(t, httpapi.Config{})
	ctx := context.Background()
	upload := func(id string, b []byte) {
		t.Helper()
		if _, err := c.Upload(ctx, id, bytes.NewReader(b), ""); err != nil {
			t.Fatalf("upload %s: %v", id, err)
		}
	}
	for _, id := range []string{"app/a", "app/b", "app/c"} {
		must(c.CreateUnit(ctx, id))(t)
	}
	upload("app/a", outState(1, map[string]string{"db_url": "pg://1"}))

	t.Run("Declare", func(t *testing.T) {
		body := []byte(`{"from_unit_id":"app/a","from_output":"db_url"}`)
		status, b := rawCall(t, http.MethodPut, c.BaseURL+"/v1/units/app__b/dependencies", "", body)
		if status != http.StatusCreated {
			t.Fatalf("first PUT: %d %s", status, b)
		}
		status, b = rawCall(t, http.MethodPut, c.BaseURL+"/v1/units/app%2Fb/dependencies", "", body)
		if status != http.StatusOK {
			t.Fatalf("second PUT: %d %s", status, b)
		}
		var e store.EdgeInfo
		if err := json.Unmarshal(b, &e); err != nil || e.EdgeID != store.EdgeID("app/a", "db_url", "app/b", "db_url") || e.Inferred {
			t.Fatalf("edge %s: %v", b, err)
		}
		e2, err := c.AddDependency(ctx, "app/c", store.DependencyRequest{FromUnitID: "app/b", FromOutput: "image_tag", ToInput: "tag"})
		if err != nil || e2.ToInput != "tag" || e2.Status != "unknown" {
			t.Fatalf("AddDependency = %+v, %v", e2, err)
		}
		_, err = c.AddDependency(ctx, "app/a", store.DependencyRequest{FromUnitID: "app/c", FromOutput: "x"})
		if e := wantCode(t, err, store.ECONFLICT); !strings.Contains(e.Message, "app/c → app/a → app/b → app/c") {
			t.Fatalf("cycle message: %q", e.Message)
		}
		status, b = rawCall(t, http.MethodPut, c.BaseURL+"/v1/units/app__a/dependencies", "", []byte(`{"from_unit_id":"app/c","from_output":"x"}`))
		if status != http.StatusConflict || !bytes.Contains(b, []byte(`"code":"conflict"`)) {
			t.Fatalf("cycle answer: %d %s", status, b)
		}
		_, err = c.AddDependency(ctx, "app/b", store.DependencyRequest{FromUnitID: "nope", FromOutput: "x"})
		wantCode(t, err, store.ENOTFOUND)
		_, err = c.AddDependency(ctx, "app/b", store.DependencyRequest{FromUnitID: "app/a", FromOutput: "not a name"})
		wantCode(t, err, store.EINVALID)
		status, _ = rawCall(t, http.MethodPut, c.BaseURL+"/v1/units/app__b/dependencies", "", []byte(`[`))
		if status != http.StatusBadRequest {
			t.Fatalf("bad body: %d", status)
		}
	})

	t.Run("Status", func(t *testing.T) {
		st, err := c.UnitStatus(ctx, "app/b")
		if err != nil || st.Status != "red" || st.Summary.Pending != 1 || st.FirstOffender().FromUnitID != "app/a" {
			t.Fatalf("status of app/b = %+v, %v", st, err)
		}
		_, err = c.UnitStatus(ctx, "nope")
		wantCode(t, err, store.ENOTFOUND)

		// The exact shape of SPEC §5, and no output values anywhere.
		status, b := rawCall(t, http.MethodGet, c.BaseURL+"/v1/units/app__b/status", "", nil)
		var raw map[string]any
		if status != http.StatusOK || json.Unmarshal(b, &raw) != nil {
			t.Fatalf("GET status: %d %s", status, b)
		}
		if got := keysOf(raw); got != "incoming,status,summary,unit_id" {
			t.Fatalf("status keys: %s", got)
		}
		in := raw["incoming"].([]any)[0].(map[string]any)
		if got := keysOf(in); got != "edge_id,from_output,from_unit_id,in_digest,inferred,last_in_at,last_out_at,out_digest,status,to_input" {
			t.Fatalf("incoming edge keys: %s", got)
		}
		if got := keysOf(raw["summary"].(map[string]any)); got != "incoming_hidden,incoming_ok,incoming_pending,incoming_unknown" {
			t.Fatalf("summary keys: %s", got)
		}
		if bytes.Contains(b, []byte("pg://1")) {
			t.Fatalf("status carries an output value: %s", b)
		}

		list, err := c.Statuses(ctx, "app/")
		if err != nil || list.Count != 3 || list.Units[0].UnitID != "app/a" || list.Units[1].Status != "red" || list.Units[2].Status != "yellow" {
			t.Fatalf("Statuses = %+v, %v", list, err)
		}
		if empty, err := c.Statuses(ctx, "zzz"); err != nil || empty.Count != 0 || empty.Units == nil {
			t.Fatalf("empty Statuses = %+v, %v", empty, err)
		}
	})

	t.Run("Inferred", func(t *testing.T) {
		upload("app/b", outState(1, map[string]string{"image_tag": "v1"}, "http://127.0.0.1:1/v1/backend/app/a"))
		d, err := c.Dependencies(ctx, "app/b")
		if err != nil || len(d.Incoming) != 1 || d.Incoming[0].Inferred || d.Incoming[0].Status != "ok" || len(d.Outgoing) != 1 {
			t.Fatalf("dependencies of app/b = %+v, %v", d, err)
		}
		_, b := rawCall(t, http.MethodGet, c.BaseURL+"/v1/units/app__b/dependencies", "", nil)
		if bytes.Contains(b, []byte("secret-value")) || bytes.Contains(b, []byte("127.0.0.1:1")) {
			t.Fatalf("dependencies carry values or configuration: %s", b)
		}
		if st := must(c.UnitStatus(ctx, "app/b"))(t); st.Status != "green" {
			t.Fatalf("app/b after consuming: %+v", st)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		id := store.EdgeID("app/b", "image_tag", "app/c", "tag")
		if err := c.RemoveDependency(ctx, "app/c", id); err != nil {
			t.Fatal(err)
		}
		wantCode(t, c.RemoveDependency(ctx, "app/c", id), store.ENOTFOUND)
		wantCode(t, c.RemoveDependency(ctx, "nope", id), store.ENOTFOUND)
		if d := must(c.Dependencies(ctx, "app/c"))(t); len(d.Incoming) != 0 || d.Outgoing == nil {
			t.Fatalf("dependencies of app/c = %+v", d)
		}
		_, err := c.Dependencies(ctx, "nope")
		wantCode(t, err, store.ENOTFOUND)
	})

	t.Run("DeleteUnit", func(t *testing.T) {
		if err := c.DeleteUnit(ctx, "app/a", false); err != nil {
			t.Fatal(err)
		}
		if d := must(c.Dependencies(ctx, "app/b"))(t); len(d.Incoming) != 0 {
			t.Fatalf("app/b keeps edges of a deleted unit: %+v", d.Incoming)
		}
	})
}

// TestGraph_RBAC: edges from units the caller may not read are hidden but
// still colour the unit; lists hold only readable units; declaring needs
// write on the target and read on the source.
func TestGraph_RBAC(t *testing.T) {
	s := newAuthServer(t)
	admin := httpapi.NewClient(s.URL, s.admin)
	ctx := context.Background()
	for _, id := range []string{"secret/a", "team/b", "team/c"} {
		must(admin.CreateUnit(ctx, id))(t)
	}
	if _, err := admin.Upload(ctx, "secret/a", bytes.NewReader(outState(1, map[string]string{"x": "1"})), ""); err != nil {
		t.Fatal(err)
	}
	must(admin.AddDependency(ctx, "team/b", store.DependencyRequest{FromUnitID: "secret/a", FromOutput: "x"}))(t)
	must(admin.AddDependency(ctx, "team/c", store.DependencyRequest{FromUnitID: "team/b", FromOutput: "y"}))(t)

	if _, err := s.db.PutPermission(store.Permission{Name: "team-read", Rules: []store.Rule{{Effect: "allow", Actions: []string{store.ActionRead}, Resources: []string{"team/*"}}}}); err != nil {
		t.Fatal(err)
	} else if _, err := s.db.PutRole(store.Role{Name: "team-reader", Permissions: []string{"team-read"}}); err != nil {
		t.Fatal(err)
	} else if _, err := s.db.Assign(store.Assignment{Subject: "carol", Role: "team-reader"}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.auth.IssueAccess(&authn.Principal{Subject: "carol", Kind: "user"})
	if err != nil {
		t.Fatal(err)
	}
	carol := httpapi.NewClient(s.URL, tok)

	st, err := carol.UnitStatus(ctx, "team/b")
	if err != nil || st.Status != "red" || len(st.Incoming) != 0 || st.Summary.Hidden != 1 || st.Summary.Pending != 1 {
		t.Fatalf("carol's status of team/b = %+v, %v", st, err)
	}
	if all := must(admin.UnitStatus(ctx, "team/b"))(t); len(all.Incoming) != 1 || all.Summary.Hidden != 0 {
		t.Fatalf("admin's status of team/b = %+v", all)
	}
	_, err = carol.UnitStatus(ctx, "secret/a")
	wantCode(t, err, store.ENOTFOUND)
	list := must(carol.Statuses(ctx, ""))(t)
	if list.Count != 2 || list.Units[0].UnitID != "team/b" || list.Units[0].Summary.Hidden != 1 || list.Units[1].Status != "yellow" {
		t.Fatalf("carol's Statuses = %+v", list)
	}
	d := must(carol.Dependencies(ctx, "team/b"))(t)
	if len(d.Incoming) != 0 || len(d.Outgoing) != 1 {
		t.Fatalf("carol's dependencies of team/b = %+v", d)
	}
	_, err = carol.AddDependency(ctx, "team/c", store.DependencyRequest{FromUnitID: "team/b", FromOutput: "z"})
	wantCode(t, err, store.EFORBIDDEN)
	wantCode(t, carol.RemoveDependency(ctx, "team/c", store.EdgeID("team/b", "y", "team/c", "y")), store.EFORBIDDEN)
	_, err = admin.AddDependency(ctx, "team/c", store.DependencyRequest{FromUnitID: "secret/a", FromOutput: "z"})
	if err != nil {
		t.Fatal(err)
	}

	audit, err := s.db.Audit(store.AuditQuery{Unit: "team/c"})
	if err != nil || len(audit) == 0 || audit[0].Action != store.AuditDependency || !strings.Contains(audit[0].Detail, "secret/a:z") {
		t.Fatalf("audit of team/c = %+v, %v", audit, err)
	}
}
