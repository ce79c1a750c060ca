package store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentaco/opentaco/store"
)

// auditAll returns the whole audit trail, newest first.
func auditAll(t testing.TB, db *store.DB) []*store.AuditRecord {
	t.Helper()
	recs, err := db.Audit(store.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// auditStep is one call through an audited handle and the records it must
// leave (none for reads, refused changes and no-op changes).
type auditStep struct {
	name string
	do   func(db *store.DB) error
	code string        // the error code the call must return ("" = success)
	want []auditRecord // records the step appends, oldest first
}

type auditRecord struct {
	action, unit, detail string // detail: a substring the record must hold
}

func TestStore_Audit_Changes(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	var pendingID, signedID string
	var tokenID string
	steps := []auditStep{
		{name: "create", do: func(d *store.DB) error { _, err := d.CreateUnit("a/b"); return err },
			want: []auditRecord{{store.AuditCreate, "a/b", ""}}},
		{name: "create exists", code: store.ECONFLICT, do: func(d *store.DB) error { _, err := d.CreateUnit("a/b"); return err }},
		{name: "write", do: func(d *store.DB) error {
			_, err := d.WriteState("a/b", tfState(1, "L"), store.WriteOptions{Who: "alice", Source: store.SourceAPI})
			return err
		}, want: []auditRecord{{store.AuditWrite, "a/b", "version 1 via api"}}},
		{name: "write creates", do: func(d *store.DB) error {
			_, err := d.WriteState("a/c", tfState(1, "L"), store.WriteOptions{Who: "alice", Source: store.SourceBackend, Create: true})
			return err
		}, want: []auditRecord{{store.AuditWrite, "a/c", "version 1 via backend"}}},
		{name: "write unknown", code: store.ENOTFOUND, do: func(d *store.DB) error {
			_, err := d.WriteState("a/nope", tfState(1, "L"), store.WriteOptions{Source: store.SourceAPI})
			return err
		}},
		{name: "write invalid", code: store.EINVALID, do: func(d *store.DB) error {
			_, err := d.WriteState("a/b", []byte("[]"), store.WriteOptions{Source: store.SourceAPI})
			return err
		}},
		{name: "lock", do: func(d *store.DB) error { _, err := d.LockUnit("a/b", store.Lock{ID: "L1"}, "alice", false); return err },
			want: []auditRecord{{store.AuditLock, "a/b", "L1"}}},
		{name: "lock again same ID", do: func(d *store.DB) error { _, err := d.LockUnit("a/b", store.Lock{ID: "L1"}, "alice", false); return err }},
		{name: "lock held", code: store.ELOCKED, do: func(d *store.DB) error { _, err := d.LockUnit("a/b", store.Lock{ID: "L9"}, "bob", false); return err }},
		{name: "write locked", code: store.ELOCKED, do: func(d *store.DB) error {
			_, err := d.WriteState("a/b", tfState(2, "L"), store.WriteOptions{Source: store.SourceAPI})
			return err
		}},
		{name: "delete locked", code: store.ELOCKED, do: func(d *store.DB) error { return d.DeleteUnit("a/b", false) }},
		{name: "write with lock", do: func(d *store.DB) error {
			_, err := d.WriteState("a/b", tfState(2, "L"), store.WriteOptions{LockID: "L1", Source: store.SourceAPI})
			return err
		}, want: []auditRecord{{store.AuditWrite, "a/b", "version 2"}}},
		{name: "unlock wrong ID", code: store.ELOCKED, do: func(d *store.DB) error { _, err := d.UnlockUnit("a/b", "L9", false); return err }},
		{name: "unlock", do: func(d *store.DB) error { _, err := d.UnlockUnit("a/b", "L1", false); return err },
			want: []auditRecord{{store.AuditUnlock, "a/b", "L1"}}},
		{name: "unlock unlocked", do: func(d *store.DB) error { _, err := d.UnlockUnit("a/b", "L1", false); return err }},
		{name: "lock for force", do: func(d *store.DB) error {
			_, err := d.LockUnit("a/b", store.Lock{ID: "L2", Who: "bob"}, "bob", false)
			return err
		},
			want: []auditRecord{{store.AuditLock, "a/b", "L2"}}},
		{name: "force unlock", do: func(d *store.DB) error { _, err := d.UnlockUnit("a/b", "", true); return err },
			want: []auditRecord{{store.AuditForceUnlock, "a/b", "L2 held by bob"}}},
		{name: "restore", do: func(d *store.DB) error {
			_, err := d.Restore("a/b", store.RestoreRequest{Version: 1, Who: "alice"})
			return err
		}, want: []auditRecord{{store.AuditRestore, "a/b", "version 1 restored as 3"}}},
		{name: "restore unknown version", code: store.ENOTFOUND, do: func(d *store.DB) error {
			_, err := d.Restore("a/b", store.RestoreRequest{Version: 99})
			return err
		}},
		{name: "labels", do: func(d *store.DB) error { _, err := d.UpdateLabels("a/b", map[string]string{"k": "v"}, nil); return err },
			want: []auditRecord{{store.AuditLabels, "a/b", ""}}},
		{name: "declare", do: func(d *store.DB) error {
			p, _, err := d.CreatePending(declare("a/c", 2, tfState(2, "L")))
			if err == nil {
				pendingID = p.ID
			}
			return err
		}},
		{name: "finalize", do: func(d *store.DB) error { _, err := d.FinalizePending(pendingID, tfState(2, "L")); return err },
			want: []auditRecord{{store.AuditWrite, "a/c", "version 2 via tfe"}}},
		{name: "finalize again", do: func(d *store.DB) error { _, err := d.FinalizePending(pendingID, tfState(2, "L")); return err }},
		{name: "finalize bad md5", code: store.EINVALID, do: func(d *store.DB) error {
			p, _, err := d.CreatePending(declare("a/c", 3, tfState(3, "L")))
			if err != nil {
				return err
			}
			signedID = p.ID
			_, err = d.FinalizePending(p.ID, tfState(4, "L"))
			return err
		}},
		{name: "token create", do: func(d *store.DB) error {
			tok, err := d.CreateAPIToken(store.APIToken{ID: "at-1", Name: "ci", Owner: "carol", Hash: "h1"})
			if err == nil {
				tokenID = tok.ID
			}
			return err
		}, want: []auditRecord{{store.AuditTokenCreate, "", "at-1"}}},
		{name: "token create duplicate", code: store.ECONFLICT, do: func(d *store.DB) error {
			_, err := d.CreateAPIToken(store.APIToken{ID: "at-1", Name: "ci", Owner: "carol", Hash: "h2"})
			return err
		}},
		{name: "token revoke", do: func(d *store.DB) error { return d.RevokeAPIToken(tokenID) },
			want: []auditRecord{{store.AuditTokenRevoke, "", "at-1"}}},
		{name: "token revoke unknown", code: store.ENOTFOUND, do: func(d *store.DB) error { return d.RevokeAPIToken("at-nope") }},
		{name: "put permission", do: func(d *store.DB) error {
			_, err := d.PutPermission(store.Permission{Name: "p", Rules: []store.Rule{rbacAllow([]string{"a/*"}, store.ActionRead)}})
			return err
		}, want: []auditRecord{{store.AuditRBAC, "", "permission p"}}},
		{name: "put permission invalid", code: store.EINVALID, do: func(d *store.DB) error {
			_, err := d.PutPermission(store.Permission{Name: "q", Rules: []store.Rule{{Effect: "maybe"}}})
			return err
		}},
		{name: "put role", do: func(d *store.DB) error {
			_, err := d.PutRole(store.Role{Name: "r", Permissions: []string{"p"}})
			return err
		},
			want: []auditRecord{{store.AuditRBAC, "", "role r"}}},
		{name: "put built-in role", code: store.ECONFLICT, do: func(d *store.DB) error { _, err := d.PutRole(store.Role{Name: "admin"}); return err }},
		{name: "assign", do: func(d *store.DB) error { _, err := d.Assign(store.Assignment{Subject: "dave", Role: "r"}); return err },
			want: []auditRecord{{store.AuditRBAC, "", "assign role r to dave"}}},
		{name: "assign again", do: func(d *store.DB) error { _, err := d.Assign(store.Assignment{Subject: "dave", Role: "r"}); return err }},
		{name: "delete used role", code: store.ECONFLICT, do: func(d *store.DB) error { return d.DeleteRole("r", false) }},
		{name: "delete used permission", code: store.ECONFLICT, do: func(d *store.DB) error { return d.DeletePermission("p", false) }},
		{name: "unassign unknown", code: store.ENOTFOUND, do: func(d *store.DB) error { return d.Unassign("as-nope") }},
		{name: "delete role force", do: func(d *store.DB) error { return d.DeleteRole("r", true) },
			want: []auditRecord{{store.AuditRBAC, "", "delete role r"}}},
		{name: "delete permission", do: func(d *store.DB) error { return d.DeletePermission("p", false) },
			want: []auditRecord{{store.AuditRBAC, "", "delete permission p"}}},
		{name: "delete unknown", code: store.ENOTFOUND, do: func(d *store.DB) error { return d.DeleteUnit("a/nope", false) }},
		{name: "lock to delete", do: func(d *store.DB) error { _, err := d.LockUnit("a/b", store.Lock{ID: "L3"}, "alice", false); return err },
			want: []auditRecord{{store.AuditLock, "a/b", "L3"}}},
		{name: "delete force", do: func(d *store.DB) error { return d.DeleteUnit("a/b", true) },
			want: []auditRecord{{store.AuditDelete, "a/b", "force"}}},
	}
	for i, st := range steps {
		reqID := fmt.Sprintf("req-%02d", i)
		h := db.As(store.Actor{Principal: "alice", RequestID: reqID})
		before := len(auditAll(t, db))
		err := st.do(h)
		if got := store.ErrorCode(err); got != st.code {
			t.Fatalf("step %s: error %v, want code %q", st.name, err, st.code)
		}
		recs := auditAll(t, db)
		if len(recs)-before != len(st.want) {
			t.Errorf("step %s: %d new records, want %d: %+v", st.name, len(recs)-before, len(st.want), recs[:len(recs)-before])
			continue
		}
		for j, w := range st.want {
			r := recs[len(st.want)-1-j] // newest first
			if r.Action != w.action || r.Unit != w.unit || !strings.Contains(r.Detail, w.detail) ||
				r.Principal != "alice" || r.RequestID != reqID || r.Result != "ok" || r.Time.IsZero() || r.Seq == 0 {
				t.Errorf("step %s: record %+v, want action %s unit %q detail ~%q by alice with request %s, result ok",
					st.name, r, w.action, w.unit, w.detail, reqID)
			}
		}
	}

	// A finalize through the plain handle (a signed upload carries no
	// bearer) is audited as the principal who declared the version.
	if _, err := db.FinalizePending(signedID, tfState(3, "L")); err != nil {
		t.Fatal(err)
	}
	if r := auditAll(t, db)[0]; r.Principal != "alice" || r.Action != store.AuditWrite || r.Unit != "a/c" || r.RequestID != "" {
		t.Errorf("signed finalize record = %+v, want a write of a/c by the declarer alice", r)
	}

	// Changes through the plain handle are made by "system".
	if _, err := db.CreateUnit("sys/x"); err != nil {
		t.Fatal(err)
	}
	if r := auditAll(t, db)[0]; r.Principal != "system" || r.Unit != "sys/x" || r.RequestID != "" {
		t.Errorf("unattributed record = %+v, want principal system", r)
	}

	// Seq grows by one per record; times never go back.
	recs := auditAll(t, db)
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq != recs[i-1].Seq-1 {
			t.Errorf("record %d has seq %d after %d", i, recs[i].Seq, recs[i-1].Seq)
		}
		if recs[i].Time.After(recs[i-1].Time) {
			t.Errorf("record seq %d at %s is newer than seq %d at %s", recs[i].Seq, recs[i].Time, recs[i-1].Seq, recs[i-1].Time)
		}
	}
}

// TestStore_Audit_SameTransaction checks that a write and its record share
// the transaction's time, and that reads leave no records.
func TestStore_Audit_SameTransaction(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	h := db.As(store.Actor{Principal: "alice", RequestID: "r1"})
	mustCreate(t, h, "x/y")
	v := mustWrite(t, h, "x/y", tfState(1, "L"), store.WriteOptions{Source: store.SourceAPI})
	if r := auditAll(t, db)[0]; !r.Time.Equal(v.Timestamp) {
		t.Errorf("record time %s, version timestamp %s: not one transaction", r.Time, v.Timestamp)
	}
	tok, err := h.CreateAPIToken(store.APIToken{ID: "at-x", Name: "n", Owner: "alice", Hash: "hx"})
	if err != nil {
		t.Fatal(err)
	}
	if r := auditAll(t, db)[0]; !r.Time.Equal(tok.Created) {
		t.Errorf("token record time %s, token created %s", r.Time, tok.Created)
	}
	a, err := h.Assign(store.Assignment{Subject: "s", Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	if r := auditAll(t, db)[0]; !r.Time.Equal(a.Created) {
		t.Errorf("assign record time %s, assignment created %s", r.Time, a.Created)
	}

	before := len(auditAll(t, db))
	reads := map[string]func() error{
		"GetUnit":       func() error { _, err := h.GetUnit("x/y"); return err },
		"ListUnits":     func() error { _, err := h.ListUnits(""); return err },
		"ReadState":     func() error { _, _, err := h.ReadState("x/y", 0); return err },
		"ListVersions":  func() error { _, err := h.ListVersions("x/y"); return err },
		"GetLock":       func() error { _, err := h.GetLock("x/y"); return err },
		"Outputs":       func() error { _, _, err := h.Outputs("x/y", 0); return err },
		"LoadRBAC":      func() error { _, err := h.LoadRBAC(); return err },
		"ListAPITokens": func() error { _, err := h.ListAPITokens(""); return err },
		"GetAPIToken":   func() error { _, err := h.GetAPIToken("at-x"); return err },
		"TokenUse":      func() error { _, err := h.APITokenByHash("hx"); return err },
		"Audit":         func() error { _, err := h.Audit(store.AuditQuery{}); return err },
	}
	for name, read := range reads {
		if err := read(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if after := len(auditAll(t, db)); after != before {
		t.Errorf("reads appended %d audit records", after-before)
	}
}

// TestStore_Audit_Concurrent checks that writes grouped into one bbolt
// transaction are each audited as their own caller.
func TestStore_Audit_Concurrent(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	const n = 40
	for i := range 4 {
		mustCreate(t, db, fmt.Sprintf("c/u%d", i))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := db.As(store.Actor{Principal: fmt.Sprintf("p%d", i), RequestID: fmt.Sprintf("r%d", i)})
			id := fmt.Sprintf("c/u%d", i%4)
			if i%2 == 0 {
				_, err := h.WriteState(id, tfState(int64(i+1), "L"), store.WriteOptions{Who: fmt.Sprintf("p%d", i), Source: store.SourceAPI})
				if err != nil {
					t.Error(err)
				}
			} else if _, err := h.LockUnit(fmt.Sprintf("c/l%d", i), store.Lock{ID: fmt.Sprintf("L%d", i)}, "x", true); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range auditAll(t, db) {
		if r.Principal == "system" {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(r.Principal, "p%d", &i); err != nil || r.RequestID != fmt.Sprintf("r%d", i) {
			t.Errorf("record %+v: principal and request ID of different callers", r)
			continue
		}
		want := store.AuditWrite
		if i%2 == 1 {
			want = store.AuditLock
		}
		if r.Action != want {
			t.Errorf("record %+v: action %s, want %s", r, r.Action, want)
		}
		if seen[r.RequestID] {
			t.Errorf("request %s audited twice", r.RequestID)
		}
		seen[r.RequestID] = true
	}
	if len(seen) != n {
		t.Errorf("%d callers audited, want %d", len(seen), n)
	}
}

func TestStore_AuditQuery(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	// 120 changes: alice on q/a, bob on q/b, alternating; one second apart
	// (the test clock ticks once per transaction).
	for i := range 120 {
		who, id := "alice", "q/a"
		if i%2 == 1 {
			who, id = "bob", "q/b"
		}
		if i < 2 {
			mustCreate(t, db.As(store.Actor{Principal: who}), id)
			continue
		}
		if _, err := db.As(store.Actor{Principal: who}).UpdateLabels(id, map[string]string{"i": fmt.Sprint(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	all := auditAll(t, db)
	if len(all) != 120 {
		t.Fatalf("%d records, want 120", len(all))
	}
	query := func(q store.AuditQuery) []*store.AuditRecord {
		t.Helper()
		recs, err := db.Audit(q)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}

	t.Run("DefaultLimit", func(t *testing.T) {
		recs := query(store.AuditQuery{})
		if len(recs) != 100 || recs[0].Seq != all[0].Seq {
			t.Errorf("default query: %d records from seq %d, want the newest 100", len(recs), recs[0].Seq)
		}
	})
	t.Run("Limit", func(t *testing.T) {
		recs := query(store.AuditQuery{Limit: 7})
		if len(recs) != 7 {
			t.Fatalf("%d records, want 7", len(recs))
		}
		for i := range recs {
			if recs[i].Seq != all[i].Seq {
				t.Errorf("record %d is seq %d, want %d (newest first)", i, recs[i].Seq, all[i].Seq)
			}
		}
		if n := len(query(store.AuditQuery{Limit: 1 << 20})); n != 120 {
			t.Errorf("huge limit: %d records, want all 120", n)
		}
	})
	t.Run("Principal", func(t *testing.T) {
		recs := query(store.AuditQuery{Principal: "bob", Limit: 1000})
		if len(recs) != 60 {
			t.Errorf("%d of bob's records, want 60", len(recs))
		}
		for _, r := range recs {
			if r.Principal != "bob" || r.Unit != "q/b" {
				t.Errorf("principal filter let through %+v", r)
			}
		}
		if recs := query(store.AuditQuery{Principal: "bo"}); len(recs) != 0 {
			t.Errorf("principal filter is not exact: %d records for %q", len(recs), "bo")
		}
	})
	t.Run("Unit", func(t *testing.T) {
		recs := query(store.AuditQuery{Unit: "q/a", Limit: 5})
		if len(recs) != 5 {
			t.Errorf("%d records, want 5", len(recs))
		}
		for _, r := range recs {
			if r.Unit != "q/a" {
				t.Errorf("unit filter let through %+v", r)
			}
		}
		if recs := query(store.AuditQuery{Unit: "q"}); len(recs) != 0 {
			t.Errorf("unit filter is not exact: %d records for q", len(recs))
		}
	})
	t.Run("Since", func(t *testing.T) {
		since := all[9].Time // the 10 newest records are at or after it
		recs := query(store.AuditQuery{Since: since, Limit: 1000})
		if len(recs) != 10 {
			t.Errorf("since %s: %d records, want 10", since, len(recs))
		}
		for _, r := range recs {
			if r.Time.Before(since) {
				t.Errorf("since let through %+v", r)
			}
		}
		recs = query(store.AuditQuery{Since: since, Principal: "alice", Limit: 1000})
		if len(recs) != 5 {
			t.Errorf("since + principal: %d records, want 5", len(recs))
		}
		if recs := query(store.AuditQuery{Since: all[0].Time.Add(time.Second)}); len(recs) != 0 {
			t.Errorf("since the future: %d records", len(recs))
		}
	})
}
