package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opentaco/opentaco/store"
)

// Raw bucket names of the bbolt layout, used by the invariant checks.
var (
	bucketMeta     = []byte("meta")
	bucketUnits    = []byte("units")
	bucketVersions = []byte("versions")
	bucketLocks    = []byte("locks")
	bucketBlobs    = []byte("blobs")
	bucketBlobRefs = []byte("blobrefs")
)

// epoch is the start of the test clock.
var epoch = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

// testClock returns a deterministic clock that starts at epoch and moves
// one second forward each time it is read, so every transaction gets its
// own distinct timestamp. It is safe for concurrent use.
func testClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time {
		return epoch.Add(time.Duration(n.Add(1)-1) * time.Second)
	}
}

// mustOpen opens a database in t.TempDir() with the test clock and, on
// cleanup, checks the storage invariants and closes it.
func mustOpen(t testing.TB) *store.DB {
	t.Helper()
	return mustOpenAt(t, filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
}

// mustOpenAt is mustOpen for a given path and options.
func mustOpenAt(t testing.TB, path string, opt store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(path, opt)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	db.Now = testClock()
	t.Cleanup(func() {
		checkInvariants(t, db)
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

// checkInvariants walks the raw bbolt file and reports every broken
// storage invariant:
//   - every version record references a blob present in "blobs";
//   - every blob's reference count equals the number of version records
//     referencing it (no orphan blobs, no orphan reference counts);
//   - the sha256 of every blob equals its key;
//   - every key in "locks" and "versions" names an existing unit;
//   - each unit's version_count equals its number of version records, and
//     current_version is the highest version number (0 only with none);
//   - version numbers never exceed the bucket sequence (never reused).
func checkInvariants(t testing.TB, db *store.DB) {
	t.Helper()
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketUnits, bucketVersions, bucketLocks, bucketBlobs, bucketBlobRefs} {
			if tx.Bucket(name) == nil {
				t.Errorf("invariant: bucket %q missing", name)
				return nil
			}
		}
		units := map[string]*store.Unit{}
		err := tx.Bucket(bucketUnits).ForEach(func(k, v []byte) error {
			var u store.Unit
			if err := json.Unmarshal(v, &u); err != nil {
				t.Errorf("invariant: unit %q does not decode: %v", k, err)
				return nil
			}
			if u.ID != string(k) {
				t.Errorf("invariant: unit key %q holds unit %q", k, u.ID)
			}
			if u.Locked || u.Lock != nil {
				t.Errorf("invariant: unit record %q stores its lock; locks live in %q", k, bucketLocks)
			}
			units[string(k)] = &u
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketLocks).ForEach(func(k, v []byte) error {
			if units[string(k)] == nil {
				t.Errorf("invariant: lock of unknown unit %q", k)
			}
			var l store.Lock
			if err := json.Unmarshal(v, &l); err != nil {
				t.Errorf("invariant: lock of %q does not decode: %v", k, err)
			} else if l.ID == "" {
				t.Errorf("invariant: lock of %q has no ID", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		refs := map[string]uint64{}
		seen := map[string]bool{}
		err = tx.Bucket(bucketVersions).ForEach(func(k, v []byte) error {
			seen[string(k)] = true
			u := units[string(k)]
			if u == nil {
				t.Errorf("invariant: versions of unknown unit %q", k)
			}
			vb := tx.Bucket(bucketVersions).Bucket(k)
			if v != nil || vb == nil {
				t.Errorf("invariant: versions/%q is not a bucket", k)
				return nil
			}
			count, highest := 0, int64(0)
			err := vb.ForEach(func(vk, vv []byte) error {
				var ver store.Version
				if err := json.Unmarshal(vv, &ver); err != nil {
					t.Errorf("invariant: version %x of %q does not decode: %v", vk, k, err)
					return nil
				}
				if len(vk) != 8 || binary.BigEndian.Uint64(vk) != uint64(ver.Version) {
					t.Errorf("invariant: version key %x of %q holds version %d", vk, k, ver.Version)
				}
				if uint64(ver.Version) > vb.Sequence() {
					t.Errorf("invariant: %q version %d beyond sequence %d", k, ver.Version, vb.Sequence())
				}
				blob := tx.Bucket(bucketBlobs).Get([]byte(ver.SHA256))
				if blob == nil {
					t.Errorf("invariant: %q version %d references missing blob %q", k, ver.Version, ver.SHA256)
				} else if int64(len(blob)) != ver.Size {
					t.Errorf("invariant: %q version %d size %d, blob is %d bytes", k, ver.Version, ver.Size, len(blob))
				}
				if ver.Hash != ver.SHA256[:min(8, len(ver.SHA256))] || len(ver.Hash) != 8 {
					t.Errorf("invariant: %q version %d hash %q does not prefix sha256 %q", k, ver.Version, ver.Hash, ver.SHA256)
				}
				refs[ver.SHA256]++
				count++
				highest = max(highest, ver.Version)
				return nil
			})
			if err != nil {
				return err
			}
			if u != nil {
				if u.VersionCount != count {
					t.Errorf("invariant: unit %q version_count %d, has %d version records", k, u.VersionCount, count)
				}
				if u.CurrentVersion != highest {
					t.Errorf("invariant: unit %q current_version %d, highest version is %d", k, u.CurrentVersion, highest)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for id, u := range units {
			if !seen[id] && (u.VersionCount != 0 || u.CurrentVersion != 0) {
				t.Errorf("invariant: unit %q has no versions bucket but version_count %d, current_version %d", id, u.VersionCount, u.CurrentVersion)
			}
		}
		err = tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			sum := sha256.Sum256(v)
			if got := hex.EncodeToString(sum[:]); got != string(k) {
				t.Errorf("invariant: blob %q has sha256 %s", k, got)
			}
			if refs[string(k)] == 0 {
				t.Errorf("invariant: orphan blob %q", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketBlobRefs).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				t.Errorf("invariant: reference count of %q is %d bytes", k, len(v))
				return nil
			}
			if got, want := binary.BigEndian.Uint64(v), refs[string(k)]; got != want {
				t.Errorf("invariant: blob %q reference count %d, referenced by %d versions", k, got, want)
			}
			if tx.Bucket(bucketBlobs).Get(k) == nil {
				t.Errorf("invariant: reference count for missing blob %q", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for sum := range refs {
			if tx.Bucket(bucketBlobRefs).Get([]byte(sum)) == nil {
				t.Errorf("invariant: blob %q is referenced but has no reference count", sum)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("invariant check: %v", err)
	}
}

// blobRefs returns the raw blob reference counts, keyed by sha256.
func blobRefs(t testing.TB, db *store.DB) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobRefs).ForEach(func(k, v []byte) error {
			out[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bucketLen returns the number of keys in a top-level bucket.
func bucketLen(t testing.TB, db *store.DB, name []byte) int {
	t.Helper()
	n := 0
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		return tx.Bucket(name).ForEach(func(_, _ []byte) error {
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustCreate(t testing.TB, db *store.DB, id string) *store.Unit {
	t.Helper()
	u, err := db.CreateUnit(id)
	if err != nil {
		t.Fatalf("CreateUnit(%q): %v", id, err)
	}
	return u
}

func mustWrite(t testing.TB, db *store.DB, id string, state []byte, opt store.WriteOptions) *store.Version {
	t.Helper()
	v, err := db.WriteState(id, state, opt)
	if err != nil {
		t.Fatalf("WriteState(%q): %v", id, err)
	}
	return v
}

func mustRead(t testing.TB, db *store.DB, id string, n int64) ([]byte, *store.Version) {
	t.Helper()
	b, v, err := db.ReadState(id, n)
	if err != nil {
		t.Fatalf("ReadState(%q, %d): %v", id, n, err)
	}
	return b, v
}

func mustGet(t testing.TB, db *store.DB, id string) *store.Unit {
	t.Helper()
	u, err := db.GetUnit(id)
	if err != nil {
		t.Fatalf("GetUnit(%q): %v", id, err)
	}
	return u
}

// wantCode fails unless err carries code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := store.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q); want code %q", err, got, code)
	}
}

// wantLocked fails unless err is ELOCKED carrying the lock with holder's ID.
func wantLocked(t testing.TB, err error, holder string) {
	t.Helper()
	wantCode(t, err, store.ELOCKED)
	if l := store.ErrorLock(err); l == nil || l.ID != holder {
		t.Fatalf("locked error carries lock %+v; want holder %q", l, holder)
	}
}

// tfState returns a small Terraform state document.
func tfState(serial int64, lineage string) []byte {
	return fmt.Appendf(nil, `{"version":4,"terraform_version":"1.9.0","serial":%d,"lineage":%q,"outputs":{},"resources":[]}`, serial, lineage)
}

func TestStore_Open(t *testing.T) {
	t.Run("Reopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "dir", "opentaco.db")
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Now = testClock()
		state := []byte("{ \"serial\": 5, \"lineage\": \"L\" }\n")
		mustWrite(t, db, "a/b", state, store.WriteOptions{Create: true, Who: "alice", Source: store.SourceAPI})
		if _, err := db.LockUnit("a/b", store.Lock{ID: "L1"}, "bob", false); err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		db = mustOpenAt(t, path, store.Options{})
		if err := db.Ping(); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		got, ver := mustRead(t, db, "a/b", 0)
		if !bytes.Equal(got, state) {
			t.Fatalf("state after reopen = %q; want %q", got, state)
		}
		if ver.Version != 1 || ver.Who != "alice" || ver.Serial != 5 || !ver.Timestamp.Equal(epoch) {
			t.Fatalf("version after reopen = %+v", ver)
		}
		u := mustGet(t, db, "a/b")
		if !u.Locked || u.Lock == nil || u.Lock.ID != "L1" || u.Lock.Who != "bob" {
			t.Fatalf("unit after reopen = %+v, lock %+v", u, u.Lock)
		}
		// Numbering carries on after a reopen.
		if v := mustWrite(t, db, "a/b", tfState(6, "L"), store.WriteOptions{LockID: "L1"}); v.Version != 2 {
			t.Fatalf("version after reopen = %d; want 2", v.Version)
		}
	})
	t.Run("ErrInUse", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "opentaco.db")
		mustOpenAt(t, path, store.Options{})
		start := time.Now()
		db, err := store.Open(path, store.Options{LockTimeout: 200 * time.Millisecond})
		if err == nil {
			db.Close()
			t.Fatal("second Open of a database in use succeeded")
		}
		if !strings.Contains(err.Error(), "in use") {
			t.Fatalf("error = %q; want it to mention \"in use\"", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("second Open took %v", d)
		}
	})
	t.Run("ErrSchemaNewer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "opentaco.db")
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Bolt().Update(func(tx *bolt.Tx) error {
			v := make([]byte, 8)
			binary.BigEndian.PutUint64(v, store.SchemaVersion+1)
			return tx.Bucket(bucketMeta).Put([]byte("schema_version"), v)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err = store.Open(path, store.Options{})
		if err == nil {
			db.Close()
			t.Fatal("Open of a database with a newer schema succeeded")
		}
		if !strings.Contains(err.Error(), "schema") {
			t.Fatalf("error = %q; want it to mention the schema", err)
		}
		// The refusal released the file: the database can be opened again
		// once the schema is one this binary knows.
		b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatalf("file still held after refused Open: %v", err)
		}
		b.Close()
	})
	t.Run("SchemaWritten", func(t *testing.T) {
		db := mustOpen(t)
		err := db.Bolt().View(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketMeta).Get([]byte("schema_version"))
			if len(v) != 8 || binary.BigEndian.Uint64(v) != store.SchemaVersion {
				t.Errorf("schema_version = %x; want %d", v, store.SchemaVersion)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
