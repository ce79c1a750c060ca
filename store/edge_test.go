package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opentaco/opentaco/graph"
	"github.com/opentaco/opentaco/store"
)

var (
	bucketEdges     = []byte("edges")
	bucketEdgesFrom = []byte("edges_from")
	bucketDigests   = []byte("digests")
)

// source is one terraform_remote_state instance of a test state.
type source struct {
	backend   string
	config    map[string]any
	outputs   []string // names; values are "v-<name>"
	workspace any
}

func httpSource(address string, outputs ...string) source {
	return source{backend: "http", config: map[string]any{"address": address}, outputs: outputs}
}

// graphState is a Terraform-shaped state with string outputs, one managed
// resource and a terraform_remote_state data source per src, in the
// format-4 shape (dynamic attributes wrapped in value/type).
func graphState(serial int, outputs map[string]string, src ...source) []byte {
	outs := map[string]any{}
	for k, v := range outputs {
		outs[k] = map[string]any{"value": v, "type": "string"}
	}
	res := []any{map[string]any{"mode": "managed", "type": "terraform_data", "name": "m", "provider": `provider["terraform.io/builtin/terraform"]`,
		"instances": []any{map[string]any{"attributes": map[string]any{"input": map[string]any{"value": "x", "type": "string"}}}}}}
	for i, s := range src {
		vals := map[string]any{}
		for _, o := range s.outputs {
			vals[o] = "v-" + o
		}
		res = append(res, map[string]any{"mode": "data", "type": "terraform_remote_state", "name": fmt.Sprintf("r%d", i),
			"provider": `provider["terraform.io/builtin/terraform"]`,
			"instances": []any{map[string]any{"schema_version": 0, "attributes": map[string]any{
				"backend": s.backend, "config": map[string]any{"value": s.config, "type": []any{"object", map[string]any{}}},
				"outputs": map[string]any{"value": vals, "type": []any{"object", map[string]any{}}}, "workspace": s.workspace, "defaults": nil,
			}}}})
	}
	b, err := json.Marshal(map[string]any{"version": 4, "terraform_version": "1.11.4", "serial": serial, "lineage": "L", "outputs": outs, "resources": res})
	if err != nil {
		panic(err)
	}
	return b
}

func write(t testing.TB, db *store.DB, id string, serial int, outputs map[string]string, src ...source) {
	t.Helper()
	mustWrite(t, db, id, graphState(serial, outputs, src...), store.WriteOptions{Create: true, Source: store.SourceAPI})
}

func declareEdge(t testing.TB, db *store.DB, from, output, to string) *store.EdgeInfo {
	t.Helper()
	e, _, err := db.PutDependency(to, store.DependencyRequest{FromUnitID: from, FromOutput: output})
	if err != nil {
		t.Fatalf("PutDependency(%s:%s → %s): %v", from, output, to, err)
	}
	return e
}

func status(t testing.TB, db *store.DB, id string) *store.Status {
	t.Helper()
	st, err := db.UnitStatus(id)
	if err != nil {
		t.Fatalf("UnitStatus(%q): %v", id, err)
	}
	return st
}

// wantColors checks the colours of units, given as "a=green b=red ...",
// both one by one and through Statuses("").
func wantColors(t testing.TB, db *store.DB, spec string) {
	t.Helper()
	all, err := db.Statuses("")
	if err != nil {
		t.Fatal(err)
	}
	bulk := map[string]string{}
	for _, st := range all {
		bulk[st.UnitID] = st.Status
	}
	for _, kv := range strings.Fields(spec) {
		id, want, _ := strings.Cut(kv, "=")
		if got := status(t, db, id).Status; got != want {
			t.Errorf("status of %s = %s, want %s", id, got, want)
		}
		if bulk[id] != want {
			t.Errorf("Statuses: %s = %s, want %s", id, bulk[id], want)
		}
	}
}

