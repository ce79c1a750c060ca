package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PendingTTL is how long a declared state version waits for its bytes
// before it is discarded.
const PendingTTL = 15 * time.Minute

// pendingKeep is how long a finalized pending record stays readable by its
// own ID (Terraform reads it right after the upload).
const pendingKeep = time.Hour

// PendingVersion is a state version declared through Terraform Cloud's
// create-then-upload flow whose bytes have not arrived yet. Once they do
// and match, it becomes a unit version (Version > 0).
type PendingVersion struct {
	ID      string          `json:"id"`
	UnitID  string          `json:"unit_id"`
	Serial  int64           `json:"serial"`
	MD5     string          `json:"md5"`
	Lineage string          `json:"lineage"`
	Outputs json.RawMessage `json:"outputs,omitempty"` // declared json-state-outputs
	LockID  string          `json:"lock_id"`           // lock the creator held, "" if none
	Who     string          `json:"who"`
	Created time.Time       `json:"created"`
	Version int64           `json:"version,omitempty"` // unit version once finalized
}

// CreatePending declares a state version of unit id. p.ID is a prefix to
// which a random suffix is added. If the current
// version already has the same serial and MD5 (a retried create), that
// version is returned instead and no pending record is made; a pending
// record with the same serial and MD5 is returned as is. The lock rule is
// the one of WriteState. Returns ENOTFOUND, ELOCKED.
func (db *DB) CreatePending(p PendingVersion) (*PendingVersion, *Version, error) {
	if len(p.Outputs) > 0 {
		// In the form putJSON stores (compact, HTML-escaped), so that
		// findPending recognizes an identical declaration.
		b, err := json.Marshal(p.Outputs)
		if err != nil {
			return nil, nil, Errorf(EINVALID, "declared outputs are not valid JSON")
		}
		p.Outputs = b
	}
	var out *PendingVersion
	var cur *Version
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		u, err := readUnit(tx, p.UnitID)
		if err != nil {
			return err
		} else if err := checkLock(tx, p.UnitID, p.LockID); err != nil {
			return err
		} else if err := expirePending(tx, now); err != nil {
			return err
		}
		if u.CurrentVersion != 0 {
			v, err := getVersion(tx, u, u.CurrentVersion)
			if err != nil {
				return err
			} else if v.Serial == p.Serial && v.MD5 == p.MD5 {
				cur = v
				return nil
			}
		}
		if same, err := findPending(tx, p); err != nil || same != nil {
			out = same
			return err
		}
		p.ID, p.Created, p.Version = p.ID+randomHex(12), now, 0
		out = &p
		return putJSON(tx.Bucket(bucketPending), []byte(p.ID), &p)
	})
	return out, cur, err
}

// GetPending returns a pending (or recently finalized) version. An expired
// one is ENOTFOUND.
func (db *DB) GetPending(id string) (*PendingVersion, error) {
	var out *PendingVersion
	err := db.view(func(tx *bolt.Tx) error {
		p, err := getPending(tx, id, db.Now())
		out = p
		return err
	})
	return out, err
}

// FinalizePending stores the bytes of a pending version and makes it the
// current unit version. The bytes must match the declared MD5 and carry
// the declared serial; otherwise it is refused (EINVALID) and stays
// pending. Uploading the same bytes again returns the same version.
// Returns EINVALID, ENOTFOUND, ELOCKED.
func (db *DB) FinalizePending(id string, state []byte) (*Version, error) {
	c, err := newContent(state)
	if err != nil {
		return nil, err
	}
	var out *Version
	err = db.batch(func(tx *bolt.Tx, now time.Time) error {
		out = nil
		p, err := getPending(tx, id, now)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(c.md5[:]); got != p.MD5 {
			return Errorf(EINVALID, "uploaded state has MD5 %s, but %s was declared", got, p.MD5)
		} else if c.info.Serial != p.Serial {
			return Errorf(EINVALID, "uploaded state has serial %d, but %d was declared", c.info.Serial, p.Serial)
		}
		u, err := readUnit(tx, p.UnitID)
		if err != nil {
			return err
		}
		if p.Version > 0 { // a repeated upload of the same bytes
			out, err = getVersion(tx, u, p.Version)
			return err
		}
		if err := checkLock(tx, p.UnitID, p.LockID); err != nil {
			return err
		}
		opt := WriteOptions{Who: p.Who, Source: SourceTFE, TFEID: p.ID}
		if out, err = addVersion(tx, db.MaxVersions, p.UnitID, c, opt, now); err != nil {
			return err
		} else if err := putOutputs(tx, p.UnitID, out.Version, p.Outputs); err != nil {
			return err
		}
		p.Version = out.Version
		auditor := db
		if db.actor == nil || db.actor.Principal == "" { // a signed upload: audited as the version's creator
			a := Actor{Principal: p.Who}
			if db.actor != nil {
				a.RequestID = db.actor.RequestID
			}
			auditor = db.As(a)
		}
		if err := auditor.audit(tx, now, AuditWrite, p.UnitID, fmt.Sprintf("version %d via tfe (%s)", out.Version, p.ID)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketPending), []byte(p.ID), p)
	})
	return out, err
}

// DiscardPending drops the unfinished pending versions of unit id (a
// Terraform Cloud unlock never leaves one behind).
func (db *DB) DiscardPending(unitID string) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		return deletePending(tx, func(p *PendingVersion) bool { return p.UnitID == unitID && p.Version == 0 })
	})
}

func getPending(tx *bolt.Tx, id string, now time.Time) (*PendingVersion, error) {
	v := tx.Bucket(bucketPending).Get([]byte(id))
	if v == nil {
		return nil, Errorf(ENOTFOUND, "state version %q not found", id)
	}
	var p PendingVersion
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode pending version: %w", err)
	}
	if p.Version == 0 && now.Sub(p.Created) > PendingTTL {
		return nil, Errorf(ENOTFOUND, "state version %q expired before its state was uploaded", id)
	}
	return &p, nil
}

func findPending(tx *bolt.Tx, want PendingVersion) (*PendingVersion, error) {
	var out *PendingVersion
	err := tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
		var p PendingVersion
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		if p.Version == 0 && p.UnitID == want.UnitID && p.Serial == want.Serial && p.MD5 == want.MD5 && bytes.Equal(p.Outputs, want.Outputs) {
			out = &p
		}
		return nil
	})
	return out, err
}

// expirePending deletes unfinished records past PendingTTL and finalized
// ones past pendingKeep.
func expirePending(tx *bolt.Tx, now time.Time) error {
	return deletePending(tx, func(p *PendingVersion) bool {
		age := now.Sub(p.Created)
		return p.Version == 0 && age > PendingTTL || age > pendingKeep
	})
}

func deletePending(tx *bolt.Tx, drop func(*PendingVersion) bool) error {
	b := tx.Bucket(bucketPending)
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var p PendingVersion
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		if drop(&p) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range doomed {
		if err == nil {
			err = b.Delete(k)
		}
	}
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
