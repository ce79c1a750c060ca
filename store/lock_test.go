package store_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/opentaco/opentaco/store"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func mustLock(t testing.TB, db *store.DB, id string, l store.Lock, who string) *store.Lock {
	t.Helper()
	got, err := db.LockUnit(id, l, who, false)
	if err != nil {
		t.Fatalf("LockUnit(%q, %+v): %v", id, l, err)
	}
	return got
}

func TestStore_Lock(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		in := store.Lock{ID: "L1", Operation: "OperationTypeApply", Info: "info", Who: "alice@host",
			Version: "1.9.0", Created: "2024-01-01T00:00:00Z", Path: "u"}
		got := mustLock(t, db, "u", in, "principal")
		if *got != in {
			t.Fatalf("LockUnit = %+v; want %+v (all fields kept)", *got, in)
		}
		if l, err := db.GetLock("u"); err != nil || l == nil || *l != in {
			t.Fatalf("GetLock = %+v, %v", l, err)
		}
		if u := mustGet(t, db, "u"); !u.Locked || u.Lock == nil || *u.Lock != in {
			t.Fatalf("unit = %+v, lock %+v", u, u.Lock)
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		got := mustLock(t, db, "u", store.Lock{Operation: "plan"}, "alice")
		if !uuidRE.MatchString(got.ID) {
			t.Fatalf("default lock ID %q is not a v4 UUID", got.ID)
		}
		if got.Who != "alice" || got.Operation != "plan" {
			t.Fatalf("lock = %+v", got)
		}
		created, err := time.Parse(time.RFC3339Nano, got.Created)
		if err != nil {
			t.Fatalf("Created %q: %v", got.Created, err)
		}
		// The clock was read once for the unit's creation and once now.
		if !created.Equal(epoch.Add(time.Second)) {
			t.Fatalf("Created = %v; want %v", created, epoch.Add(time.Second))
		}
		if stored, _ := db.GetLock("u"); *stored != *got {
			t.Fatalf("stored lock %+v; returned %+v", stored, got)
		}
		// Two defaulted IDs differ.
		mustCreate(t, db, "v")
		if other := mustLock(t, db, "v", store.Lock{}, "bob"); other.ID == got.ID || other.Who != "bob" {
			t.Fatalf("second default lock = %+v", other)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		first := mustLock(t, db, "u", store.Lock{ID: "L1", Who: "alice", Operation: "apply"}, "")
		again := mustLock(t, db, "u", store.Lock{ID: "L1", Who: "alice", Operation: "apply"}, "")
		if *again != *first {
			t.Fatalf("second LockUnit = %+v; want the stored %+v", again, first)
		}
		// Same ID with other fields returns the stored lock unchanged.
		other := mustLock(t, db, "u", store.Lock{ID: "L1", Who: "mallory", Info: "x"}, "")
		if *other != *first {
			t.Fatalf("LockUnit with same ID, other fields = %+v; want %+v", other, first)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		held := mustLock(t, db, "u", store.Lock{ID: "L1", Who: "alice"}, "")
		for _, l := range []store.Lock{{ID: "L2"}, {}, {ID: "l1"}} {
			_, err := db.LockUnit("u", l, "bob", false)
			wantLocked(t, err, "L1")
			if got := store.ErrorLock(err); *got != *held {
				t.Fatalf("lock in error = %+v; want %+v", got, held)
			}
		}
		if l, _ := db.GetLock("u"); l.ID != "L1" {
			t.Fatalf("lock changed to %+v", l)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, err := db.LockUnit("nope", store.Lock{ID: "L"}, "me", false)
		wantCode(t, err, store.ENOTFOUND)
		if n := bucketLen(t, db, bucketUnits); n != 0 {
			t.Fatalf("LockUnit without create made %d units", n)
		}
		_, err = db.GetLock("nope")
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("Create", func(t *testing.T) {
		db := mustOpen(t)
		l, err := db.LockUnit("new/unit", store.Lock{ID: "L"}, "me", true)
		if err != nil || l.ID != "L" {
			t.Fatalf("LockUnit with create = %+v, %v", l, err)
		}
		if u := mustGet(t, db, "new/unit"); !u.Locked || u.VersionCount != 0 {
			t.Fatalf("unit = %+v", u)
		}
		for _, id := range []string{"bad__id", "a//b", "/"} {
			_, err = db.LockUnit(id, store.Lock{ID: "L"}, "me", true)
			wantCode(t, err, store.EINVALID)
		}
	})
	t.Run("Unlocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		if l, err := db.GetLock("u"); err != nil || l != nil {
			t.Fatalf("GetLock of unlocked unit = %+v, %v", l, err)
		}
		if u := mustGet(t, db, "u"); u.Locked || u.Lock != nil {
			t.Fatalf("unit = %+v", u)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustLock(t, db, "u", store.Lock{ID: "L"}, "me")
		b, err := json.Marshal(mustGet(t, db, "u"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if string(m["locked"]) != "true" || m["lock"] == nil {
			t.Fatalf("unit JSON = %s", b)
		}
		var lk map[string]any
		if err := json.Unmarshal(m["lock"], &lk); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "operation", "info", "who", "version", "created", "path"} {
			if _, ok := lk[k]; !ok {
				t.Errorf("lock JSON %s lacks %q", m["lock"], k)
			}
		}
		// Unlocked units omit "lock".
		mustCreate(t, db, "v")
		b, _ = json.Marshal(mustGet(t, db, "v"))
		m = nil
		_ = json.Unmarshal(b, &m)
		if _, ok := m["lock"]; ok || string(m["locked"]) != "false" {
			t.Fatalf("unlocked unit JSON = %s", b)
		}
	})
}

func TestStore_Unlock(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		held := mustLock(t, db, "u", store.Lock{ID: "L1", Who: "alice"}, "")
		got, err := db.UnlockUnit("u", "L1", false)
		if err != nil || got == nil || *got != *held {
			t.Fatalf("UnlockUnit = %+v, %v; want %+v", got, err, held)
		}
		if l, err := db.GetLock("u"); err != nil || l != nil {
			t.Fatalf("lock after unlock = %+v, %v", l, err)
		}
		// Another holder can take it now.
		mustLock(t, db, "u", store.Lock{ID: "L2"}, "bob")
	})
	t.Run("ErrLocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		held := mustLock(t, db, "u", store.Lock{ID: "L1", Who: "alice"}, "")
		for _, id := range []string{"L2", "", "l1"} {
			_, err := db.UnlockUnit("u", id, false)
			wantLocked(t, err, "L1")
			if got := store.ErrorLock(err); *got != *held {
				t.Fatalf("lock in error = %+v; want %+v", got, held)
			}
		}
		if l, _ := db.GetLock("u"); l == nil || l.ID != "L1" {
			t.Fatalf("lock after refused unlock = %+v", l)
		}
	})
	t.Run("NotLocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		for _, force := range []bool{false, true} {
			got, err := db.UnlockUnit("u", "whatever", force)
			if err != nil || got != nil {
				t.Fatalf("UnlockUnit of unlocked unit (force=%v) = %+v, %v; want nil, nil", force, got, err)
			}
		}
	})
	t.Run("Force", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		held := mustLock(t, db, "u", store.Lock{ID: "L1", Who: "alice"}, "")
		got, err := db.UnlockUnit("u", "", true)
		if err != nil || got == nil || *got != *held {
			t.Fatalf("forced UnlockUnit = %+v, %v; want %+v", got, err, held)
		}
		if l, _ := db.GetLock("u"); l != nil {
			t.Fatalf("lock after forced unlock = %+v", l)
		}
		// A write without a lock ID is accepted again.
		mustWrite(t, db, "u", tfState(1, "L"), store.WriteOptions{})
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, err := db.UnlockUnit("nope", "L", false)
		wantCode(t, err, store.ENOTFOUND)
		_, err = db.UnlockUnit("nope", "", true)
		wantCode(t, err, store.ENOTFOUND)
		if n := bucketLen(t, db, bucketUnits); n != 0 {
			t.Fatalf("UnlockUnit made %d units", n)
		}
	})
}

