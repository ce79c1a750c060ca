package graph_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/opentaco/opentaco/graph"
)

// dag is a random graph of units u0..u(n-1) whose edges only go from a
// lower to a higher index (so it has no cycles), each edge pending,
// unknown or ok at random.
type dag struct {
	n     int
	edges []graph.Edge
}

func unitName(i int) string { return fmt.Sprintf("u%d", i) }

func randomDAG(r *rand.Rand, n int, density float64) *dag {
	g := &dag{n: n}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if r.Float64() >= density {
				continue
			}
			for k := 0; k < 1+r.IntN(2); k++ { // parallel edges happen
				e := graph.NewEdge(unitName(i), fmt.Sprintf("o%d", k), unitName(j), "")
				switch r.IntN(4) {
				case 0: // pending
					e.InDigest, e.OutDigest = "new", "old"
				case 1: // unknown
					e.OutDigest = "old"
				default: // ok
					e.InDigest, e.OutDigest = "same", "same"
				}
				g.edges = append(g.edges, e)
			}
		}
	}
	return g
}

// lookup serves nodes from g and counts calls per unit.
func (g *dag) lookup(calls map[string]int) graph.Lookup {
	in := map[string][]graph.Edge{}
	for _, e := range g.edges {
		in[e.To] = append(in[e.To], e)
	}
	return func(u string) (graph.Node, error) {
		calls[u]++
		return graph.NodeOf(in[u]), nil
	}
}

// reference computes every colour by brute force: the transitive closure
// (Floyd–Warshall), then red = a pending incoming edge, yellow = a red
// unit reaches it.
func (g *dag) reference() map[string]string {
	reach := make([][]bool, g.n)
	for i := range reach {
		reach[i] = make([]bool, g.n)
	}
	red := make([]bool, g.n)
	idx := func(u string) (i int) { fmt.Sscanf(u, "u%d", &i); return i }
	for _, e := range g.edges {
		reach[idx(e.From)][idx(e.To)] = true
		if e.InDigest != "" && e.InDigest != e.OutDigest {
			red[idx(e.To)] = true
		}
	}
	for k := 0; k < g.n; k++ {
		for i := 0; i < g.n; i++ {
			for j := 0; j < g.n; j++ {
				reach[i][j] = reach[i][j] || reach[i][k] && reach[k][j]
			}
		}
	}
	out := map[string]string{}
	for j := 0; j < g.n; j++ {
		out[unitName(j)] = graph.Green
		if red[j] {
			out[unitName(j)] = graph.Red
			continue
		}
		for i := 0; i < g.n; i++ {
			if red[i] && reach[i][j] {
				out[unitName(j)] = graph.Yellow
			}
		}
	}
	return out
}

// TestStatus_BruteForce checks ColorOf and Colors against the reference on
// random DAGs of various sizes and densities, and that no unit is looked
// up twice in one walk.
func TestStatus_BruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 400; round++ {
		n := 1 + r.IntN(25)
		g := randomDAG(r, n, []float64{0.05, 0.15, 0.4}[round%3])
		want := g.reference()
		for i := 0; i < n; i++ {
			calls := map[string]int{}
			got, err := graph.ColorOf(unitName(i), g.lookup(calls))
			if err != nil || got != want[unitName(i)] {
				t.Fatalf("round %d: ColorOf(u%d) = %q, %v; want %q\nedges: %+v", round, i, got, err, want[unitName(i)], g.edges)
			}
			checkOnce(t, calls)
		}
		// A random subset (with repeats) in one call.
		var units []string
		for k := r.IntN(n + 3); k > 0; k-- {
			units = append(units, unitName(r.IntN(n)))
		}
		calls := map[string]int{}
		got, err := graph.Colors(units, g.lookup(calls))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range units {
			if got[u] != want[u] {
				t.Fatalf("round %d: Colors(%v)[%s] = %q, want %q\nedges: %+v", round, units, u, got[u], want[u], g.edges)
			}
		}
		checkOnce(t, calls)
	}
}

func checkOnce(t *testing.T, calls map[string]int) {
	t.Helper()
	for u, n := range calls {
		if n > 1 {
			t.Fatalf("unit %s looked up %d times", u, n)
		}
	}
}

