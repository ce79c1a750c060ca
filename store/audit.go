package store

import (
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketAudit = []byte("audit") // uint64 BE sequence → AuditRecord

// Audited actions (besides the RBAC actions' names).
const (
	AuditCreate      = "unit.create"
	AuditDelete      = "unit.delete"
	AuditWrite       = "unit.write"
	AuditRestore     = "unit.restore"
	AuditLock        = "unit.lock"
	AuditUnlock      = "unit.unlock"
	AuditForceUnlock = "unit.force_unlock"
	AuditLabels      = "unit.labels"
	AuditTokenCreate = "token.create"
	AuditTokenRevoke = "token.revoke"
	AuditRBAC        = "rbac.change"
)

// Actor is who a change is made by, for the audit trail.
type Actor struct {
	Principal string
	RequestID string
}

// AuditRecord is one change in the audit trail.
type AuditRecord struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	Action    string    `json:"action"`
	Unit      string    `json:"unit,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Result    string    `json:"result"`
}

// As returns a handle on the same database whose changes are audited as
// made by a. Handles are cheap; make one per request.
func (db *DB) As(a Actor) *DB {
	c := *db
	c.actor = &a
	return &c
}

// audit appends a record of a change to the trail, inside the change's own
// transaction, so the record exists exactly when the change does.
func (db *DB) audit(tx *bolt.Tx, now time.Time, action, unit, detail string) error {
	a := Actor{Principal: "system"}
	if db.actor != nil {
		a = *db.actor
	}
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	rec := AuditRecord{Seq: seq, Time: now, Principal: a.Principal, Action: action, Unit: unit, Detail: detail, RequestID: a.RequestID, Result: "ok"}
	return putJSON(b, u64(seq), rec)
}

// AuditQuery filters the audit trail; zero fields match everything.
type AuditQuery struct {
	Unit      string
	Principal string
	Since     time.Time
	Limit     int // newest first; default 100, at most 10,000
}

// Audit returns the records matching q, newest first.
func (db *DB) Audit(q AuditQuery) ([]*AuditRecord, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 10000)
	out := []*AuditRecord{}
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && len(out) < q.Limit; k, v = c.Prev() {
			var rec AuditRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			rec.Seq = binary.BigEndian.Uint64(k)
			if !q.Since.IsZero() && rec.Time.Before(q.Since) {
				break
			}
			if (q.Unit == "" || rec.Unit == q.Unit) && (q.Principal == "" || rec.Principal == q.Principal) {
				out = append(out, &rec)
			}
		}
		return nil
	})
	return out, err
}
