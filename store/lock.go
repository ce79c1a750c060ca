package store

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Lock is Terraform's lock-info record. All fields are kept. JSON keys are
// lower-case; UnmarshalJSON matches keys case-insensitively, so Terraform's
// "ID"/"Who"/... bodies decode unchanged.
type Lock struct {
	ID        string `json:"id"`
	Operation string `json:"operation"`
	Info      string `json:"info"`
	Who       string `json:"who"`
	Version   string `json:"version"`
	Created   string `json:"created"`
	Path      string `json:"path"`
}

// TerraformLock is the lock in Terraform's own key spelling, which is what
// the http backend answers with (Terraform decodes the holder from it).
type TerraformLock struct {
	ID        string `json:"ID"`
	Operation string `json:"Operation"`
	Info      string `json:"Info"`
	Who       string `json:"Who"`
	Version   string `json:"Version"`
	Created   string `json:"Created"`
	Path      string `json:"Path"`
}

// Terraform returns l in Terraform's key spelling.
func (l *Lock) Terraform() TerraformLock { return TerraformLock(*l) }

// ParseLock decodes a lock-info body (any subset of fields, keys in any
// case). An empty body gives an empty lock. Returns EINVALID.
func ParseLock(b []byte) (*Lock, error) {
	var l Lock
	if len(strings.TrimSpace(string(b))) == 0 {
		return &l, nil
	}
	// encoding/json matches struct field names case-insensitively.
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, Errorf(EINVALID, "lock info is not a valid JSON object: %v", err)
	}
	return &l, nil
}

// NewLockID returns a random UUID (version 4) for locks that come without one.
func NewLockID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// LockUnit takes the lock of unit id. Missing ID gets a UUID, missing Who
// gets who, missing Created gets now. Taking a lock again with the same ID
// is idempotent and returns the stored lock. If create is set an unknown
// unit is created first (http backend), otherwise it is ENOTFOUND.
// Returns ENOTFOUND, ELOCKED (with the holder's lock).
func (db *DB) LockUnit(id string, l Lock, who string, create bool) (*Lock, error) {
	return db.lockUnit(id, l, who, create, false)
}

// LockUnitExclusive takes the lock of unit id only if nobody holds it, the
// caller included (Terraform Cloud semantics: a second lock is a conflict
// even for the same principal). Returns ENOTFOUND, ELOCKED.
func (db *DB) LockUnitExclusive(id string, l Lock, who string) (*Lock, error) {
	return db.lockUnit(id, l, who, false, true)
}

func (db *DB) lockUnit(id string, l Lock, who string, create, exclusive bool) (*Lock, error) {
	if l.ID == "" {
		l.ID = NewLockID()
	}
	if l.Who == "" {
		l.Who = who
	}
	var out *Lock
	err := db.batch(func(tx *bolt.Tx, now time.Time) error {
		out = nil
		if err := ensureUnit(tx, id, now, create); err != nil {
			return err
		}
		held, err := getLock(tx, id)
		if err != nil {
			return err
		} else if held != nil && held.ID == l.ID && !exclusive {
			out = held
			return nil
		} else if held != nil {
			return lockedError(held)
		}
		nl := l
		if nl.Created == "" {
			nl.Created = now.UTC().Format(time.RFC3339Nano)
		}
		out = &nl
		if err := putJSON(tx.Bucket(bucketLocks), []byte(id), &nl); err != nil {
			return err
		}
		return db.audit(tx, now, AuditLock, id, "lock "+nl.ID)
	})
	return out, err
}

// UnlockUnit releases the lock of unit id if lockID matches. With force the
// lock is removed whatever its ID (the caller checks the permission).
// Unlocking an unlocked unit succeeds. Returns the lock that was removed
// (nil if none). Returns ENOTFOUND, ELOCKED (wrong ID, with the holder).
func (db *DB) UnlockUnit(id, lockID string, force bool) (*Lock, error) {
	var out *Lock
	err := db.batch(func(tx *bolt.Tx, now time.Time) error {
		out = nil
		if err := ensureUnit(tx, id, now, false); err != nil {
			return err
		}
		held, err := getLock(tx, id)
		if err != nil || held == nil {
			return err
		} else if !force && held.ID != lockID {
			return lockedError(held)
		}
		out = held
		action := AuditUnlock
		if held.ID != lockID {
			action = AuditForceUnlock
		}
		if err := db.audit(tx, now, action, id, "lock "+held.ID+" held by "+held.Who); err != nil {
			return err
		}
		return tx.Bucket(bucketLocks).Delete([]byte(id))
	})
	return out, err
}

// GetLock returns the lock of unit id, or nil when it is unlocked.
// Returns ENOTFOUND.
func (db *DB) GetLock(id string) (*Lock, error) {
	var out *Lock
	err := db.view(func(tx *bolt.Tx) error {
		if getUnit(tx, id) == nil {
			return Errorf(ENOTFOUND, "unit %q not found", id)
		}
		var err error
		out, err = getLock(tx, id)
		return err
	})
	return out, err
}

func getLock(tx *bolt.Tx, id string) (*Lock, error) {
	v := tx.Bucket(bucketLocks).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var l Lock
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("decode lock of %q: %w", id, err)
	}
	return &l, nil
}

// checkLock enforces the write rule: an unlocked unit accepts any write; a
// locked one only a write that names the holder's lock ID.
func checkLock(tx *bolt.Tx, id, lockID string) error {
	held, err := getLock(tx, id)
	if err != nil || held == nil {
		return err
	} else if held.ID != lockID {
		return lockedError(held)
	}
	return nil
}
