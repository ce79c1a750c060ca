package store_test

import (
	"maps"
	"testing"

	"github.com/opentaco/opentaco/store"
)

func mustLabels(t testing.TB, db *store.DB, id string, set map[string]string, remove []string) *store.Unit {
	t.Helper()
	u, err := db.UpdateLabels(id, set, remove)
	if err != nil {
		t.Fatalf("UpdateLabels(%q, %v, %v): %v", id, set, remove, err)
	}
	return u
}

func TestStore_UpdateLabels(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		u := mustLabels(t, db, "u", map[string]string{"env": "prod", "team": "infra"}, nil)
		want := map[string]string{"env": "prod", "team": "infra"}
		if u.ID != "u" || !maps.Equal(u.Labels, want) {
			t.Fatalf("UpdateLabels = %+v; want labels %v", u, want)
		}
		if got := mustGet(t, db, "u").Labels; !maps.Equal(got, want) {
			t.Fatalf("GetUnit labels = %v; want %v", got, want)
		}
		// Overwrite one, add one, remove one and one that is not there.
		u = mustLabels(t, db, "u", map[string]string{"env": "staging", "tier": ""}, []string{"team", "nope"})
		want = map[string]string{"env": "staging", "tier": ""}
		if !maps.Equal(u.Labels, want) {
			t.Fatalf("UpdateLabels = %v; want %v", u.Labels, want)
		}
		if got := mustGet(t, db, "u").Labels; !maps.Equal(got, want) {
			t.Fatalf("GetUnit labels = %v; want %v", got, want)
		}
		// Nothing to do is fine.
		if u = mustLabels(t, db, "u", nil, nil); !maps.Equal(u.Labels, want) {
			t.Fatalf("empty UpdateLabels = %v; want %v", u.Labels, want)
		}
		// Removing them all leaves none.
		mustLabels(t, db, "u", nil, []string{"env", "tier"})
		if got := mustGet(t, db, "u").Labels; len(got) != 0 {
			t.Fatalf("labels after removing all = %v", got)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, err := db.UpdateLabels("ghost", map[string]string{"a": "b"}, nil)
		wantCode(t, err, store.ENOTFOUND)
		if _, err := db.GetUnit("ghost"); store.ErrorCode(err) != store.ENOTFOUND {
			t.Fatalf("UpdateLabels created the unit: GetUnit err = %v", err)
		}
	})
	t.Run("Kept", func(t *testing.T) {
		// Labels survive state writes, locks, restores and TFE uploads, and
		// show in GetUnit and ListUnits.
		db := mustOpen(t)
		mustCreate(t, db, "a/one")
		mustCreate(t, db, "a/two")
		want := map[string]string{"env": "prod"}
		mustLabels(t, db, "a/one", want, nil)
		mustWrite(t, db, "a/one", tfState(1, "L"), store.WriteOptions{})
		mustLock(t, db, "a/one", store.Lock{ID: "L"}, "bob")
		mustWrite(t, db, "a/one", tfState(2, "L"), store.WriteOptions{LockID: "L"})
		if _, err := db.Restore("a/one", store.RestoreRequest{Version: 1, LockID: "L"}); err != nil {
			t.Fatal(err)
		}
		decl := declare("a/one", 4, tfState(4, "L"))
		decl.LockID = "L"
		mustFinalize(t, db, mustPending(t, db, decl).ID, tfState(4, "L"))
		if _, err := db.UnlockUnit("a/one", "L", false); err != nil {
			t.Fatal(err)
		}
		u := mustGet(t, db, "a/one")
		if !maps.Equal(u.Labels, want) || u.CurrentVersion != 4 {
			t.Fatalf("GetUnit = %+v; want labels %v and version 4", u, want)
		}
		us, err := db.ListUnits("a/")
		if err != nil {
			t.Fatal(err)
		} else if len(us) != 2 || !maps.Equal(us[0].Labels, want) || len(us[1].Labels) != 0 {
			t.Fatalf("ListUnits labels = %v, %v; want %v and none", us[0].Labels, us[1].Labels, want)
		}
	})
	t.Run("LockedUnit", func(t *testing.T) {
		// Labels are metadata: a lock does not stop them, and the returned
		// unit shows its lock.
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustLock(t, db, "u", store.Lock{ID: "L"}, "bob")
		u := mustLabels(t, db, "u", map[string]string{"a": "b"}, nil)
		if !u.Locked || u.Lock == nil || u.Lock.ID != "L" || u.Labels["a"] != "b" {
			t.Fatalf("UpdateLabels on a locked unit = %+v", u)
		}
	})
}
