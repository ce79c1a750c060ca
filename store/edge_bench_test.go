package store_test

import (
	"fmt"
	"testing"

	"github.com/opentaco/opentaco/graph"
	"github.com/opentaco/opentaco/store"
)

// benchDB opens a database for benchmarks, without fsync (the set-up
// writes thousands of small transactions).
func benchDB(b *testing.B) *store.DB {
	b.Helper()
	db := mustOpen(b)
	db.Bolt().NoSync = true
	return db
}

func chainUnit(i int) string { return fmt.Sprintf("chain/u%05d", i) }

// chainDB is u0 → u1 → ... → u(n-1), each edge output "o"; every unit has
// written a state, so every edge is ok and every unit green.
func chainDB(b *testing.B, n int) *store.DB {
	b.Helper()
	db := benchDB(b)
	for i := 0; i < n; i++ {
		mustCreate(b, db, chainUnit(i))
	}
	for i := 0; i+1 < n; i++ {
		declareEdge(b, db, chainUnit(i), "o", chainUnit(i+1))
	}
	for i := 0; i < n; i++ {
		write(b, db, chainUnit(i), 1, map[string]string{"o": "1"})
	}
	return db
}

// BenchmarkStore_Status is GET status of one unit: the leaf of a
// 10,000-unit chain (green, so the walk reads the whole upstream), and a
// unit with 10,000 incoming edges from 10,000 units.
func BenchmarkStore_Status(b *testing.B) {
	b.Run("ChainLeaf10000", func(b *testing.B) {
		db := chainDB(b, 10000)
		leaf := chainUnit(9999)
		for b.Loop() {
			if st, err := db.UnitStatus(leaf); err != nil || st.Status != graph.Green {
				b.Fatalf("status %+v, %v", st, err)
			}
		}
	})
	b.Run("ChainLeaf10000Yellow", func(b *testing.B) {
		db := chainDB(b, 10000)
		write(b, db, chainUnit(0), 2, map[string]string{"o": "2"}) // u1 red
		leaf := chainUnit(9999)
		for b.Loop() {
			if st, err := db.UnitStatus(leaf); err != nil || st.Status != graph.Yellow {
				b.Fatalf("status %+v, %v", st, err)
			}
		}
	})
	b.Run("FanIn10000", func(b *testing.B) {
		db := benchDB(b)
		mustCreate(b, db, "sink")
		for i := 0; i < 10000; i++ {
			write(b, db, chainUnit(i), 1, map[string]string{"o": "1"})
			declareEdge(b, db, chainUnit(i), "o", "sink")
		}
		for b.Loop() {
			if st, err := db.UnitStatus("sink"); err != nil || st.Summary.Pending != 10000 {
				b.Fatalf("status %+v, %v", st.Summary, err)
			}
		}
	})
}

// BenchmarkStore_Statuses is GET /v1/status?prefix= over 10,000 units.
func BenchmarkStore_Statuses(b *testing.B) {
	db := chainDB(b, 10000)
	write(b, db, chainUnit(5000), 2, map[string]string{"o": "2"})
	for b.Loop() {
		list, err := db.Statuses("chain/")
		if err != nil || len(list) != 10000 || list[5001].Status != graph.Red || list[9999].Status != graph.Yellow {
			b.Fatalf("statuses: %d, %v", len(list), err)
		}
	}
}

// BenchmarkStore_WriteFanOut is a state write of a unit with 1,000
// outgoing edges whose output changes on every write (every edge record
// is rewritten).
func BenchmarkStore_WriteFanOut(b *testing.B) {
	db := benchDB(b)
	write(b, db, "src", 1, map[string]string{"o": "0"})
	for i := 0; i < 1000; i++ {
		mustCreate(b, db, chainUnit(i))
		declareEdge(b, db, "src", "o", chainUnit(i))
	}
	states := [][]byte{graphState(2, map[string]string{"o": "a"}), graphState(3, map[string]string{"o": "b"})}
	i := 0
	for b.Loop() {
		mustWrite(b, db, "src", states[i%2], store.WriteOptions{})
		i++
	}
	if st := status(b, db, chainUnit(999)); st.Status != graph.Red {
		b.Fatalf("consumer not red: %+v", st)
	}
}

// BenchmarkStore_WriteGraphSize is a write of a unit in the middle of a
// chain of 100 and of 10,000 units: the cost does not depend on the size
// of the graph.
func BenchmarkStore_WriteGraphSize(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("Units%d", n), func(b *testing.B) {
			db := chainDB(b, n)
			mid := chainUnit(n / 2)
			states := [][]byte{graphState(2, map[string]string{"o": "a"}), graphState(3, map[string]string{"o": "b"})}
			i := 0
			for b.Loop() {
				mustWrite(b, db, mid, states[i%2], store.WriteOptions{})
				i++
			}
		})
	}
}