func TestStatus_NewStatus(t *testing.T) {
	mk := func(from, in, out string) graph.Edge {
		e := graph.NewEdge(from, "o", "u", "")
		e.InDigest, e.OutDigest = in, out
		return e
	}
	st := graph.NewStatus("u", graph.Red, []graph.Edge{mk("b", "x", "x"), mk("c", "", ""), mk("a", "x", "y"), mk("a2", "x", "x")})
	if st.Summary != (graph.Summary{OK: 2, Pending: 1, Unknown: 1}) {
		t.Fatalf("summary = %+v", st.Summary)
	}
	if off := st.FirstOffender(); off == nil || off.FromUnitID != "a" || st.Incoming[1].FromUnitID != "c" || st.Incoming[2].FromUnitID != "a2" {
		t.Fatalf("incoming = %+v", st.Incoming)
	}
	for _, e := range st.Incoming {
		if e.ToUnitID != "" {
			t.Fatalf("status edge names its target: %+v", e)
		}
	}
	st.Hide(func(u string) bool { return u != "a" && u != "c" })
	if len(st.Incoming) != 2 || st.Summary.Hidden != 2 || st.Summary.Pending != 1 || st.FirstOffender() != nil {
		t.Fatalf("after Hide: %+v", st)
	}
	if empty := graph.NewStatus("v", graph.Green, nil); empty.Incoming == nil || empty.FirstOffender() != nil {
		t.Fatalf("empty status: %+v", empty)
	}
}

// chain is u0 → u1 → ... → u(n-1); the first edge is pending when red.
func chain(n int, red bool) *dag {
	g := &dag{n: n}
	for i := 0; i+1 < n; i++ {
		e := graph.NewEdge(unitName(i), "o", unitName(i+1), "")
		e.InDigest, e.OutDigest = "d", "d"
		if red && i == 0 {
			e.OutDigest = "old"
		}
		g.edges = append(g.edges, e)
	}
	return g
}

// fanIn is n units each feeding unit "sink" (one edge each, all ok).
func fanIn(n int) *dag {
	g := &dag{n: n + 1}
	for i := 0; i < n; i++ {
		e := graph.NewEdge(unitName(i), "o", "sink", "")
		e.InDigest, e.OutDigest = "d", "d"
		g.edges = append(g.edges, e)
	}
	return g
}

// memLookup serves the nodes of g from memory, precomputed.
func (g *dag) memLookup() graph.Lookup {
	in := map[string][]graph.Edge{}
	for _, e := range g.edges {
		in[e.To] = append(in[e.To], e)
	}
	nodes := map[string]graph.Node{}
	for u, es := range in {
		nodes[u] = graph.NodeOf(es)
	}
	return func(u string) (graph.Node, error) { return nodes[u], nil }
}

// BenchmarkColorOf is the pure walk (in-memory lookups); the store's
// benchmarks add the bbolt reads.
func BenchmarkColorOf(b *testing.B) {
	for _, tc := range []struct {
		name string
		g    *dag
		unit string
		want string
	}{
		{"Chain10000LeafGreen", chain(10000, false), unitName(9999), graph.Green},
		{"Chain10000LeafYellow", chain(10000, true), unitName(9999), graph.Yellow},
		{"FanIn10000", fanIn(10000), "sink", graph.Green},
	} {
		b.Run(tc.name, func(b *testing.B) {
			look := tc.g.memLookup()
			for b.Loop() {
				if c, _ := graph.ColorOf(tc.unit, look); c != tc.want {
					b.Fatalf("colour %s, want %s", c, tc.want)
				}
			}
		})
	}
}

// BenchmarkColors is every unit of a 10,000-unit chain in one call.
func BenchmarkColors(b *testing.B) {
	g := chain(10000, true)
	look := g.memLookup()
	units := make([]string, g.n)
	for i := range units {
		units[i] = unitName(i)
	}
	for b.Loop() {
		if c, _ := graph.Colors(units, look); c[unitName(9999)] != graph.Yellow {
			b.Fatal("leaf not yellow")
		}
	}
}
