package store

import (
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent snapshot of the database (a read
// transaction, so writers go on meanwhile) to the writer that open returns
// once the size is known.
func (db *DB) Backup(open func(size int64) (io.Writer, error)) error {
	return db.view(func(tx *bolt.Tx) error {
		w, err := open(tx.Size())
		if err != nil {
			return err
		}
		_, err = tx.WriteTo(w)
		return err
	})
}

// CountUnits returns how many units exist.
func (db *DB) CountUnits() (int, error) {
	n := 0
	err := db.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketUnits).Stats().KeyN
		return nil
	})
	return n, err
}
