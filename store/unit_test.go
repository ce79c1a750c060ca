package store_test

import (
	"slices"
	"testing"

	"github.com/opentaco/opentaco/store"
)

func TestStore_CreateUnit(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		u := mustCreate(t, db, "myapp/prod")
		if u.ID != "myapp/prod" || !u.Created.Equal(epoch) || !u.Updated.Equal(epoch) {
			t.Fatalf("created unit = %+v", u)
		}
		if u.VersionCount != 0 || u.CurrentVersion != 0 || u.Size != 0 || u.Serial != 0 || u.Locked || u.Lock != nil {
			t.Fatalf("new unit is not empty: %+v", u)
		}
		got := mustGet(t, db, "myapp/prod")
		if got.ID != u.ID || !got.Created.Equal(u.Created) || got.Locked || got.Lock != nil {
			t.Fatalf("GetUnit = %+v; want %+v", got, u)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustWrite(t, db, "a", tfState(1, "L"), store.WriteOptions{})
		_, err := db.CreateUnit("a")
		wantCode(t, err, store.ECONFLICT)
		// The existing unit is untouched.
		if u := mustGet(t, db, "a"); u.VersionCount != 1 || u.CurrentVersion != 1 {
			t.Fatalf("unit after duplicate create = %+v", u)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := mustOpen(t)
		// The store takes canonical IDs only: an ID that normalisation
		// would change is refused, not stored under a second spelling.
		for _, id := range []string{"", "a/../b", "_a", "a__b", "a/lock", "a b", "/", "/a", "a/", "a//b"} {
			_, err := db.CreateUnit(id)
			wantCode(t, err, store.EINVALID)
		}
		if n := bucketLen(t, db, bucketUnits); n != 0 {
			t.Fatalf("%d units stored after invalid creates", n)
		}
	})
	t.Run("CaseSensitive", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "App")
		mustCreate(t, db, "app")
		if units, _ := db.ListUnits(""); len(units) != 2 {
			t.Fatalf("ListUnits = %d units; want 2", len(units))
		}
	})
}

func TestStore_GetUnit(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a/b")
		state := tfState(7, "lin")
		mustWrite(t, db, "a/b", state, store.WriteOptions{})
		if _, err := db.LockUnit("a/b", store.Lock{ID: "L1", Who: "me"}, "", false); err != nil {
			t.Fatal(err)
		}
		u := mustGet(t, db, "a/b")
		if u.Size != int64(len(state)) || u.Serial != 7 || u.Lineage != "lin" || u.VersionCount != 1 || u.CurrentVersion != 1 {
			t.Fatalf("unit = %+v", u)
		}
		if !u.Updated.After(u.Created) {
			t.Fatalf("updated %v not after created %v", u.Updated, u.Created)
		}
		if !u.Locked || u.Lock == nil || u.Lock.ID != "L1" || u.Lock.Who != "me" {
			t.Fatalf("unit lock = %v %+v", u.Locked, u.Lock)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a/b")
		for _, id := range []string{"a", "a/b/c", "A/b", "nope"} {
			_, err := db.GetUnit(id)
			wantCode(t, err, store.ENOTFOUND)
		}
	})
}

func TestStore_ListUnits(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		for _, id := range []string{"b/x", "a/y", "a", "ab", "a/b/c", "c"} {
			mustCreate(t, db, id)
		}
		if _, err := db.LockUnit("ab", store.Lock{ID: "L"}, "me", false); err != nil {
			t.Fatal(err)
		}
		for prefix, want := range map[string][]string{
			"":    {"a", "a/b/c", "a/y", "ab", "b/x", "c"},
			"a":   {"a", "a/b/c", "a/y", "ab"},
			"a/":  {"a/b/c", "a/y"},
			"ab":  {"ab"},
			"b/x": {"b/x"},
		} {
			units, err := db.ListUnits(prefix)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range units {
				got = append(got, u.ID)
				if u.Locked != (u.ID == "ab") || (u.Lock != nil) != u.Locked {
					t.Errorf("ListUnits(%q): unit %q locked=%v lock=%+v", prefix, u.ID, u.Locked, u.Lock)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("ListUnits(%q) = %q; want %q", prefix, got, want)
			}
		}
	})
	t.Run("Empty", func(t *testing.T) {
		db := mustOpen(t)
		units, err := db.ListUnits("")
		if err != nil || units == nil || len(units) != 0 {
			t.Fatalf("ListUnits on empty db = %#v, %v; want non-nil empty slice", units, err)
		}
		mustCreate(t, db, "a")
		units, err = db.ListUnits("zzz")
		if err != nil || units == nil || len(units) != 0 {
			t.Fatalf("ListUnits(no match) = %#v, %v; want non-nil empty slice", units, err)
		}
	})
}

