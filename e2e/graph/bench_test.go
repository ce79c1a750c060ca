package graph

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/opentaco/opentaco/store"
)

func benchState(serial int, output string) []byte {
	return fmt.Appendf(nil, `{"version":4,"serial":%d,"lineage":"L","outputs":{"o":{"value":%q,"type":"string"}},"resources":[]}`, serial, output)
}

// benchServer is a server whose store holds units and edges made through
// the store directly, without fsync during the set-up.
func benchServer(b *testing.B, setup func(db *store.DB)) *server {
	b.Helper()
	s := startServer(b)
	s.DB.Bolt().NoSync = true
	setup(s.DB)
	s.DB.Bolt().NoSync = false
	return s
}

func check(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

func write(b *testing.B, db *store.DB, id string, state []byte, create bool) {
	b.Helper()
	_, err := db.WriteState(id, state, store.WriteOptions{Create: create})
	check(b, err)
}

func declare(b *testing.B, db *store.DB, from, to string) {
	b.Helper()
	_, _, err := db.PutDependency(to, store.DependencyRequest{FromUnitID: from, FromOutput: "o"})
	check(b, err)
}

func unitN(i int) string { return fmt.Sprintf("bench/u%05d", i) }

// BenchmarkHTTP_StatusPrefix is GET /v1/status?prefix= over 10,000 units
// (a chain, one red unit in the middle), answer decoded by the client.
func BenchmarkHTTP_StatusPrefix(b *testing.B) {
	const n = 10000
	s := benchServer(b, func(db *store.DB) {
		for i := 0; i < n; i++ {
			write(b, db, unitN(i), benchState(1, "1"), true)
		}
		for i := 0; i+1 < n; i++ {
			declare(b, db, unitN(i), unitN(i+1))
		}
		write(b, db, unitN(n/2), benchState(2, "2"), false)
	})
	ctx := context.Background()
	for b.Loop() {
		list, err := s.client.Statuses(ctx, "bench/")
		check(b, err)
		if list.Count != n || list.Units[n/2+1].Status != "red" || list.Units[n-1].Status != "yellow" {
			b.Fatalf("statuses: %d", list.Count)
		}
	}
}

// BenchmarkHTTP_BackendWriteFanOut is a state write through the http
// backend of a unit with 1,000 outgoing edges whose output changes each
// time (every edge record is rewritten in the write transaction).
func BenchmarkHTTP_BackendWriteFanOut(b *testing.B) {
	s := benchServer(b, func(db *store.DB) {
		write(b, db, "src", benchState(1, "0"), true)
		for i := 0; i < 1000; i++ {
			_, err := db.CreateUnit(unitN(i))
			check(b, err)
			declare(b, db, "src", unitN(i))
		}
	})
	url := s.BackendURL("src")
	i := 0
	for b.Loop() {
		i++
		resp, err := http.Post(url, "application/json", bytes.NewReader(benchState(1+i, fmt.Sprint(i))))
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("backend write: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	if st, err := s.client.UnitStatus(context.Background(), unitN(999)); err != nil || st.Status != "red" {
		b.Fatalf("consumer: %+v, %v", st, err)
	}
}
