package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
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
	bucketOutputs  = []byte("outputs")
	bucketPending  = []byte("pending")
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
//   - every key of "blobs" is a sub-bucket named by the blob's sha256 hex
//     (no plain values), holding only plain chunk values keyed by 4-byte
//     big-endian indices 0..n-1 without gaps; every chunk but the last is
//     exactly blobChunk bytes, the last is 1..blobChunk bytes (a blob of
//     no bytes is one empty chunk 0);
//   - the sha256 of the concatenated chunks equals the bucket name;
//   - every version record references a blob present in "blobs", and its
//     size, serial, lineage and encrypted flag match that blob;
//   - every blob's reference count equals the number of version records
//     referencing it (no orphan blobs, no orphan reference counts);
//   - every key in "locks" and "versions" names an existing unit;
//   - each unit's version_count equals its number of version records, and
//     current_version is the highest version number (0 only with none);
//   - version numbers never exceed the bucket sequence (never reused);
//   - every key of "outputs" is a sub-bucket named after an existing unit,
//     whose keys are 8-byte numbers of versions that unit has, holding
//     valid JSON;
//   - every record in "pending" decodes, is keyed by its own ID and names
//     an existing unit (a finalized record's version may have been pruned
//     since, so it is not checked);
//   - the dependency graph: records and the index by source agree, edges
//     join existing units, and the edge graph has no cycles
//     (checkEdgeInvariants in edge_invariants_test.go).
func checkInvariants(t testing.TB, db *store.DB) {
	t.Helper()
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketUnits, bucketVersions, bucketLocks, bucketBlobs, bucketBlobRefs, bucketOutputs, bucketPending} {
			if tx.Bucket(name) == nil {
				t.Errorf("invariant: bucket %q missing", name)
				return nil
			}
		}
		blobs, err := readBlobs(t, tx)
		if err != nil {
			return err
		}
		units := map[string]*store.Unit{}
		err = tx.Bucket(bucketUnits).ForEach(func(k, v []byte) error {
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
		versions := map[string]map[uint64]bool{} // unit → its version numbers
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
				blob, ok := blobs[ver.SHA256]
				if !ok {
					t.Errorf("invariant: %q version %d references missing blob %q", k, ver.Version, ver.SHA256)
				} else if int64(len(blob)) != ver.Size {
					t.Errorf("invariant: %q version %d size %d, blob is %d bytes", k, ver.Version, ver.Size, len(blob))
				} else if info, err := store.ParseState(blob); err != nil {
					t.Errorf("invariant: %q version %d is not a JSON object: %v", k, ver.Version, err)
				} else if info.Serial != ver.Serial || info.Lineage != ver.Lineage || info.Encrypted != ver.Encrypted {
					t.Errorf("invariant: %q version %d records serial %d lineage %q encrypted %v; its state has %d %q %v",
						k, ver.Version, ver.Serial, ver.Lineage, ver.Encrypted, info.Serial, info.Lineage, info.Encrypted)
				}
				if ver.Hash != ver.SHA256[:min(8, len(ver.SHA256))] || len(ver.Hash) != 8 {
					t.Errorf("invariant: %q version %d hash %q does not prefix sha256 %q", k, ver.Version, ver.Hash, ver.SHA256)
				}
				refs[ver.SHA256]++
				if versions[string(k)] == nil {
					versions[string(k)] = map[uint64]bool{}
				}
				versions[string(k)][uint64(ver.Version)] = true
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
		for sum := range blobs {
			if refs[sum] == 0 {
				t.Errorf("invariant: orphan blob %q", sum)
			}
		}
		err = tx.Bucket(bucketBlobRefs).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				t.Errorf("invariant: reference count of %q is %d bytes", k, len(v))
				return nil
			}
			if got, want := binary.BigEndian.Uint64(v), refs[string(k)]; got != want {
				t.Errorf("invariant: blob %q reference count %d, referenced by %d versions", k, got, want)
			}
			if _, ok := blobs[string(k)]; !ok {
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
		ob := tx.Bucket(bucketOutputs)
		err = ob.ForEach(func(k, v []byte) error {
			if units[string(k)] == nil {
				t.Errorf("invariant: outputs of unknown unit %q", k)
			}
			b := ob.Bucket(k)
			if v != nil || b == nil {
				t.Errorf("invariant: outputs/%q is not a bucket", k)
				return nil
			}
			return b.ForEach(func(ok, ov []byte) error {
				if len(ok) != 8 {
					t.Errorf("invariant: outputs key %x of %q is not an 8-byte version number", ok, k)
					return nil
				}
				n := binary.BigEndian.Uint64(ok)
				if !versions[string(k)][n] {
					t.Errorf("invariant: outputs of %q for missing version %d", k, n)
				}
				if ov == nil || !json.Valid(ov) {
					t.Errorf("invariant: outputs of %q version %d are not valid JSON: %q", k, n, ov)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		checkEdgeInvariants(t, tx, units)
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			var p store.PendingVersion
			if err := json.Unmarshal(v, &p); err != nil {
				t.Errorf("invariant: pending version %q does not decode: %v", k, err)
				return nil
			}
			if p.ID != string(k) {
				t.Errorf("invariant: pending key %q holds pending version %q", k, p.ID)
			}
			if units[p.UnitID] == nil {
				t.Errorf("invariant: pending version %q of unknown unit %q", k, p.UnitID)
			}
			return nil
		})
	})
	if err != nil {
		t.Errorf("invariant check: %v", err)
	}
}

// blobChunk is the chunk size of the blob layout: every chunk of a blob but
// the last holds exactly this many bytes.
const blobChunk = 1 << 20

// readBlobs walks "blobs", reports every broken invariant of the chunked
// layout, and returns the content of every blob sub-bucket keyed by its
// name. A plain value in "blobs" is reported and not returned, so versions
// and reference counts naming it count as pointing at a missing blob.
func readBlobs(t testing.TB, tx *bolt.Tx) (map[string][]byte, error) {
	t.Helper()
	blobs := map[string][]byte{}
	bb := tx.Bucket(bucketBlobs)
	err := bb.ForEach(func(k, v []byte) error {
		b := bb.Bucket(k)
		if v != nil || b == nil {
			t.Errorf("invariant: blobs/%q is a plain value, not a blob bucket", k)
			return nil
		}
		data := []byte{}
		var n uint32 // index the next chunk must have
		last := -1   // length of the previous chunk, -1 before the first
		c := b.Cursor()
		for ck, cv := c.First(); ck != nil; ck, cv = c.Next() {
			if cv == nil {
				t.Errorf("invariant: blob %q chunk key %x is a bucket", k, ck)
				continue
			}
			if len(ck) != 4 {
				t.Errorf("invariant: blob %q chunk key %x is not a 4-byte index", k, ck)
			} else if i := binary.BigEndian.Uint32(ck); i != n {
				t.Errorf("invariant: blob %q has chunk %d where chunk %d belongs (chunk indices not contiguous from 0)", k, i, n)
				n = i
			}
			if last >= 0 && last != blobChunk {
				t.Errorf("invariant: blob %q chunk %d is %d bytes; all chunks but the last must be %d", k, n-1, last, blobChunk)
			}
			if len(cv) > blobChunk {
				t.Errorf("invariant: blob %q chunk %d is %d bytes, over %d", k, n, len(cv), blobChunk)
			}
			data = append(data, cv...)
			last = len(cv)
			n++
		}
		switch {
		case last < 0:
			t.Errorf("invariant: blob %q has no chunks", k)
		case last == 0 && n > 1:
			t.Errorf("invariant: blob %q ends in an empty chunk %d", k, n-1)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != string(k) {
			t.Errorf("invariant: blob %q has sha256 %s", k, got)
		}
		blobs[string(k)] = data
		return nil
	})
	return blobs, err
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

// bucketLen returns the number of keys in a top-level bucket. Nested
// buckets count as one key each, so for "blobs" it is the number of blobs
// (one sub-bucket per blob), whatever their number of chunks.
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

// recorder is a testing.TB that collects Errorf calls, to test the
// invariant checker itself.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestCheckInvariants breaks each invariant through raw bbolt writes and
// checks that the checker notices.
func TestCheckInvariants(t *testing.T) {
	u64 := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	u32 := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	for name, tc := range map[string]struct {
		corrupt func(tx *bolt.Tx, sum string) error
		want    string
	}{
		"OrphanBlob": {func(tx *bolt.Tx, _ string) error {
			sum := sha256.Sum256([]byte("{}"))
			b, err := tx.Bucket(bucketBlobs).CreateBucket([]byte(hex.EncodeToString(sum[:])))
			if err != nil {
				return err
			}
			return b.Put(u32(0), []byte("{}"))
		}, "orphan blob"},
		"MissingBlob": {func(tx *bolt.Tx, sum string) error {
			return tx.Bucket(bucketBlobs).DeleteBucket([]byte(sum))
		}, "missing blob"},
		"FlatBlob": {func(tx *bolt.Tx, sum string) error {
			// The old layout: the whole state as a plain value.
			blobs := tx.Bucket(bucketBlobs)
			state := blobs.Bucket([]byte(sum)).Get(u32(0))
			state = bytes.Clone(state)
			if err := blobs.DeleteBucket([]byte(sum)); err != nil {
				return err
			}
			return blobs.Put([]byte(sum), state)
		}, "is a plain value"},
		"WrongRefcount": {func(tx *bolt.Tx, sum string) error {
			return tx.Bucket(bucketBlobRefs).Put([]byte(sum), u64(3))
		}, "reference count 3"},
		"OrphanRefcount": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketBlobRefs).Put([]byte("abc"), u64(1))
		}, "missing blob \"abc\""},
		"BadBlobDigest": {func(tx *bolt.Tx, sum string) error {
			// Same size and metadata, different bytes.
			b := tx.Bucket(bucketBlobs).Bucket([]byte(sum))
			state := bytes.Replace(b.Get(u32(0)), []byte(`"outputs":{}`), []byte(`"outputs":[]`), 1)
			return b.Put(u32(0), state)
		}, "has sha256"},
		"ChunkGap": {func(tx *bolt.Tx, sum string) error {
			// The only chunk stored as chunk 1: content intact, index 0 missing.
			b := tx.Bucket(bucketBlobs).Bucket([]byte(sum))
			state := bytes.Clone(b.Get(u32(0)))
			if err := b.Delete(u32(0)); err != nil {
				return err
			}
			return b.Put(u32(1), state)
		}, "has chunk 1 where chunk 0 belongs"},
		"ChunkKeyLength": {func(tx *bolt.Tx, sum string) error {
			b := tx.Bucket(bucketBlobs).Bucket([]byte(sum))
			state := bytes.Clone(b.Get(u32(0)))
			if err := b.Delete(u32(0)); err != nil {
				return err
			}
			return b.Put([]byte{0}, state)
		}, "is not a 4-byte index"},
		"ShortMiddleChunk": {func(tx *bolt.Tx, sum string) error {
			// The same content split 10 bytes + rest: digest intact, but
			// chunk 0 is not a full chunk.
			b := tx.Bucket(bucketBlobs).Bucket([]byte(sum))
			state := bytes.Clone(b.Get(u32(0)))
			if err := b.Put(u32(0), state[:10]); err != nil {
				return err
			}
			return b.Put(u32(1), state[10:])
		}, "chunk 0 is 10 bytes"},
		"OversizeChunk": {func(tx *bolt.Tx, sum string) error {
			b := tx.Bucket(bucketBlobs).Bucket([]byte(sum))
			state := append(bytes.Clone(b.Get(u32(0))), bytes.Repeat([]byte(" "), blobChunk)...)
			return b.Put(u32(0), state)
		}, "over 1048576"},
		"TrailingEmptyChunk": {func(tx *bolt.Tx, sum string) error {
			return tx.Bucket(bucketBlobs).Bucket([]byte(sum)).Put(u32(1), nil)
		}, "ends in an empty chunk"},
		"NoChunks": {func(tx *bolt.Tx, sum string) error {
			return tx.Bucket(bucketBlobs).Bucket([]byte(sum)).Delete(u32(0))
		}, "has no chunks"},
		"NestedBucketInBlob": {func(tx *bolt.Tx, sum string) error {
			_, err := tx.Bucket(bucketBlobs).Bucket([]byte(sum)).CreateBucket(u32(1))
			return err
		}, "is a bucket"},
		"LockOfUnknownUnit": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketLocks).Put([]byte("ghost"), []byte(`{"id":"x"}`))
		}, "lock of unknown unit"},
		"VersionsOfUnknownUnit": {func(tx *bolt.Tx, _ string) error {
			_, err := tx.Bucket(bucketVersions).CreateBucket([]byte("ghost"))
			return err
		}, "versions of unknown unit"},
		"VersionCount": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketUnits).Put([]byte("u"), []byte(`{"id":"u","version_count":2,"current_version":1}`))
		}, "version_count 2"},
		"CurrentVersion": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketUnits).Put([]byte("u"), []byte(`{"id":"u","version_count":1,"current_version":0}`))
		}, "current_version 0"},
		"OrphanOutputs": {func(tx *bolt.Tx, _ string) error {
			b, err := tx.Bucket(bucketOutputs).CreateBucket([]byte("ghost"))
			if err != nil {
				return err
			}
			return b.Put(u64(1), []byte(`{}`))
		}, "outputs of unknown unit \"ghost\""},
		"OutputsNotBucket": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketOutputs).Put([]byte("u"), []byte(`{}`))
		}, "outputs/\"u\" is not a bucket"},
		"OutputsOfMissingVersion": {func(tx *bolt.Tx, _ string) error {
			b, err := tx.Bucket(bucketOutputs).CreateBucket([]byte("u"))
			if err != nil {
				return err
			}
			return b.Put(u64(7), []byte(`{}`))
		}, "outputs of \"u\" for missing version 7"},
		"OutputsBadKey": {func(tx *bolt.Tx, _ string) error {
			b, err := tx.Bucket(bucketOutputs).CreateBucket([]byte("u"))
			if err != nil {
				return err
			}
			return b.Put([]byte{1}, []byte(`{}`))
		}, "is not an 8-byte version number"},
		"OutputsBadJSON": {func(tx *bolt.Tx, _ string) error {
			b, err := tx.Bucket(bucketOutputs).CreateBucket([]byte("u"))
			if err != nil {
				return err
			}
			return b.Put(u64(1), []byte(`{`))
		}, "are not valid JSON"},
		"PendingOfUnknownUnit": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketPending).Put([]byte("sv-1"), []byte(`{"id":"sv-1","unit_id":"ghost","serial":1}`))
		}, "pending version \"sv-1\" of unknown unit \"ghost\""},
		"PendingUndecodable": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketPending).Put([]byte("sv-1"), []byte(`not json`))
		}, "pending version \"sv-1\" does not decode"},
		"PendingKeyMismatch": {func(tx *bolt.Tx, _ string) error {
			return tx.Bucket(bucketPending).Put([]byte("sv-1"), []byte(`{"id":"sv-2","unit_id":"u"}`))
		}, "pending key \"sv-1\" holds pending version \"sv-2\""},
		"SerialMismatch": {func(tx *bolt.Tx, sum string) error {
			vb := tx.Bucket(bucketVersions).Bucket([]byte("u"))
			v := fmt.Sprintf(`{"version":1,"hash":%q,"sha256":%q,"size":%d,"serial":2,"lineage":"L"}`,
				sum[:8], sum, len(tfState(1, "L")))
			return vb.Put(u64(1), []byte(v))
		}, "records serial 2"},
	} {
		t.Run(name, func(t *testing.T) {
			db := mustOpen(t)
			mustCreate(t, db, "u")
			v := mustWrite(t, db, "u", tfState(1, "L"), store.WriteOptions{})
			if err := db.Bolt().Update(func(tx *bolt.Tx) error { return tc.corrupt(tx, v.SHA256) }); err != nil {
				t.Fatal(err)
			}
			r := &recorder{TB: t}
			checkInvariants(r, db)
			if !slices.ContainsFunc(r.errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Fatalf("checker reported %q; want a report containing %q", r.errs, tc.want)
			}
			// Drop the database so that the cleanup check sees a clean one.
			if err := db.Bolt().Update(func(tx *bolt.Tx) error {
				for _, b := range [][]byte{bucketUnits, bucketVersions, bucketLocks, bucketBlobs, bucketBlobRefs, bucketOutputs, bucketPending} {
					if err := tx.DeleteBucket(b); err != nil {
						return err
					}
					if _, err := tx.CreateBucket(b); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