func deps(t testing.TB, db *store.DB, id string) *store.Dependencies {
	t.Helper()
	d, err := db.Dependencies(id)
	if err != nil {
		t.Fatalf("Dependencies(%q): %v", id, err)
	}
	return d
}

func digestOf(v string) string {
	d, _ := graph.Digest([]byte(`"` + v + `"`))
	return d
}

func TestStore_Dependency(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		mustCreate(t, db, "b")
		e, created, err := db.PutDependency("b", store.DependencyRequest{FromUnitID: "/a/", FromOutput: "x"})
		if err != nil || !created {
			t.Fatalf("PutDependency = %+v, %v, %v", e, created, err)
		}
		if e.EdgeID != store.EdgeID("a", "x", "b", "x") || e.FromUnitID != "a" || e.ToUnitID != "b" || e.ToInput != "x" ||
			e.Inferred || e.Status != graph.Pending || e.InDigest != digestOf("1") || e.OutDigest != "" || e.LastInAt == nil || e.LastOutAt != nil {
			t.Fatalf("edge = %+v", e)
		}
		again, created, err := db.PutDependency("b", store.DependencyRequest{FromUnitID: "a", FromOutput: "x", ToInput: "x"})
		if err != nil || created || again.EdgeID != e.EdgeID {
			t.Fatalf("second PutDependency = %+v, %v, %v", again, created, err)
		}
		other, created, err := db.PutDependency("b", store.DependencyRequest{FromUnitID: "a", FromOutput: "x", ToInput: "url"})
		if err != nil || !created || other.EdgeID == e.EdgeID || other.ToInput != "url" {
			t.Fatalf("PutDependency with input = %+v, %v, %v", other, created, err)
		}
		d := deps(t, db, "a")
		if len(d.Incoming) != 0 || len(d.Outgoing) != 2 || d.Outgoing[0].ToInput != "url" {
			t.Fatalf("dependencies of a = %+v", d)
		}
		if d := deps(t, db, "b"); len(d.Incoming) != 2 || len(d.Outgoing) != 0 {
			t.Fatalf("dependencies of b = %+v", d)
		}
		wantColors(t, db, "a=green b=red")
	})
	t.Run("ConsumedWhenTargetIsNewer", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		write(t, db, "b", 1, nil)
		write(t, db, "a", 2, map[string]string{"x": "1"}) // newer write, same value
		if e := declareEdge(t, db, "a", "x", "b"); e.Status != graph.OK || e.OutDigest != e.InDigest || e.LastOutAt == nil {
			t.Fatalf("edge into a newer consumer = %+v", e)
		}
		write(t, db, "c", 1, nil)
		write(t, db, "a", 3, map[string]string{"x": "2"})
		if e := declareEdge(t, db, "a", "x", "c"); e.Status != graph.Pending {
			t.Fatalf("edge into an older consumer = %+v", e)
		}
		if e := declareEdge(t, db, "a", "missing", "b"); e.Status != graph.Unknown {
			t.Fatalf("edge from an output a lacks = %+v", e)
		}
	})
	t.Run("OlderDatabase", func(t *testing.T) {
		// A state written before digests were kept: they are computed
		// from it when an edge needs them, dated from its write.
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		write(t, db, "b", 1, nil)
		if err := db.Bolt().Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDigests).Delete([]byte("a")) }); err != nil {
			t.Fatal(err)
		}
		if e := declareEdge(t, db, "a", "x", "b"); e.Status != graph.OK || e.InDigest != digestOf("1") || !e.LastInAt.Equal(mustGet(t, db, "a").Updated) {
			t.Fatalf("edge from an older unit = %+v", e)
		}
		if n := bucketLen(t, db, bucketDigests); n != 1 {
			t.Fatalf("%d digest records, want 1", n)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		_, _, err := db.PutDependency("nope", store.DependencyRequest{FromUnitID: "a", FromOutput: "x"})
		wantCode(t, err, store.ENOTFOUND)
		_, _, err = db.PutDependency("a", store.DependencyRequest{FromUnitID: "nope", FromOutput: "x"})
		wantCode(t, err, store.ENOTFOUND)
		wantCode(t, db.DeleteDependency("a", "xyz"), store.ENOTFOUND)
		wantCode(t, db.DeleteDependency("nope", "xyz"), store.ENOTFOUND)
		_, err = db.Dependencies("nope")
		wantCode(t, err, store.ENOTFOUND)
		_, err = db.UnitStatus("nope")
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustCreate(t, db, "b")
		for _, req := range []store.DependencyRequest{
			{FromUnitID: "a/../b", FromOutput: "x"}, {FromUnitID: "", FromOutput: "x"}, {FromUnitID: "a"},
			{FromUnitID: "a", FromOutput: "x\ny"}, {FromUnitID: "a", FromOutput: "x", ToInput: "1y"},
		} {
			_, _, err := db.PutDependency("b", req)
			wantCode(t, err, store.EINVALID)
		}
	})
	t.Run("ErrCycle", func(t *testing.T) {
		db := mustOpen(t)
		for _, u := range []string{"a", "b", "c", "d"} {
			mustCreate(t, db, u)
		}
		declareEdge(t, db, "a", "x", "b")
		declareEdge(t, db, "b", "x", "c")
		declareEdge(t, db, "a", "x", "d")
		_, _, err := db.PutDependency("a", store.DependencyRequest{FromUnitID: "c", FromOutput: "y"})
		wantCode(t, err, store.ECONFLICT)
		if msg := store.ErrorMessage(err); !strings.Contains(msg, "c → a → b → c") {
			t.Fatalf("cycle message = %q", msg)
		}
		_, _, err = db.PutDependency("a", store.DependencyRequest{FromUnitID: "a", FromOutput: "y"})
		wantCode(t, err, store.ECONFLICT)
		declareEdge(t, db, "d", "x", "c") // a diamond is not a cycle
	})
	t.Run("Delete", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		mustCreate(t, db, "b")
		e := declareEdge(t, db, "a", "x", "b")
		if err := db.DeleteDependency("b", e.EdgeID); err != nil {
			t.Fatal(err)
		}
		if d := deps(t, db, "a"); len(d.Outgoing) != 0 {
			t.Fatalf("outgoing after delete: %+v", d.Outgoing)
		}
		wantCode(t, db.DeleteDependency("b", e.EdgeID), store.ENOTFOUND)
		wantColors(t, db, "b=green")
	})
}

