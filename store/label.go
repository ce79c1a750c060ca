package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// UpdateLabels sets and removes labels of unit id (Terraform Cloud tags
// are labels). Returns the updated unit. Returns ENOTFOUND.
func (db *DB) UpdateLabels(id string, set map[string]string, remove []string) (*Unit, error) {
	var out *Unit
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		u, err := readUnit(tx, id)
		if err != nil {
			return err
		}
		if u.Labels == nil {
			u.Labels = map[string]string{}
		}
		for k, v := range set {
			u.Labels[k] = v
		}
		for _, k := range remove {
			delete(u.Labels, k)
		}
		out = u
		if err := putUnit(tx, u); err != nil {
			return err
		}
		return db.audit(tx, now, AuditLabels, id, "")
	})
	return out, err
}
