package store_test

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opentaco/opentaco/store"
)

// manualClock is a clock that stands still until moved. It is safe for
// concurrent use.
type manualClock struct{ d atomic.Int64 }

func (c *manualClock) Now() time.Time      { return epoch.Add(time.Duration(c.d.Load())) }
func (c *manualClock) Add(d time.Duration) { c.d.Add(int64(d)) }

// declaredOuts is a json-state-outputs document as Terraform sends it.
const declaredOuts = `{"region":{"value":"eu-west-1","type":"string"},"token":{"value":"s3cr3t","type":"string","sensitive":true}}`

var pendingIDRE = regexp.MustCompile(`^sv-[0-9a-f]{24}$`)

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// declare returns the declaration of state as serial of unit, the way the
// Terraform Cloud API builds it.
func declare(unit string, serial int64, state []byte) store.PendingVersion {
	return store.PendingVersion{ID: "sv-", UnitID: unit, Serial: serial, MD5: md5Hex(state), Lineage: "L", Who: "alice"}
}

func mustPending(t testing.TB, db *store.DB, p store.PendingVersion) *store.PendingVersion {
	t.Helper()
	got, cur, err := db.CreatePending(p)
	if err != nil {
		t.Fatalf("CreatePending(%+v): %v", p, err)
	} else if got == nil || cur != nil {
		t.Fatalf("CreatePending(%+v) = %+v, %+v; want a pending record and no current version", p, got, cur)
	}
	return got
}

func mustFinalize(t testing.TB, db *store.DB, id string, state []byte) *store.Version {
	t.Helper()
	v, err := db.FinalizePending(id, state)
	if err != nil {
		t.Fatalf("FinalizePending(%q): %v", id, err)
	}
	return v
}

func mustGetPending(t testing.TB, db *store.DB, id string) *store.PendingVersion {
	t.Helper()
	p, err := db.GetPending(id)
	if err != nil {
		t.Fatalf("GetPending(%q): %v", id, err)
	}
	return p
}