// TestStore_EdgeWrites follows SPEC §5 on a declared chain a → b → c.
func TestStore_EdgeWrites(t *testing.T) {
	db := mustOpen(t)
	for _, u := range []string{"a", "b", "c"} {
		mustCreate(t, db, u)
	}
	declareEdge(t, db, "a", "db_url", "b")
	declareEdge(t, db, "b", "image_tag", "c")
	wantColors(t, db, "a=green b=green c=green") // unknown edges are not pending
	if st := status(t, db, "b"); st.Summary != (graph.Summary{Unknown: 1}) {
		t.Fatalf("b before any write: %+v", st)
	}

	write(t, db, "a", 1, map[string]string{"db_url": "pg://1"})
	wantColors(t, db, "a=green b=red c=yellow")
	write(t, db, "b", 1, map[string]string{"image_tag": "v1"})
	wantColors(t, db, "a=green b=green c=red")
	write(t, db, "c", 1, nil)
	wantColors(t, db, "a=green b=green c=green")

	write(t, db, "a", 2, map[string]string{"db_url": "pg://2"})
	wantColors(t, db, "a=green b=red c=yellow")
	st := status(t, db, "b")
	off := st.FirstOffender()
	if st.Summary != (graph.Summary{Pending: 1}) || off == nil || off.FromUnitID != "a" || off.FromOutput != "db_url" ||
		off.InDigest != digestOf("pg://2") || off.OutDigest != digestOf("pg://1") {
		t.Fatalf("b after a changed: %+v", st)
	}
	write(t, db, "b", 2, map[string]string{"image_tag": "v1"}) // same image tag
	wantColors(t, db, "a=green b=green c=green")

	before := status(t, db, "b").Incoming[0]
	write(t, db, "a", 3, map[string]string{"db_url": "pg://2", "other": "o"}) // db_url unchanged
	wantColors(t, db, "a=green b=green c=green")
	if after := status(t, db, "b").Incoming[0]; !after.LastInAt.Equal(*before.LastInAt) {
		t.Fatalf("unchanged output moved last_in_at: %v → %v", before.LastInAt, after.LastInAt)
	}

	write(t, db, "a", 4, map[string]string{"other": "o"}) // db_url gone
	if e := status(t, db, "b").Incoming[0]; e.Status != graph.Unknown || e.OutDigest != digestOf("pg://2") {
		t.Fatalf("edge after its output vanished: %+v", e)
	}
	wantColors(t, db, "a=green b=green c=green")
	write(t, db, "a", 5, map[string]string{"db_url": "pg://2"}) // back, as consumed
	wantColors(t, db, "b=green")

	// A restore writes the old outputs back: b has to catch up.
	if _, err := db.Restore("a", store.RestoreRequest{Version: 1}); err != nil {
		t.Fatal(err)
	}
	wantColors(t, db, "a=green b=red c=yellow")
}

