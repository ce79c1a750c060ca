package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// outputsState is a state with the given string outputs.
func outputsState(serial int, kv ...string) string {
	var outs []string
	for i := 0; i+1 < len(kv); i += 2 {
		outs = append(outs, fmt.Sprintf("%q:{\"value\":%q,\"type\":\"string\"}", kv[i], kv[i+1]))
	}
	return fmt.Sprintf(`{"version":4,"serial":%d,"lineage":"l-1","outputs":{%s},"resources":[]}`, serial, strings.Join(outs, ","))
}

func TestCLI_Dep(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"app/a", "app/b", "app/c"} {
		e.ok("", "unit", "create", id)
	}
	e.ok(outputsState(1, "db_url", "pg://1"), "unit", "push", "app/a")

	out := e.ok("", "dep", "add", "app/a:db_url", "app/b")
	rows := lines(out)
	if len(rows) != 2 || strings.Join(rows[0], " ") != "FROM OUTPUT TO INPUT STATUS KIND EDGE ID" ||
		strings.Join(rows[1][:7], " ") != "app/a db_url app/b db_url pending declared "+store.EdgeID("app/a", "db_url", "app/b", "db_url") {
		t.Fatalf("dep add output:\n%s", out)
	}
	var edge store.EdgeInfo
	e.okJSON(&edge, "", "dep", "add", "app/b:image_tag", "app/c", "--input", "tag")
	if edge.ToInput != "tag" || edge.Status != "unknown" || edge.Inferred {
		t.Fatalf("dep add -o json: %+v", edge)
	}
	if msg := e.fail(5, "", "dep", "add", "app/c:x", "app/a"); !strings.Contains(msg, "app/c → app/a → app/b → app/c") {
		t.Fatalf("cycle message: %s", msg)
	}
	e.fail(2, "", "dep", "add", "app/a", "app/b")     // no output
	e.fail(2, "", "dep", "add", "app/a:x y", "app/b") // bad name
	e.fail(4, "", "dep", "add", "nope:x", "app/b")

	out = e.ok("", "dep", "ls", "app/b")
	rows = lines(out)
	if len(rows) != 3 || rows[0][0] != "DIRECTION" || rows[1][0] != "in" || rows[1][1] != "app/a" || rows[2][0] != "out" || rows[2][3] != "app/c" {
		t.Fatalf("dep ls output:\n%s", out)
	}

	// app/b is red (pending from app/a), app/c yellow: exit 2.
	r := e.run("", "unit", "status", "--prefix", "app/")
	rows = lines(r.stdout)
	if r.code != 2 || len(rows) != 4 || strings.Join(rows[0], " ") != "UNIT STATUS PENDING FIRST OFFENDER" ||
		strings.Join(rows[1], " ") != "app/a green 0 -" || strings.Join(rows[2], " ") != "app/b red 1 app/a/db_url" ||
		strings.Join(rows[3], " ") != "app/c yellow 0 app/b (upstream)" || !strings.Contains(r.stderr, "1 red, 1 yellow") {
		t.Fatalf("unit status --prefix: %+v", r)
	}
	if strings.Contains(r.stdout, "\x1b") {
		t.Fatalf("colour codes when piped: %q", r.stdout)
	}
	r = e.run("", "unit", "status", "app/c") // the red unit is fetched for the offender
	if rows := lines(r.stdout); r.code != 2 || len(rows) != 2 || strings.Join(rows[1], " ") != "app/c yellow 0 app/b (upstream)" {
		t.Fatalf("unit status app/c: %+v", r)
	}
	r = e.run("", "-o", "json", "unit", "status", "app/b")
	if r.code != 2 || !strings.Contains(r.stdout, `"status": "red"`) || !strings.Contains(r.stdout, `"incoming_pending": 1`) {
		t.Fatalf("unit status -o json: %+v", r)
	}
	var list httpapi.StatusList
	r = e.run("", "-o", "json", "unit", "status")
	if r.code != 2 || json.Unmarshal([]byte(r.stdout), &list) != nil || list.Count != 3 || list.Units[1].Summary.Pending != 1 {
		t.Fatalf("unit status -o json (all): %+v", r)
	}
	e.fail(4, "", "unit", "status", "nope")
	e.fail(2, "", "unit", "status", "app/a", "--prefix", "app/")

	// Applying b (same image tag) and c makes everything green: exit 0.
	e.ok(outputsState(1, "image_tag", "v1"), "unit", "push", "app/b")
	e.ok(outputsState(1), "unit", "push", "app/c")
	out = e.ok("", "unit", "status", "--prefix", "app/")
	if strings.Count(out, "green") != 3 {
		t.Fatalf("all green:\n%s", out)
	}

	// Remove by FROM:OUTPUT TO [--input], and by TO EDGE_ID.
	r = e.run("", "dep", "rm", "app/b:image_tag", "app/c", "--input", "tag")
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "Removed") {
		t.Fatalf("dep rm: %+v", r)
	}
	e.ok("", "dep", "rm", "app/b", store.EdgeID("app/a", "db_url", "app/b", "db_url"))
	e.fail(4, "", "dep", "rm", "app/b", store.EdgeID("app/a", "db_url", "app/b", "db_url"))
	if rows := lines(e.ok("", "dep", "ls", "app/b")); len(rows) != 1 {
		t.Fatalf("dep ls after rm: %v", rows)
	}
}
