package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout version written to the meta bucket. Open
// refuses a database written by a newer OpenTaco.
const SchemaVersion = 1

var (
	bucketMeta     = []byte("meta")
	bucketUnits    = []byte("units")    // id → Unit (without lock)
	bucketVersions = []byte("versions") // id → sub-bucket: uint64 BE → Version
	bucketLocks    = []byte("locks")    // id → Lock
	bucketBlobs    = []byte("blobs")    // sha256 hex → sub-bucket: uint32 BE chunk index → bytes (blob.go)
	bucketBlobRefs = []byte("blobrefs") // sha256 hex → uint64 BE reference count
	bucketOutputs  = []byte("outputs")  // id → sub-bucket: uint64 BE version → declared outputs JSON
	bucketPending  = []byte("pending")  // pending state version ID → PendingVersion

	keySchema = []byte("schema_version")
)

// DB is the bbolt implementation of the store.
type DB struct {
	bolt *bolt.DB

	// Now returns the current time; it is read once per transaction.
	Now func() time.Time
	// MaxVersions is how many versions a unit keeps (0 = all). The
	// current version is never pruned.
	MaxVersions int

	commits *committer
	actor   *Actor // who the changes made through this handle are audited as
}

// Options configure Open.
type Options struct {
	MaxVersions int
	// LockTimeout bounds the wait for the database file lock held by
	// another process (default 2s).
	LockTimeout time.Duration
}

// Open opens (creating if needed) the database at path, creates the
// buckets and checks the schema version. A database held by another
// process fails after LockTimeout with EINVALID-free plain error text.
func Open(path string, opt Options) (*DB, error) {
	if opt.LockTimeout == 0 {
		opt.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// A large initial mapping (address space, not memory or disk) spares
	// bbolt most remaps: a remap copies every dirty value of the open
	// write transaction onto the heap, which doubled the memory of a
	// large state write, and it waits for all read transactions.
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.LockTimeout, InitialMmapSize: 1 << 30})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("database %s is in use by another process (is another `opentaco serve` running on this data dir?)", path)
	} else if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{bolt: b, Now: time.Now, MaxVersions: opt.MaxVersions, commits: &committer{}}
	if err := db.init(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) init() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range append([][]byte{bucketMeta, bucketUnits, bucketVersions, bucketLocks, bucketBlobs, bucketBlobRefs, bucketOutputs, bucketPending, bucketAudit}, append(append(authBuckets(), rbacBuckets()...), edgeBuckets()...)...) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keySchema)
		if err := initRBAC(tx, time.Now()); err != nil {
			return err
		}
		if v == nil {
			return meta.Put(keySchema, u64(SchemaVersion))
		} else if len(v) != 8 {
			return fmt.Errorf("database meta bucket holds a damaged schema version (%d bytes)", len(v))
		} else if got := binary.BigEndian.Uint64(v); got > SchemaVersion {
			return fmt.Errorf("database schema version %d is newer than this binary supports (%d); upgrade opentaco", got, SchemaVersion)
		}
		return nil
	})
}

// Close closes the database.
func (db *DB) Close() error { return db.bolt.Close() }

// Ping checks that the database answers a read transaction.
func (db *DB) Ping() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
}

// Bolt exposes the underlying database for tests and invariant checks.
func (db *DB) Bolt() *bolt.DB { return db.bolt }

// update runs fn in a write transaction. now is read once, inside the
// transaction, so timestamps follow the commit order of concurrent writes.
func (db *DB) update(fn func(tx *bolt.Tx, now time.Time) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(tx, db.Now()) })
}

func (db *DB) view(fn func(tx *bolt.Tx) error) error {
	return db.bolt.View(fn)
}

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}