func TestStore_EdgeTFE(t *testing.T) {
	db := mustOpen(t)
	write(t, db, "a", 1, map[string]string{"x": "1"})
	write(t, db, "b", 1, nil)
	declareEdge(t, db, "a", "x", "b")
	wantColors(t, db, "b=green")
	state := graphState(2, map[string]string{"x": "2"})
	p, _, err := db.CreatePending(store.PendingVersion{ID: "sv-", UnitID: "a", Serial: 2, MD5: md5Hex(state)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.FinalizePending(p.ID, state); err != nil {
		t.Fatal(err)
	}
	wantColors(t, db, "b=red")
}

func TestStore_EdgeEncrypted(t *testing.T) {
	db := mustOpen(t)
	enc := func(serial int) []byte {
		return fmt.Appendf(nil, `{"serial":%d,"lineage":"L","meta":{},"encrypted_data":"AAAA","encryption_version":"v0"}`, serial)
	}
	write(t, db, "a", 1, map[string]string{"x": "1"})
	write(t, db, "b", 1, nil, httpSource("http://h/v1/backend/a", "x"))
	write(t, db, "a", 2, map[string]string{"x": "2"})
	wantColors(t, db, "b=red")

	// An encrypted producer: its edges are unknown, never pending or ok.
	mustWrite(t, db, "a", enc(3), store.WriteOptions{})
	if e := status(t, db, "b").Incoming[0]; e.Status != graph.Unknown || !e.Inferred {
		t.Fatalf("edge from an encrypted producer: %+v", e)
	}
	wantColors(t, db, "b=green")
	mustCreate(t, db, "c")
	if e := declareEdge(t, db, "a", "x", "c"); e.Status != graph.Unknown {
		t.Fatalf("new edge from an encrypted producer: %+v", e)
	}

	// An encrypted consumer keeps its inferred edges and consumes.
	write(t, db, "a", 4, map[string]string{"x": "4"})
	wantColors(t, db, "b=red")
	mustWrite(t, db, "b", enc(2), store.WriteOptions{})
	if d := deps(t, db, "b"); len(d.Incoming) != 1 || !d.Incoming[0].Inferred || d.Incoming[0].Status != graph.OK {
		t.Fatalf("b after an encrypted write: %+v", d.Incoming)
	}
	wantColors(t, db, "b=green")
}

func TestStore_EdgeInferred(t *testing.T) {
	t.Run("HTTP", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "team/a", 1, map[string]string{"db_url": "pg://1"})
		write(t, db, "x", 1, map[string]string{"y": "1"})
		write(t, db, "b", 1, nil,
			httpSource("http://127.0.0.1:8080/v1/backend/team%2Fa", "db_url", "extra"), // extra: from defaults
			httpSource("https://taco.example.com/prefix/v1/backend/x", "y"),
			httpSource("http://h/v1/backend/nope", "z"),                                          // no such unit
			httpSource("http://h/v1/backend/b", "self"),                                          // itself
			httpSource("http://h/api/state/x", "y2"),                                             // not a backend address
			source{backend: "s3", config: map[string]any{"bucket": "b"}, outputs: []string{"s"}}, // other backends
		)
		d := deps(t, db, "b")
		var got []string
		for _, e := range d.Incoming {
			if !e.Inferred || e.ToInput != e.FromOutput {
				t.Errorf("inferred edge %+v", e)
			}
			got = append(got, e.FromUnitID+":"+e.FromOutput+"="+e.Status)
		}
		slices.Sort(got)
		if strings.Join(got, " ") != "team/a:db_url=ok team/a:extra=unknown x:y=ok" {
			t.Fatalf("inferred edges: %v", got)
		}
		write(t, db, "team/a", 2, map[string]string{"db_url": "pg://2"})
		wantColors(t, db, "b=red")
		if off := status(t, db, "b").FirstOffender(); off == nil || off.FromUnitID != "team/a" || off.FromOutput != "db_url" {
			t.Fatalf("first offender = %+v", off)
		}

		// A declared edge that inference also finds stays when the data
		// source goes; inferred ones go.
		declareEdge(t, db, "x", "y", "b")
		write(t, db, "b", 2, nil, httpSource("http://h/v1/backend/team/a", "db_url"))
		d = deps(t, db, "b")
		if len(d.Incoming) != 2 || d.Incoming[0].FromUnitID != "team/a" || !d.Incoming[0].Inferred || d.Incoming[1].FromUnitID != "x" || d.Incoming[1].Inferred {
			t.Fatalf("after the x data source went: %+v", d.Incoming)
		}
		wantColors(t, db, "b=green")
		write(t, db, "b", 3, nil)
		if d := deps(t, db, "b"); len(d.Incoming) != 1 || d.Incoming[0].FromUnitID != "x" {
			t.Fatalf("after every data source went: %+v", d.Incoming)
		}
		if d := deps(t, db, "team/a"); len(d.Outgoing) != 0 {
			t.Fatalf("team/a still has outgoing edges: %+v", d.Outgoing)
		}
	})
	t.Run("DeclaredAndInferred", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		write(t, db, "b", 1, nil, httpSource("http://h/v1/backend/a", "x"))
		e, created, err := db.PutDependency("b", store.DependencyRequest{FromUnitID: "a", FromOutput: "x"})
		if err != nil || created || e.Inferred || e.Status != graph.OK {
			t.Fatalf("declaring an inferred edge: %+v, %v, %v", e, created, err)
		}
		if err := db.DeleteDependency("b", e.EdgeID); err != nil {
			t.Fatal(err)
		}
		if d := deps(t, db, "b"); len(d.Incoming) != 1 || !d.Incoming[0].Inferred {
			t.Fatalf("after removing the declaration: %+v", d.Incoming)
		}
		if err := db.DeleteDependency("b", e.EdgeID); err != nil {
			t.Fatal(err)
		}
		if d := deps(t, db, "b"); len(d.Incoming) != 0 {
			t.Fatalf("after deleting the inferred edge: %+v", d.Incoming)
		}
	})
	t.Run("Remote", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "team/a", 1, map[string]string{"o": "1"})
		write(t, db, "team/pre-x", 1, map[string]string{"p": "1"})
		remote := func(host string, ws map[string]any, workspace any, outs ...string) source {
			return source{backend: "remote", config: map[string]any{"hostname": host, "organization": "acme", "workspaces": ws}, outputs: outs, workspace: workspace}
		}
		incoming := func() string {
			var s []string
			for _, e := range deps(t, db, "b").Incoming {
				s = append(s, e.FromUnitID+":"+e.FromOutput)
			}
			slices.Sort(s)
			return strings.Join(s, " ")
		}
		srcs := []source{
			remote("localhost:8443", map[string]any{"name": "team__a"}, nil, "o"),
			remote("taco.example.com", map[string]any{"name": "team__a"}, nil, "o2"),
			remote("127.0.0.1", map[string]any{"prefix": "team__pre-"}, "x", "p"),
			{backend: "cloud", config: map[string]any{"hostname": "TACO.example.com:443", "workspaces": map[string]any{"name": "team__a"}}, outputs: []string{"c"}},
			remote("app.terraform.io", map[string]any{"name": "team__a"}, nil, "tfc"),
		}
		write(t, db, "b", 1, nil, srcs...)
		if got := incoming(); got != "team/a:o team/pre-x:p" {
			t.Fatalf("inferred from loopback hosts: %q", got)
		}
		if err := db.SetPublicHosts([]string{"https://taco.example.com/"}); err != nil {
			t.Fatal(err)
		}
		write(t, db, "b", 2, nil, srcs...)
		if got := incoming(); got != "team/a:c team/a:o team/a:o2 team/pre-x:p" {
			t.Fatalf("inferred with a public host: %q", got)
		}
		if err := db.SetPublicHosts([]string{"taco.example.com:8443"}); err != nil {
			t.Fatal(err)
		}
		write(t, db, "b", 3, nil, srcs...)
		if got := incoming(); got != "team/a:o team/pre-x:p" {
			t.Fatalf("inferred with a public host on another port: %q", got)
		}
	})
	t.Run("OddShapes", func(t *testing.T) {
		// States outside Terraform's shape are stored; they give no edges
		// and no digests, and never an error.
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		mustCreate(t, db, "b")
		rs := func(attrs string) string {
			return `{"mode":"data","type":"terraform_remote_state","instances":[{"attributes":` + attrs + `}]}`
		}
		for i, st := range []string{
			`{"serial":1,"resources":{"x":1},"outputs":[1]}`,
			`{"serial":1,"resources":[1,"a",null,[],{"mode":"data","type":"terraform_remote_state","instances":"x"}]}`,
			`{"serial":1,"resources":[` + rs(`null`) + `,` + rs(`{"backend":"http","config":"x","outputs":{"value":{"x":1},"type":"dynamic"}}`) + `]}`,
			`{"serial":1,"resources":[` + rs(`{"backend":"http","config":{"value":{"address":"http://h/v1/backend/a"},"type":"dynamic"},"outputs":{"value":[1],"type":"dynamic"}}`) + `]}`,
			`{"serial":1,"resources":[` + rs(`{"backend":"http","config":{"value":{"address":"http://h/v1/backend/a%zz"},"type":"dynamic"},"outputs":{"value":{"x":1},"type":"dynamic"}}`) + `]}`,
			`{"serial":1,"resources":[` + rs(`{"backend":"http","config":{"value":{"address":"http://h/v1/backend/a"},"type":"dynamic"},"outputs":{"value":{"bad name":1,"":2},"type":"dynamic"}}`) + `]}`,
			`{"serial":1,"outputs":{"x":{"value":{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}}}}`,
		} {
			mustWrite(t, db, "b", []byte(st), store.WriteOptions{})
			if d := deps(t, db, "b"); len(d.Incoming) != 0 || len(d.Outgoing) != 0 {
				t.Fatalf("state %d gave edges: %+v", i, d)
			}
		}
		// Unwrapped dynamic values (not what Terraform writes) still count.
		mustWrite(t, db, "b", []byte(`{"serial":2,"resources":[`+rs(`{"backend":"http","config":{"address":"http://h/v1/backend/a"},"outputs":{"x":1}}`)+`]}`), store.WriteOptions{})
		if d := deps(t, db, "b"); len(d.Incoming) != 1 || d.Incoming[0].FromOutput != "x" {
			t.Fatalf("unwrapped data source: %+v", d)
		}
	})
	t.Run("CycleSkipped", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		write(t, db, "b", 1, map[string]string{"y": "1"}, httpSource("http://h/v1/backend/a", "x"))
		mustCreate(t, db, "c")
		declareEdge(t, db, "b", "y", "c")
		// a reads c, which is downstream of a: that edge would close a cycle.
		write(t, db, "a", 2, map[string]string{"x": "1"}, httpSource("http://h/v1/backend/c", "z"))
		if d := deps(t, db, "a"); len(d.Incoming) != 0 {
			t.Fatalf("cyclic inferred edge kept: %+v", d.Incoming)
		}
	})
	t.Run("DeleteUnit", func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, "a", 1, map[string]string{"x": "1"})
		write(t, db, "b", 1, map[string]string{"y": "1"}, httpSource("http://h/v1/backend/a", "x"))
		write(t, db, "c", 1, nil, httpSource("http://h/v1/backend/b", "y"))
		write(t, db, "a", 2, map[string]string{"x": "2"})
		wantColors(t, db, "a=green b=red c=yellow")
		if err := db.DeleteUnit("b", false); err != nil {
			t.Fatal(err)
		}
		if d := deps(t, db, "a"); len(d.Outgoing) != 0 {
			t.Fatalf("a after b was deleted: %+v", d)
		}
		if d := deps(t, db, "c"); len(d.Incoming) != 0 {
			t.Fatalf("c after b was deleted: %+v", d)
		}
		wantColors(t, db, "a=green c=green")
		if n := bucketLen(t, db, bucketEdges) + bucketLen(t, db, bucketEdgesFrom); n != 0 {
			t.Fatalf("%d edge keys left", n)
		}
		if n := bucketLen(t, db, bucketDigests); n != 1 { // a's
			t.Fatalf("%d digest records, want 1", n)
		}
	})
}