// pendingIDs returns the keys of the raw "pending" bucket, sorted.
func pendingIDs(t testing.TB, db *store.DB) []string {
	t.Helper()
	var out []string
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// outputVersions returns the version numbers with declared outputs of unit
// id in the raw "outputs" bucket; nil when the unit has no sub-bucket.
func outputVersions(t testing.TB, db *store.DB, id string) []int64 {
	t.Helper()
	var out []int64
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutputs).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		out = []int64{}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonString(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStore_Pending(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		clk := &manualClock{}
		db.Now = clk.Now
		mustCreate(t, db, "a/b")
		state := tfState(4, "L")
		decl := declare("a/b", 4, state)
		decl.Outputs = json.RawMessage(declaredOuts)
		clk.Add(time.Minute)
		p := mustPending(t, db, decl)
		if !pendingIDRE.MatchString(p.ID) {
			t.Fatalf("pending ID = %q; want prefix sv- and 24 hex digits", p.ID)
		}
		want := decl
		want.ID, want.Created = p.ID, epoch.Add(time.Minute)
		if got, w := jsonString(t, p), jsonString(t, want); got != w {
			t.Fatalf("CreatePending = %s;\nwant %s", got, w)
		}
		if got, w := jsonString(t, mustGetPending(t, db, p.ID)), jsonString(t, want); got != w {
			t.Fatalf("GetPending = %s;\nwant %s", got, w)
		}
		// Nothing is stored as a version until the bytes arrive.
		if b, v := mustRead(t, db, "a/b", 0); b != nil || v != nil {
			t.Fatalf("ReadState before upload = %q, %+v; want no state", b, v)
		}

		clk.Add(time.Minute)
		v := mustFinalize(t, db, p.ID, state)
		wantV := store.Version{Version: 1, MD5: md5Hex(state), Serial: 4, Lineage: "L", Who: "alice",
			Source: store.SourceTFE, TFEID: p.ID, Current: true, Size: int64(len(state))}
		if v.Version != wantV.Version || v.MD5 != wantV.MD5 || v.Serial != wantV.Serial || v.Lineage != wantV.Lineage ||
			v.Who != wantV.Who || v.Source != wantV.Source || v.TFEID != wantV.TFEID || !v.Current || v.Size != wantV.Size ||
			!v.Timestamp.Equal(epoch.Add(2*time.Minute)) {
			t.Fatalf("FinalizePending = %+v;\nwant %+v at %v", v, wantV, epoch.Add(2*time.Minute))
		}
		got, rv := mustRead(t, db, "a/b", 0)
		if string(got) != string(state) || rv.TFEID != p.ID || rv.Source != store.SourceTFE || rv.MD5 != md5Hex(state) {
			t.Fatalf("ReadState = %q, %+v", got, rv)
		}
		if fp := mustGetPending(t, db, p.ID); fp.Version != 1 {
			t.Fatalf("GetPending after finalize = %+v; want version 1", fp)
		}
		// The declared outputs win over the state's (empty) ones.
		outs, ov, err := db.Outputs("a/b", 0)
		if err != nil {
			t.Fatal(err)
		} else if ov == nil || ov.Version != 1 {
			t.Fatalf("Outputs version = %+v; want 1", ov)
		}
		wantOuts := map[string]store.Output{
			"region": {Value: json.RawMessage(`"eu-west-1"`), Type: json.RawMessage(`"string"`)},
			"token":  {Value: json.RawMessage(`"s3cr3t"`), Type: json.RawMessage(`"string"`), Sensitive: true},
		}
		if g, w := jsonString(t, outs), jsonString(t, wantOuts); g != w {
			t.Fatalf("Outputs = %s; want %s", g, w)
		}
	})
	t.Run("RandomID", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		seen := map[string]bool{}
		for i := range int64(5) {
			p := mustPending(t, db, declare("u", i+1, tfState(i+1, "L")))
			if !pendingIDRE.MatchString(p.ID) || seen[p.ID] {
				t.Fatalf("pending ID %q is malformed or repeated (seen %v)", p.ID, seen)
			}
			seen[p.ID] = true
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, _, err := db.CreatePending(declare("ghost", 1, tfState(1, "L")))
		wantCode(t, err, store.ENOTFOUND)
		if ids := pendingIDs(t, db); len(ids) != 0 {
			t.Fatalf("pending records after refused create: %q", ids)
		}
		if _, err := db.GetUnit("ghost"); store.ErrorCode(err) != store.ENOTFOUND {
			t.Fatalf("CreatePending created the unit: GetUnit err = %v", err)
		}
		_, err = db.GetPending("sv-nope")
		wantCode(t, err, store.ENOTFOUND)
		_, err = db.FinalizePending("sv-nope", tfState(1, "L"))
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("ErrMD5", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustWrite(t, db, "u", tfState(1, "L"), store.WriteOptions{})
		state := tfState(2, "L")
		p := mustPending(t, db, declare("u", 2, state))
		other := tfState(2, "M") // same serial, other bytes
		_, err := db.FinalizePending(p.ID, other)
		wantCode(t, err, store.EINVALID)
		if fp := mustGetPending(t, db, p.ID); fp.Version != 0 {
			t.Fatalf("pending after refused upload = %+v; want still pending", fp)
		}
		if u := mustGet(t, db, "u"); u.CurrentVersion != 1 || u.VersionCount != 1 || u.Serial != 1 {
			t.Fatalf("unit after refused upload = %+v; want version 1 current", u)
		}
		// The right bytes are still accepted.
		if v := mustFinalize(t, db, p.ID, state); v.Version != 2 {
			t.Fatalf("FinalizePending after a refused upload = %+v; want version 2", v)
		}
	})
	t.Run("ErrSerial", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := tfState(6, "L")
		p := mustPending(t, db, declare("u", 5, state)) // MD5 matches, serial does not
		_, err := db.FinalizePending(p.ID, state)
		wantCode(t, err, store.EINVALID)
		if fp := mustGetPending(t, db, p.ID); fp.Version != 0 {
			t.Fatalf("pending after refused upload = %+v; want still pending", fp)
		}
		if u := mustGet(t, db, "u"); u.CurrentVersion != 0 {
			t.Fatalf("unit after refused upload = %+v; want no state", u)
		}
	})
	t.Run("ErrNotObject", func(t *testing.T) {
		for _, in := range []string{`[1,2]`, `not json`, ``, `"x"`, `{"serial":1`} {
			t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
				db := mustOpen(t)
				mustCreate(t, db, "u")
				p := mustPending(t, db, declare("u", 0, []byte(in))) // MD5 matches
				_, err := db.FinalizePending(p.ID, []byte(in))
				wantCode(t, err, store.EINVALID)
				if fp := mustGetPending(t, db, p.ID); fp.Version != 0 {
					t.Fatalf("pending after refused upload = %+v", fp)
				}
				if u := mustGet(t, db, "u"); u.CurrentVersion != 0 {
					t.Fatalf("unit after refused upload = %+v; want no state", u)
				}
			})
		}
	})
	t.Run("FinalizeTwice", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := tfState(1, "L")
		p := mustPending(t, db, declare("u", 1, state))
		v1 := mustFinalize(t, db, p.ID, state)
		v2 := mustFinalize(t, db, p.ID, state)
		if v1.Version != 1 || v2.Version != 1 || v2.SHA256 != v1.SHA256 || v2.TFEID != p.ID {
			t.Fatalf("FinalizePending twice = %+v, %+v; want version 1 both times", v1, v2)
		}
		if vs := mustList(t, db, "u"); len(vs) != 1 {
			t.Fatalf("versions after two uploads = %v; want [1]", versionNumbers(vs))
		}
		// Other bytes after the fact are still checked against the declaration.
		_, err := db.FinalizePending(p.ID, tfState(1, "M"))
		wantCode(t, err, store.EINVALID)
	})
	t.Run("FinalizeConcurrent", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := tfState(1, "L")
		p := mustPending(t, db, declare("u", 1, state))
		var wg sync.WaitGroup
		got := make([]int64, 8)
		errs := make([]error, 8)
		for i := range got {
			wg.Go(func() {
				v, err := db.FinalizePending(p.ID, state)
				if errs[i] = err; err == nil {
					got[i] = v.Version
				}
			})
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil || got[i] != 1 {
				t.Fatalf("concurrent FinalizePending %d = %d, %v; want version 1", i, got[i], errs[i])
			}
		}
		if vs := mustList(t, db, "u"); len(vs) != 1 {
			t.Fatalf("versions after concurrent uploads = %v; want [1]", versionNumbers(vs))
		}
	})
	t.Run("RetriedCreate", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := tfState(1, "L")
		p := mustPending(t, db, declare("u", 1, state))
		v := mustFinalize(t, db, p.ID, state)
		got, cur, err := db.CreatePending(declare("u", 1, state))
		if err != nil {
			t.Fatal(err)
		} else if got != nil || cur == nil || cur.Version != v.Version || !cur.Current || cur.TFEID != p.ID {
			t.Fatalf("retried CreatePending = %+v, %+v; want (nil, version %d)", got, cur, v.Version)
		}
		if ids := pendingIDs(t, db); !slices.Equal(ids, []string{p.ID}) {
			t.Fatalf("pending records = %q; want only %q", ids, p.ID)
		}
		// A state written by another route counts as the current version too.
		state2 := tfState(2, "L")
		v2 := mustWrite(t, db, "u", state2, store.WriteOptions{Source: store.SourceBackend})
		if got, cur, err := db.CreatePending(declare("u", 2, state2)); err != nil || got != nil || cur == nil || cur.Version != v2.Version {
			t.Fatalf("CreatePending of the current backend version = %+v, %+v, %v", got, cur, err)
		}
		// Same serial, other MD5: a new declaration.
		if p2 := mustPending(t, db, declare("u", 2, tfState(2, "M"))); p2.ID == p.ID {
			t.Fatalf("CreatePending with another MD5 reused %q", p.ID)
		}
	})
	t.Run("Identical", func(t *testing.T) {
		for name, outs := range map[string]string{
			"NoOutputs":      "",
			"Outputs":        declaredOuts,
			"IndentedOutput": "{\n  \"region\": {\n    \"value\": \"eu-west-1\",\n    \"type\": \"string\"\n  }\n}\n",
			"HTMLOutput":     `{"html":{"value":"<b>&</b>","type":"string"}}`,
		} {
			t.Run(name, func(t *testing.T) {
				db := mustOpen(t)
				mustCreate(t, db, "u")
				decl := declare("u", 1, tfState(1, "L"))
				if outs != "" {
					decl.Outputs = json.RawMessage(outs)
				}
				p1 := mustPending(t, db, decl)
				p2 := mustPending(t, db, decl)
				if p1.ID != p2.ID || !p1.Created.Equal(p2.Created) {
					t.Fatalf("second identical CreatePending = %+v; want the first one %+v", p2, p1)
				}
				if ids := pendingIDs(t, db); len(ids) != 1 {
					t.Fatalf("pending records = %q; want one", ids)
				}
				// Other declared outputs: another declaration.
				decl.Outputs = json.RawMessage(`{"x":{"value":1,"type":"number"}}`)
				if p3 := mustPending(t, db, decl); p3.ID == p1.ID {
					t.Fatalf("CreatePending with other outputs reused %q", p1.ID)
				}
			})
		}
	})
	t.Run("ErrOutputs", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		decl := declare("u", 1, tfState(1, "L"))
		decl.Outputs = json.RawMessage(`{"x":`)
		_, _, err := db.CreatePending(decl)
		wantCode(t, err, store.EINVALID)
		if ids := pendingIDs(t, db); len(ids) != 0 {
			t.Fatalf("pending records after refused create: %q", ids)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustLock(t, db, "u", store.Lock{ID: "L"}, "bob")
		state := tfState(1, "L")
		for _, lockID := range []string{"", "X"} {
			decl := declare("u", 1, state)
			decl.LockID = lockID
			_, _, err := db.CreatePending(decl)
			wantLocked(t, err, "L")
		}
		if ids := pendingIDs(t, db); len(ids) != 0 {
			t.Fatalf("pending records after refused creates: %q", ids)
		}
		decl := declare("u", 1, state)
		decl.LockID = "L"
		p := mustPending(t, db, decl)
		if p.LockID != "L" {
			t.Fatalf("pending lock ID = %q; want L", p.LockID)
		}
		if v := mustFinalize(t, db, p.ID, state); v.Version != 1 {
			t.Fatalf("FinalizePending under the lock = %+v", v)
		}
	})
	t.Run("ErrLockChanged", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustLock(t, db, "u", store.Lock{ID: "L"}, "bob")
		state := tfState(1, "L")
		decl := declare("u", 1, state)
		decl.LockID = "L"
		p := mustPending(t, db, decl)
		if _, err := db.UnlockUnit("u", "L", false); err != nil {
			t.Fatal(err)
		}
		mustLock(t, db, "u", store.Lock{ID: "M"}, "carol")
		_, err := db.FinalizePending(p.ID, state)
		wantLocked(t, err, "M")
		if fp := mustGetPending(t, db, p.ID); fp.Version != 0 {
			t.Fatalf("pending after refused upload = %+v", fp)
		}
		if u := mustGet(t, db, "u"); u.CurrentVersion != 0 {
			t.Fatalf("unit after refused upload = %+v; want no state", u)
		}
		// Unlocked again, the unit accepts any write.
		if _, err := db.UnlockUnit("u", "M", false); err != nil {
			t.Fatal(err)
		}
		mustFinalize(t, db, p.ID, state)
	})
	t.Run("ErrLockTaken", func(t *testing.T) {
		// Declared on an unlocked unit, uploaded after someone locked it.
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := tfState(1, "L")
		p := mustPending(t, db, declare("u", 1, state))
		mustLock(t, db, "u", store.Lock{ID: "L"}, "bob")
		_, err := db.FinalizePending(p.ID, state)
		wantLocked(t, err, "L")
	})
	t.Run("Expiry", func(t *testing.T) {
		db := mustOpen(t)
		clk := &manualClock{}
		db.Now = clk.Now
		mustCreate(t, db, "u")
		mustCreate(t, db, "v")
		state := tfState(1, "L")
		p := mustPending(t, db, declare("u", 1, state))
		clk.Add(store.PendingTTL)
		mustGetPending(t, db, p.ID) // exactly PendingTTL old: still there
		clk.Add(time.Second)
		_, err := db.GetPending(p.ID)
		wantCode(t, err, store.ENOTFOUND)
		_, err = db.FinalizePending(p.ID, state)
		wantCode(t, err, store.ENOTFOUND)
		if u := mustGet(t, db, "u"); u.CurrentVersion != 0 {
			t.Fatalf("unit after expired upload = %+v; want no state", u)
		}
		if ids := pendingIDs(t, db); !slices.Equal(ids, []string{p.ID}) {
			t.Fatalf("pending records before the next create = %q; want %q", ids, p.ID)
		}
		// The next create, of any unit, deletes it; an identical declaration
		// gets a new record.
		q := mustPending(t, db, declare("v", 1, state))
		if ids := pendingIDs(t, db); !slices.Equal(ids, []string{q.ID}) {
			t.Fatalf("pending records after the next create = %q; want only %q", ids, q.ID)
		}
		if p2 := mustPending(t, db, declare("u", 1, state)); p2.ID == p.ID {
			t.Fatalf("identical CreatePending after expiry reused %q", p.ID)
		}
	})
	t.Run("FinalizedKept", func(t *testing.T) {
		// A finalized record outlives PendingTTL, and is cleaned up later.
		db := mustOpen(t)
		clk := &manualClock{}
		db.Now = clk.Now
		mustCreate(t, db, "u")
		state := tfState(1, "L")
		p := mustPending(t, db, declare("u", 1, state))
		mustFinalize(t, db, p.ID, state)
		clk.Add(store.PendingTTL + time.Minute)
		mustPending(t, db, declare("u", 2, tfState(2, "L")))
		if fp := mustGetPending(t, db, p.ID); fp.Version != 1 {
			t.Fatalf("finalized record after PendingTTL = %+v", fp)
		}
		if v := mustFinalize(t, db, p.ID, state); v.Version != 1 {
			t.Fatalf("repeated upload after PendingTTL = %+v; want version 1", v)
		}
		clk.Add(2 * time.Hour)
		mustPending(t, db, declare("u", 3, tfState(3, "L")))
		_, err := db.GetPending(p.ID)
		wantCode(t, err, store.ENOTFOUND)
		if ids := pendingIDs(t, db); len(ids) != 1 {
			t.Fatalf("pending records = %q; want only the newest", ids)
		}
	})
	t.Run("Discard", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustCreate(t, db, "b")
		unfinished := mustPending(t, db, declare("a", 1, tfState(1, "L")))
		finalized := mustPending(t, db, declare("a", 2, tfState(2, "L")))
		mustFinalize(t, db, finalized.ID, tfState(2, "L"))
		other := mustPending(t, db, declare("b", 1, tfState(1, "L")))
		if err := db.DiscardPending("a"); err != nil {
			t.Fatal(err)
		}
		_, err := db.GetPending(unfinished.ID)
		wantCode(t, err, store.ENOTFOUND)
		if p := mustGetPending(t, db, finalized.ID); p.Version != 1 {
			t.Fatalf("finalized record after discard = %+v", p)
		}
		if p := mustGetPending(t, db, other.ID); p.Version != 0 || p.UnitID != "b" {
			t.Fatalf("other unit's record after discard = %+v", p)
		}
		if err := db.DiscardPending("a"); err != nil {
			t.Fatalf("second DiscardPending: %v", err)
		}
	})
	t.Run("DeleteUnit", func(t *testing.T) {
		db := mustOpen(t)
		for _, id := range []string{"a", "b"} {
			mustCreate(t, db, id)
			decl := declare(id, 1, tfState(1, "L"))
			decl.Outputs = json.RawMessage(declaredOuts)
			mustFinalize(t, db, mustPending(t, db, decl).ID, tfState(1, "L"))
			mustPending(t, db, declare(id, 2, tfState(2, "L")))
		}
		if err := db.DeleteUnit("a", false); err != nil {
			t.Fatal(err)
		}
		if got := outputVersions(t, db, "a"); got != nil {
			t.Fatalf("outputs of deleted unit = %v; want none", got)
		}
		if got := outputVersions(t, db, "b"); !slices.Equal(got, []int64{1}) {
			t.Fatalf("outputs of the other unit = %v; want [1]", got)
		}
		for _, id := range pendingIDs(t, db) {
			if p := mustGetPending(t, db, id); p.UnitID != "b" {
				t.Fatalf("pending record %+v of deleted unit left behind", p)
			}
		}
		if n := len(pendingIDs(t, db)); n != 2 {
			t.Fatalf("pending records left = %d; want the 2 of b", n)
		}
		// A unit created again under the same ID does not inherit the old
		// declared outputs, though its version numbers start over.
		mustCreate(t, db, "a")
		if outs, v, err := db.Outputs("a", 0); err != nil || v != nil || len(outs) != 0 {
			t.Fatalf("Outputs of recreated unit = %v, %+v, %v", outs, v, err)
		}
		mustWrite(t, db, "a", []byte(`{"serial":1,"lineage":"L","outputs":{"x":{"value":1,"type":"number"}}}`), store.WriteOptions{})
		outs, v, err := db.Outputs("a", 1)
		if err != nil || v.Version != 1 || len(outs) != 1 || string(outs["x"].Value) != "1" {
			t.Fatalf("Outputs of recreated unit's version 1 = %v, %+v, %v; want the state's x", outs, v, err)
		}
	})
	t.Run("Retention", func(t *testing.T) {
		db := mustOpenAt(t, t.TempDir()+"/opentaco.db", store.Options{MaxVersions: 2})
		mustCreate(t, db, "u")
		var ids []string
		for i := int64(1); i <= 3; i++ {
			state := tfState(i, "L")
			decl := declare("u", i, state)
			decl.Outputs = fmt.Appendf(nil, `{"n":{"value":%d,"type":"number"}}`, i)
			p := mustPending(t, db, decl)
			ids = append(ids, p.ID)
			if v := mustFinalize(t, db, p.ID, state); v.Version != i {
				t.Fatalf("version = %d; want %d", v.Version, i)
			}
		}
		if got := versionNumbers(mustList(t, db, "u")); !slices.Equal(got, []int64{3, 2}) {
			t.Fatalf("versions = %v; want [3 2]", got)
		}
		if got := outputVersions(t, db, "u"); !slices.Equal(got, []int64{2, 3}) {
			t.Fatalf("declared outputs kept for versions %v; want [2 3]", got)
		}
		_, _, err := db.Outputs("u", 1)
		wantCode(t, err, store.ENOTFOUND)
		if outs, _, err := db.Outputs("u", 2); err != nil || string(outs["n"].Value) != "2" {
			t.Fatalf("Outputs of version 2 = %v, %v", outs, err)
		}
		// The finalized record of the pruned version is still there (the
		// invariant check on cleanup accepts it).
		if p := mustGetPending(t, db, ids[0]); p.Version != 1 {
			t.Fatalf("finalized record of pruned version = %+v", p)
		}
	})
}

