package graph_test

import (
	"crypto/sha256"
	"math/big"
	"slices"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/opentaco/opentaco/graph"
)

func TestBase58(t *testing.T) {
	t.Run("Vectors", func(t *testing.T) {
		for in, want := range map[string]string{
			"":                         "",
			"\x00":                     "1",
			"\x00\x00\x01":             "112",
			"hello world":              "StV1DL6CwTryKyV",
			"Hello World!":             "2NEpo7TZRRrLZSi2U",
			"\x00\x00\x28\x7f\xb4\xcd": "11233QC4",
		} {
			if got := graph.Base58([]byte(in)); got != want {
				t.Errorf("Base58(%q) = %q, want %q", in, got, want)
			}
		}
	})
	t.Run("BigIntReference", func(t *testing.T) {
		ref := func(b []byte) string {
			n := new(big.Int).SetBytes(b)
			var out []byte
			for n.Sign() > 0 {
				m := new(big.Int)
				n.DivMod(n, big.NewInt(58), m)
				out = append(out, "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"[m.Int64()])
			}
			for _, c := range b {
				if c != 0 {
					break
				}
				out = append(out, '1')
			}
			slices.Reverse(out)
			return string(out)
		}
		if err := quick.Check(func(b []byte) bool { return graph.Base58(b) == ref(b) }, &quick.Config{MaxCount: 2000}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEdgeID(t *testing.T) {
	sum := sha256.Sum256([]byte("a/b\ndb_url\nc\nurl"))
	if got, want := graph.EdgeID("a/b", "db_url", "c", "url"), graph.Base58(sum[:]); got != want {
		t.Fatalf("EdgeID = %q, want %q", got, want)
	}
	e := graph.NewEdge("a", "x", "b", "")
	if e.ToInput != "x" || e.ID != graph.EdgeID("a", "x", "b", "x") {
		t.Fatalf("NewEdge without input: %+v", e)
	}
}

func TestDigest(t *testing.T) {
	t.Run("Canonical", func(t *testing.T) {
		for in, want := range map[string]string{
			`"s"`: `"s"`,
			` { "b" : 1, "a" : [ 1.5 , "x\u003cy" ] } `: `{"a":[1.5,"x<y"],"b":1}`,
			`{"z":{"d":null,"c":true}}`:                 `{"z":{"c":true,"d":null}}`,
			`12345678901234567890123`:                   `12345678901234567890123`,
		} {
			got, err := graph.Canonical([]byte(in))
			if err != nil || string(got) != want {
				t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
			}
		}
		for _, bad := range []string{``, `{`, `1 2`, `{"a":}`} {
			if _, err := graph.Canonical([]byte(bad)); err == nil {
				t.Errorf("Canonical(%q) succeeded", bad)
			}
		}
	})
	t.Run("SameValueSameDigest", func(t *testing.T) {
		a, _ := graph.Digest([]byte(`{"b":[1,2],"a":"x<y"}`))
		b, _ := graph.Digest([]byte("{\n  \"a\": \"x\\u003cy\",\n  \"b\": [1, 2]\n}"))
		c, _ := graph.Digest([]byte(`{"b":[2,1],"a":"x<y"}`))
		sum := sha256.Sum256([]byte(`{"a":"x<y","b":[1,2]}`))
		if a != b || a == c || a != graph.Base58(sum[:]) {
			t.Fatalf("digests %q %q %q", a, b, c)
		}
	})
	t.Run("OutputDigests", func(t *testing.T) {
		d := graph.OutputDigests([]byte(`{"a":{"value":"x","type":"string"},"n":{"value":null},"s":{"value":1,"sensitive":true},"bad":{"type":"string"}}`))
		want, _ := graph.Digest([]byte(`"x"`))
		if len(d) != 3 || d["a"] != want || d["n"] == "" || d["s"] == "" {
			t.Fatalf("OutputDigests = %v", d)
		}
		for _, odd := range []string{``, `[]`, `null`, `"x"`} {
			if d := graph.OutputDigests([]byte(odd)); len(d) != 0 {
				t.Errorf("OutputDigests(%q) = %v", odd, d)
			}
		}
	})
}

func TestEdge(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	e := graph.NewEdge("a", "x", "b", "")
	if e.State() != graph.Unknown || e.Consume(t0) || !e.LastOutAt.IsZero() {
		t.Fatalf("fresh edge: %+v", e)
	}
	if !e.Produce("D1", t0) || e.State() != graph.Pending || !e.LastInAt.Equal(t0) {
		t.Fatalf("after produce: %+v", e)
	}
	if e.Produce("D1", t0.Add(time.Hour)) || !e.LastInAt.Equal(t0) {
		t.Fatalf("same digest changed the edge: %+v", e)
	}
	if !e.Consume(t0.Add(time.Minute)) || e.State() != graph.OK || e.OutDigest != "D1" {
		t.Fatalf("after consume: %+v", e)
	}
	if !e.Produce("", t0.Add(2*time.Minute)) || e.State() != graph.Unknown || !e.LastInAt.Equal(t0) || e.OutDigest != "D1" {
		t.Fatalf("after output vanished: %+v", e)
	}
	if !e.Produce("D1", t0.Add(3*time.Minute)) || e.State() != graph.OK {
		t.Fatalf("output back with the consumed value: %+v", e)
	}
	e.Declared, e.Inferred = true, true
	if info := e.Info(); info.Inferred || info.LastOutAt == nil || info.Status != graph.OK || info.ToUnitID != "b" {
		t.Fatalf("Info of a declared+inferred edge: %+v", info)
	}
	e.Declared = false
	if info := e.Info(); !info.Inferred {
		t.Fatalf("Info of an inferred edge: %+v", info)
	}
	fresh := graph.NewEdge("a", "x", "b", "")
	if info := fresh.Info(); info.LastInAt != nil || info.LastOutAt != nil {
		t.Fatalf("Info of a fresh edge has times: %+v", info)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "_x", "db_url", "a-b", "A9", strings.Repeat("a", graph.MaxNameLength)} {
		if err := graph.ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "9a", "-a", "a b", "a\nb", "a.b", "é", strings.Repeat("a", graph.MaxNameLength+1)} {
		if err := graph.ValidName(bad); err == nil {
			t.Errorf("ValidName(%q) accepted", bad)
		}
	}
}

func TestSortIncoming(t *testing.T) {
	in := []graph.EdgeInfo{
		{EdgeID: "1", FromUnitID: "b", Status: graph.OK},
		{EdgeID: "2", FromUnitID: "a", Status: graph.OK},
		{EdgeID: "3", FromUnitID: "z", Status: graph.Unknown},
		{EdgeID: "4", FromUnitID: "c", Status: graph.Pending},
		{EdgeID: "5", FromUnitID: "a", Status: graph.Pending, FromOutput: "y"},
		{EdgeID: "6", FromUnitID: "a", Status: graph.Pending, FromOutput: "x"},
	}
	graph.SortIncoming(in)
	var got []string
	for _, e := range in {
		got = append(got, e.EdgeID)
	}
	if strings.Join(got, "") != "654321" {
		t.Fatalf("order = %v", got)
	}
}

func TestFindPath(t *testing.T) {
	adj := map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {"e"}}
	next := func(u string) ([]string, error) { return adj[u], nil }
	if p, _ := graph.FindPath("a", "e", next); strings.Join(p, ",") != "a,b,d,e" {
		t.Fatalf("path a→e = %v", p)
	}
	if p, _ := graph.FindPath("e", "a", next); p != nil {
		t.Fatalf("path e→a = %v", p)
	}
	if p, _ := graph.FindPath("a", "a", next); strings.Join(p, ",") != "a" {
		t.Fatalf("path a→a = %v", p)
	}
	r, _ := graph.Reachable("b", next)
	if len(r) != 2 || !r["d"] || !r["e"] {
		t.Fatalf("Reachable(b) = %v", r)
	}
}

func TestReconcile(t *testing.T) {
	mk := func(from, out string, declared, inferred bool) graph.Edge {
		e := graph.NewEdge(from, out, "u", "")
		e.Declared, e.Inferred, e.InDigest = declared, inferred, "D"
		return e
	}
	in := []graph.Edge{
		mk("a", "x", true, false), // declared, now also inferred
		mk("a", "y", false, true), // inferred, still there
		mk("b", "z", false, true), // inferred, gone → dropped
		mk("c", "w", true, true),  // declared and inferred, gone → stays declared
		mk("d", "v", true, false), // declared, untouched
	}
	keep, added, dropped := graph.Reconcile("u", in, []graph.Ref{{"a", "x"}, {"a", "y"}, {"e", "n"}, {"e", "n"}})
	flags := func(es []graph.Edge) string {
		var s []string
		for _, e := range es {
			f := e.From + ":" + e.FromOutput
			if e.Declared {
				f += "D"
			}
			if e.Inferred {
				f += "I"
			}
			s = append(s, f)
		}
		return strings.Join(s, " ")
	}
	if got := flags(keep); got != "a:xDI a:yI c:wD d:vD" {
		t.Errorf("keep = %s", got)
	}
	if got := flags(added); got != "e:nI" || added[0].InDigest != "" || added[0].ToInput != "n" {
		t.Errorf("added = %s %+v", got, added)
	}
	if got := flags(dropped); got != "b:z" {
		t.Errorf("dropped = %s", got)
	}
	if !in[1].Inferred || in[0].Inferred {
		t.Error("Reconcile changed its input")
	}
}