func TestStore_Statuses(t *testing.T) {
	db := mustOpen(t)
	write(t, db, "up", 1, map[string]string{"x": "1"})
	write(t, db, "app/b", 1, map[string]string{"y": "1"}, httpSource("http://h/v1/backend/up", "x"))
	write(t, db, "app/c", 1, nil, httpSource("http://h/v1/backend/app/b", "y"))
	mustCreate(t, db, "app/d")
	write(t, db, "up", 2, map[string]string{"x": "2"})
	list, err := db.Statuses("app/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range list {
		got = append(got, st.UnitID+"="+st.Status)
	}
	if strings.Join(got, " ") != "app/b=red app/c=yellow app/d=green" {
		t.Fatalf("Statuses(app/) = %v", got)
	}
	if list[0].Summary.Pending != 1 || list[0].Incoming[0].FromUnitID != "up" || list[2].Incoming == nil {
		t.Fatalf("Statuses detail: %+v", list)
	}
	if none, err := db.Statuses("zzz"); err != nil || none == nil || len(none) != 0 {
		t.Fatalf("Statuses(zzz) = %v, %v", none, err)
	}
}

func TestStore_EdgeRecord(t *testing.T) {
	e := graph.NewEdge("a/b", "x", "c", "in")
	e.Declared, e.InDigest, e.OutDigest = true, "D1", "D0"
	e.LastInAt = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	got, err := store.DecodeEdge("c", e.ID, store.EncodeEdge(&e))
	if err != nil || got != e {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, e)
	}
	rec := store.EncodeEdge(&e)
	for _, bad := range [][]byte{nil, {9, 0}, rec[:len(rec)-3], append(bytes.Clone(rec), 0)} {
		if _, err := store.DecodeEdge("c", e.ID, bad); err == nil {
			t.Errorf("DecodeEdge(%x) succeeded", bad)
		}
	}
}