func TestParseLock(t *testing.T) {
	t.Run("TerraformKeys", func(t *testing.T) {
		body := `{"ID":"4a2c3d1e-0000-4000-8000-000000000001","Operation":"OperationTypeApply","Info":"some info",` +
			`"Who":"alice@laptop","Version":"1.9.5","Created":"2024-05-06T07:08:09.123456789Z","Path":"myapp/prod"}`
		l, err := store.ParseLock([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		want := store.Lock{ID: "4a2c3d1e-0000-4000-8000-000000000001", Operation: "OperationTypeApply", Info: "some info",
			Who: "alice@laptop", Version: "1.9.5", Created: "2024-05-06T07:08:09.123456789Z", Path: "myapp/prod"}
		if *l != want {
			t.Fatalf("ParseLock = %+v; want %+v", *l, want)
		}
		// And back in Terraform's spelling, unchanged.
		out, err := json.Marshal(l.Terraform())
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != body {
			t.Fatalf("Terraform() JSON = %s; want %s", out, body)
		}
	})
	t.Run("LowerCase", func(t *testing.T) {
		l, err := store.ParseLock([]byte(`{"id":"a","operation":"b","info":"c","who":"d","version":"e","created":"f","path":"g"}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := (store.Lock{ID: "a", Operation: "b", Info: "c", Who: "d", Version: "e", Created: "f", Path: "g"}); *l != want {
			t.Fatalf("ParseLock = %+v; want %+v", *l, want)
		}
		b, _ := json.Marshal(l)
		if string(b) != `{"id":"a","operation":"b","info":"c","who":"d","version":"e","created":"f","path":"g"}` {
			t.Fatalf("Lock JSON = %s", b)
		}
	})
	t.Run("Subset", func(t *testing.T) {
		l, err := store.ParseLock([]byte(`{"wHo":"x","unknown":1}`))
		if err != nil || *l != (store.Lock{Who: "x"}) {
			t.Fatalf("ParseLock = %+v, %v", l, err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		for _, body := range []string{"", "  \n", "{}"} {
			l, err := store.ParseLock([]byte(body))
			if err != nil || l == nil || *l != (store.Lock{}) {
				t.Fatalf("ParseLock(%q) = %+v, %v; want empty lock", body, l, err)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, body := range []string{"[]", `"x"`, "42", "{", `{"ID":5}`, "not json"} {
			_, err := store.ParseLock([]byte(body))
			wantCode(t, err, store.EINVALID)
		}
	})
}

func TestStore_Lock_Concurrent(t *testing.T) {
	db := mustOpen(t)
	mustCreate(t, db, "u")
	const n = 32
	var wg sync.WaitGroup
	got := make([]*store.Lock, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = db.LockUnit("u", store.Lock{ID: fmt.Sprintf("lock-%d", i)}, fmt.Sprint("who-", i), false)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("both lock-%d and lock-%d won", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine got the lock")
	}
	want := got[winner]
	if want.ID != fmt.Sprintf("lock-%d", winner) || want.Who != fmt.Sprint("who-", winner) {
		t.Fatalf("winner's lock = %+v", want)
	}
	for i, err := range errs {
		if i == winner {
			continue
		}
		wantLocked(t, err, want.ID)
		if l := store.ErrorLock(err); *l != *want {
			t.Fatalf("loser %d sees lock %+v; want %+v", i, l, want)
		}
	}
	if l, _ := db.GetLock("u"); *l != *want {
		t.Fatalf("stored lock = %+v; want %+v", l, want)
	}
}
