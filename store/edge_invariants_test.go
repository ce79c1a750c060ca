package store_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/opentaco/opentaco/graph"
	"github.com/opentaco/opentaco/store"
)

// checkEdgeInvariants reports every broken invariant of the graph layout:
//   - every key of "edges" is <to>\x00<edge_id>, its record decodes, both
//     units exist and differ, the edge ID is the hash of its four names,
//     both names are valid, and the edge is declared, inferred or both;
//   - "edges_from" holds exactly one <from>\x00<edge_id> → <to> entry per
//     record, and nothing else;
//   - every key of "digests" names an existing unit and holds a JSON
//     object;
//   - the edge graph has no cycles.
func checkEdgeInvariants(t testing.TB, tx *bolt.Tx, units map[string]*store.Unit) {
	t.Helper()
	eb, ib, db := tx.Bucket(bucketEdges), tx.Bucket(bucketEdgesFrom), tx.Bucket(bucketDigests)
	if eb == nil || ib == nil || db == nil {
		t.Errorf("invariant: an edge bucket is missing")
		return
	}
	adj := map[string][]string{}
	records := 0
	_ = eb.ForEach(func(k, v []byte) error {
		to, id, ok := strings.Cut(string(k), "\x00")
		if !ok || v == nil {
			t.Errorf("invariant: edges key %q is not <to>\\x00<edge_id> with a value", k)
			return nil
		}
		e, err := store.DecodeEdge(to, id, v)
		if err != nil {
			t.Errorf("invariant: edge %q does not decode: %v", k, err)
			return nil
		}
		records++
		if units[e.From] == nil || units[e.To] == nil {
			t.Errorf("invariant: edge %s joins unknown unit (%q → %q)", id, e.From, e.To)
		}
		if e.From == e.To {
			t.Errorf("invariant: edge %s is a self-loop on %q", id, e.From)
		}
		if want := graph.EdgeID(e.From, e.FromOutput, e.To, e.ToInput); want != id {
			t.Errorf("invariant: edge key %s, but its names hash to %s", id, want)
		}
		if graph.ValidName(e.FromOutput) != nil || graph.ValidName(e.ToInput) != nil {
			t.Errorf("invariant: edge %s has a bad name (%q, %q)", id, e.FromOutput, e.ToInput)
		}
		if !e.Declared && !e.Inferred {
			t.Errorf("invariant: edge %s is neither declared nor inferred", id)
		}
		if got := ib.Get([]byte(e.From + "\x00" + id)); string(got) != to {
			t.Errorf("invariant: edge %s (%s → %s) has index entry %q", id, e.From, to, got)
		}
		adj[e.From] = append(adj[e.From], e.To)
		return nil
	})
	index := 0
	_ = ib.ForEach(func(k, v []byte) error {
		index++
		from, id, _ := strings.Cut(string(k), "\x00")
		rec := eb.Get([]byte(string(v) + "\x00" + id))
		if rec == nil {
			t.Errorf("invariant: orphan index entry %q → %q", k, v)
		} else if e, err := store.DecodeEdge(string(v), id, rec); err == nil && e.From != from {
			t.Errorf("invariant: index entry %q names an edge from %q", k, e.From)
		}
		return nil
	})
	if index != records {
		t.Errorf("invariant: %d edge records but %d index entries", records, index)
	}
	_ = db.ForEach(func(k, v []byte) error {
		var m map[string]json.RawMessage
		if units[string(k)] == nil {
			t.Errorf("invariant: digests of unknown unit %q", k)
		} else if json.Unmarshal(v, &m) != nil {
			t.Errorf("invariant: digests of %q are not a JSON object", k)
		}
		return nil
	})
	if cycle := findCycle(adj); cycle != nil {
		t.Errorf("invariant: the edge graph has a cycle: %s", strings.Join(cycle, " → "))
	}
}

// findCycle returns a cycle of the graph adj, or nil (iterative DFS).
func findCycle(adj map[string][]string) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	starts := make([]string, 0, len(adj))
	for u := range adj {
		starts = append(starts, u)
	}
	slices.Sort(starts)
	for _, s := range starts {
		if color[s] != white {
			continue
		}
		type frame struct {
			u string
			i int
		}
		stack := []frame{{s, 0}}
		color[s] = grey
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.i == len(adj[f.u]) {
				color[f.u] = black
				stack = stack[:len(stack)-1]
				continue
			}
			v := adj[f.u][f.i]
			f.i++
			switch color[v] {
			case grey:
				var path []string
				for _, fr := range stack {
					path = append(path, fr.u)
				}
				i := slices.Index(path, v)
				return append(path[i:], v)
			case white:
				color[v] = grey
				stack = append(stack, frame{v, 0})
			}
		}
	}
	return nil
}

// TestCheckEdgeInvariants breaks each graph invariant through raw bbolt
// writes and checks that the checker notices.
func TestCheckEdgeInvariants(t *testing.T) {
	for name, tc := range map[string]struct {
		corrupt func(tx *bolt.Tx, id string) error
		want    string
	}{
		"MissingIndex": {func(tx *bolt.Tx, id string) error {
			return tx.Bucket(bucketEdgesFrom).Delete([]byte("a\x00" + id))
		}, "has index entry \"\""},
		"OrphanIndex": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketEdgesFrom).Put([]byte("a\x00zzz"), []byte("b"))
		}, "orphan index entry"},
		"WrongID": {func(tx *bolt.Tx, id string) error {
			v := bytes.Clone(tx.Bucket(bucketEdges).Get([]byte("b\x00" + id)))
			return tx.Bucket(bucketEdges).Put([]byte("c\x00"+id), v)
		}, "hash to"},
		"UnknownUnit": {func(tx *bolt.Tx, id string) error {
			return tx.Bucket(bucketDigests).Put([]byte("ghost"), []byte(`{}`))
		}, "digests of unknown unit"},
		"BadRecord": {func(tx *bolt.Tx, id string) error {
			return tx.Bucket(bucketEdges).Put([]byte("b\x00"+id), []byte{1})
		}, "does not decode"},
		"Cycle": {func(tx *bolt.Tx, _ string) error {
			e := graph.NewEdge("c", "z", "a", "")
			e.Declared = true
			if err := tx.Bucket(bucketEdges).Put([]byte("a\x00"+e.ID), store.EncodeEdge(&e)); err != nil {
				return err
			}
			return tx.Bucket(bucketEdgesFrom).Put([]byte("c\x00"+e.ID), []byte("a"))
		}, "cycle: a → b → c → a"},
	} {
		t.Run(name, func(t *testing.T) {
			db := mustOpen(t)
			write(t, db, "a", 1, map[string]string{"x": "1"})
			write(t, db, "b", 1, map[string]string{"y": "1"})
			mustCreate(t, db, "c")
			e := declareEdge(t, db, "a", "x", "b")
			declareEdge(t, db, "b", "y", "c")
			if err := db.Bolt().Update(func(tx *bolt.Tx) error { return tc.corrupt(tx, e.EdgeID) }); err != nil {
				t.Fatal(err)
			}
			r := &recorder{TB: t}
			checkInvariants(r, db)
			if !slices.ContainsFunc(r.errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Fatalf("checker reported %q; want a report containing %q", r.errs, tc.want)
			}
			if err := db.Bolt().Update(func(tx *bolt.Tx) error {
				for _, b := range [][]byte{bucketEdges, bucketEdgesFrom, bucketDigests} {
					if err := tx.DeleteBucket(b); err != nil {
						return err
					} else if _, err := tx.CreateBucket(b); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
