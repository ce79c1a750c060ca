package store_test

import (
	"bytes"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opentaco/opentaco/store"
)

func mustSecret(t testing.TB, db *store.DB, name string) []byte {
	t.Helper()
	s, err := db.Secret(name)
	if err != nil {
		t.Fatalf("Secret(%q): %v", name, err)
	} else if len(s) != 32 {
		t.Fatalf("Secret(%q) is %d bytes; want 32", name, len(s))
	} else if bytes.Equal(s, make([]byte, 32)) {
		t.Fatalf("Secret(%q) is all zeros", name)
	}
	return s
}

func TestStore_Secret(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		a := mustSecret(t, db, "a")
		if again := mustSecret(t, db, "a"); !bytes.Equal(again, a) {
			t.Fatalf("second Secret(a) = %x; want %x", again, a)
		}
		// The caller's copy is its own.
		a[0] ^= 0xff
		if again := mustSecret(t, db, "a"); bytes.Equal(again, a) {
			t.Fatal("changing a returned secret changed the stored one")
		}
	})
	t.Run("Distinct", func(t *testing.T) {
		db := mustOpen(t)
		a, b := mustSecret(t, db, "a"), mustSecret(t, db, "b")
		if bytes.Equal(a, b) {
			t.Fatalf("secrets a and b are both %x", a)
		}
	})
	t.Run("Reopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "opentaco.db")
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a := mustSecret(t, db, "tfe-upload-url")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = mustOpenAt(t, path, store.Options{})
		if got := mustSecret(t, db, "tfe-upload-url"); !bytes.Equal(got, a) {
			t.Fatalf("secret after reopen = %x; want %x", got, a)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		db := mustOpen(t)
		got := make([][]byte, 8)
		errs := make([]error, 8)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				<-start
				got[i], errs[i] = db.Secret("s")
			})
		}
		close(start)
		wg.Wait()
		for i := range got {
			if errs[i] != nil || !bytes.Equal(got[i], got[0]) || len(got[i]) != 32 {
				t.Fatalf("concurrent Secret %d = %x, %v; want %x", i, got[i], errs[i], got[0])
			}
		}
		if s := mustSecret(t, db, "s"); !bytes.Equal(s, got[0]) {
			t.Fatalf("Secret after the race = %x; want %x", s, got[0])
		}
	})
}