func TestStore_LockUnitExclusive(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		l, err := db.LockUnitExclusive("u", store.Lock{ID: "L", Operation: "tfe"}, "alice")
		if err != nil {
			t.Fatal(err)
		} else if l.ID != "L" || l.Who != "alice" || l.Operation != "tfe" || l.Created == "" {
			t.Fatalf("LockUnitExclusive = %+v", l)
		}
		if held, err := db.GetLock("u"); err != nil || held == nil || *held != *l {
			t.Fatalf("GetLock = %+v, %v; want %+v", held, err, l)
		}
	})
	t.Run("DefaultID", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		l, err := db.LockUnitExclusive("u", store.Lock{}, "alice")
		if err != nil {
			t.Fatal(err)
		} else if !uuidRE.MatchString(l.ID) {
			t.Fatalf("lock ID = %q; want a UUID", l.ID)
		}
	})
	t.Run("ErrLockedSameID", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		if _, err := db.LockUnitExclusive("u", store.Lock{ID: "L"}, "alice"); err != nil {
			t.Fatal(err)
		}
		// Unlike LockUnit, taking the same lock again is a conflict.
		_, err := db.LockUnitExclusive("u", store.Lock{ID: "L"}, "alice")
		wantLocked(t, err, "L")
		_, err = db.LockUnitExclusive("u", store.Lock{ID: "X"}, "bob")
		wantLocked(t, err, "L")
		if l := mustLock(t, db, "u", store.Lock{ID: "L"}, "alice"); l.ID != "L" {
			t.Fatalf("LockUnit with the holder's ID = %+v", l)
		}
		// Released, it can be taken again.
		if _, err := db.UnlockUnit("u", "L", false); err != nil {
			t.Fatal(err)
		}
		if _, err := db.LockUnitExclusive("u", store.Lock{ID: "L"}, "alice"); err != nil {
			t.Fatalf("LockUnitExclusive after unlock: %v", err)
		}
	})
	t.Run("ErrLockedByLockUnit", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustLock(t, db, "u", store.Lock{ID: "L"}, "bob")
		_, err := db.LockUnitExclusive("u", store.Lock{ID: "L"}, "bob")
		wantLocked(t, err, "L")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, err := db.LockUnitExclusive("ghost", store.Lock{ID: "L"}, "alice")
		wantCode(t, err, store.ENOTFOUND)
		if _, err := db.GetUnit("ghost"); store.ErrorCode(err) != store.ENOTFOUND {
			t.Fatalf("LockUnitExclusive created the unit: GetUnit err = %v", err)
		}
	})
}
