package store

import (
	"crypto/rand"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Secret returns the server secret called name (32 random bytes), creating
// it on first use. Secrets live in the meta bucket, so they survive
// restarts and travel with backups. Used for signing upload URLs.
func (db *DB) Secret(name string) ([]byte, error) {
	key := []byte("secret:" + name)
	var out []byte
	err := db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(key); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil || out != nil {
		return out, err
	}
	err = db.update(func(tx *bolt.Tx, _ time.Time) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(key); v != nil { // created meanwhile
			out = append([]byte(nil), v...)
			return nil
		}
		out = make([]byte, 32)
		if _, err := rand.Read(out); err != nil {
			return err
		}
		return meta.Put(key, out)
	})
	return out, err
}
