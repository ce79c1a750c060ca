package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Unit is one Terraform/OpenTofu state and its metadata. Lock and Locked
// are filled in from the locks bucket when a unit is read.
type Unit struct {
	ID             string            `json:"id"`
	Created        time.Time         `json:"created"`
	Updated        time.Time         `json:"updated"`
	Size           int64             `json:"size"`
	Serial         int64             `json:"serial"`
	Lineage        string            `json:"lineage"`
	VersionCount   int               `json:"version_count"`
	CurrentVersion int64             `json:"current_version"` // 0 while the unit has no state
	Encrypted      bool              `json:"encrypted,omitempty"`
	Locked         bool              `json:"locked"`
	Lock           *Lock             `json:"lock,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
}

// CreateUnit creates an empty unit. Returns EINVALID, ECONFLICT (exists).
func (db *DB) CreateUnit(id string) (*Unit, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	var out *Unit
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		if getUnit(tx, id) != nil {
			return Errorf(ECONFLICT, "unit %q already exists", id)
		}
		out = &Unit{ID: id, Created: now, Updated: now}
		if err := putUnit(tx, out); err != nil {
			return err
		}
		return db.audit(tx, now, AuditCreate, id, "")
	})
	return out, err
}

// GetUnit returns the unit with its lock. Returns ENOTFOUND.
func (db *DB) GetUnit(id string) (*Unit, error) {
	var out *Unit
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		out, err = readUnit(tx, id)
		return err
	})
	return out, err
}

// ListUnits returns the units whose ID starts with prefix, sorted by ID.
func (db *DB) ListUnits(prefix string) ([]*Unit, error) {
	out := []*Unit{}
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUnits).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			u, err := decodeUnit(tx, v)
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// DeleteUnit removes a unit with its versions, blobs, lock and edges. A locked
// unit is refused unless force is set. Returns ENOTFOUND, ELOCKED.
func (db *DB) DeleteUnit(id string, force bool) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		if getUnit(tx, id) == nil {
			return Errorf(ENOTFOUND, "unit %q not found", id)
		}
		if held, err := getLock(tx, id); err != nil {
			return err
		} else if held != nil && !force {
			return lockedError(held)
		}
		if vb := tx.Bucket(bucketVersions).Bucket([]byte(id)); vb != nil {
			err := vb.ForEach(func(_, v []byte) error {
				var ver Version
				if err := json.Unmarshal(v, &ver); err != nil {
					return err
				}
				return dropBlob(tx, ver.SHA256)
			})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketVersions).DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketOutputs).Bucket([]byte(id)) != nil {
			if err := tx.Bucket(bucketOutputs).DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		if err := deletePending(tx, func(p *PendingVersion) bool { return p.UnitID == id }); err != nil {
			return err
		} else if err := deleteEdges(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLocks).Delete([]byte(id)); err != nil {
			return err
		} else if err := db.audit(tx, now, AuditDelete, id, forceDetail(force)); err != nil {
			return err
		}
		return tx.Bucket(bucketUnits).Delete([]byte(id))
	})
}

// getUnit returns the stored unit record (without lock), or nil.
func getUnit(tx *bolt.Tx, id string) *Unit {
	v := tx.Bucket(bucketUnits).Get([]byte(id))
	if v == nil {
		return nil
	}
	var u Unit
	if err := json.Unmarshal(v, &u); err != nil {
		return nil
	}
	return &u
}

func readUnit(tx *bolt.Tx, id string) (*Unit, error) {
	v := tx.Bucket(bucketUnits).Get([]byte(id))
	if v == nil {
		return nil, Errorf(ENOTFOUND, "unit %q not found", id)
	}
	return decodeUnit(tx, v)
}

func decodeUnit(tx *bolt.Tx, v []byte) (*Unit, error) {
	var u Unit
	if err := json.Unmarshal(v, &u); err != nil {
		return nil, fmt.Errorf("decode unit: %w", err)
	}
	l, err := getLock(tx, u.ID)
	if err != nil {
		return nil, err
	}
	u.Lock, u.Locked = l, l != nil
	return &u, nil
}

func putUnit(tx *bolt.Tx, u *Unit) error {
	rec := *u
	rec.Lock, rec.Locked = nil, false
	return putJSON(tx.Bucket(bucketUnits), []byte(u.ID), &rec)
}

// ensureUnit checks that unit id exists, creating it when create is set.
func ensureUnit(tx *bolt.Tx, id string, now time.Time, create bool) error {
	if getUnit(tx, id) != nil {
		return nil
	} else if !create {
		return Errorf(ENOTFOUND, "unit %q not found", id)
	} else if err := ValidateID(id); err != nil {
		return err
	}
	return putUnit(tx, &Unit{ID: id, Created: now, Updated: now})
}

func forceDetail(force bool) string {
	if force {
		return "force"
	}
	return ""
}