func TestStore_DeleteUnit(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustCreate(t, db, "b")
		for i := range 3 {
			mustWrite(t, db, "a", tfState(int64(i), "L"), store.WriteOptions{})
		}
		keep := mustWrite(t, db, "b", tfState(99, "other"), store.WriteOptions{})
		if err := db.DeleteUnit("a", false); err != nil {
			t.Fatal(err)
		}
		_, err := db.GetUnit("a")
		wantCode(t, err, store.ENOTFOUND)
		_, err = db.ListVersions("a")
		wantCode(t, err, store.ENOTFOUND)
		_, _, err = db.ReadState("a", 1)
		wantCode(t, err, store.ENOTFOUND)
		if refs := blobRefs(t, db); len(refs) != 1 || refs[keep.SHA256] != 1 {
			t.Fatalf("blob refs after delete = %v; want only %s", refs, keep.SHA256)
		}
		if n := bucketLen(t, db, bucketVersions); n != 1 {
			t.Fatalf("versions bucket has %d keys; want 1 (unit b)", n)
		}
		// A unit created again under the same ID starts empty.
		mustCreate(t, db, "a")
		if _, v, err := db.ReadState("a", 0); err != nil || v != nil {
			t.Fatalf("ReadState of re-created unit = %v, %v", v, err)
		}
		if vs, err := db.ListVersions("a"); err != nil || len(vs) != 0 {
			t.Fatalf("ListVersions of re-created unit = %v, %v", vs, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		wantCode(t, db.DeleteUnit("nope", false), store.ENOTFOUND)
		wantCode(t, db.DeleteUnit("nope", true), store.ENOTFOUND)
	})
	t.Run("NoState", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		if err := db.DeleteUnit("a", false); err != nil {
			t.Fatal(err)
		}
		if n := bucketLen(t, db, bucketUnits); n != 0 {
			t.Fatalf("%d units left", n)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustWrite(t, db, "a", tfState(1, "L"), store.WriteOptions{})
		if _, err := db.LockUnit("a", store.Lock{ID: "L1", Who: "alice"}, "", false); err != nil {
			t.Fatal(err)
		}
		err := db.DeleteUnit("a", false)
		wantLocked(t, err, "L1")
		if l := store.ErrorLock(err); l.Who != "alice" {
			t.Fatalf("lock in error = %+v", l)
		}
		// Nothing was removed.
		if u := mustGet(t, db, "a"); !u.Locked || u.VersionCount != 1 {
			t.Fatalf("unit after refused delete = %+v", u)
		}
		mustRead(t, db, "a", 1)
	})
	t.Run("Force", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustWrite(t, db, "a", tfState(1, "L"), store.WriteOptions{})
		if _, err := db.LockUnit("a", store.Lock{ID: "L1"}, "alice", false); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteUnit("a", true); err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{bucketUnits, bucketLocks, bucketVersions, bucketBlobs, bucketBlobRefs} {
			if n := bucketLen(t, db, b); n != 0 {
				t.Errorf("bucket %s has %d keys after forced delete", b, n)
			}
		}
		// The lock went with the unit: a new unit of that ID is unlocked.
		mustCreate(t, db, "a")
		if l, err := db.GetLock("a"); err != nil || l != nil {
			t.Fatalf("GetLock of re-created unit = %+v, %v", l, err)
		}
	})
}
