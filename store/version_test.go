package store_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opentaco/opentaco/store"
)

func versionNumbers(vs []*store.Version) []int64 {
	var out []int64
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func mustList(t testing.TB, db *store.DB, id string) []*store.Version {
	t.Helper()
	vs, err := db.ListVersions(id)
	if err != nil {
		t.Fatalf("ListVersions(%q): %v", id, err)
	}
	return vs
}

func TestStore_WriteState(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a/b")
		state := tfState(3, "lin-1")
		v := mustWrite(t, db, "a/b", state, store.WriteOptions{Who: "alice", Source: store.SourceBackend})
		sum, md := sha256.Sum256(state), md5.Sum(state)
		want := store.Version{
			Version: 1, Timestamp: epoch.Add(time.Second), Hash: hex.EncodeToString(sum[:4]),
			SHA256: hex.EncodeToString(sum[:]), MD5: hex.EncodeToString(md[:]), Size: int64(len(state)), Serial: 3, Lineage: "lin-1",
			Who: "alice", Source: store.SourceBackend, Current: true,
		}
		if !v.Timestamp.Equal(want.Timestamp) {
			t.Fatalf("timestamp = %v; want %v", v.Timestamp, want.Timestamp)
		}
		v.Timestamp = want.Timestamp
		if *v != want {
			t.Fatalf("WriteState = %+v;\nwant %+v", *v, want)
		}
		// The first write is a version of its own (SPEC §2 Fix).
		vs := mustList(t, db, "a/b")
		if len(vs) != 1 || vs[0].Version != 1 || !vs[0].Current || vs[0].SHA256 != want.SHA256 {
			t.Fatalf("ListVersions after first write = %+v", vs)
		}
		got, rv := mustRead(t, db, "a/b", 0)
		if !bytes.Equal(got, state) || rv.Version != 1 || !rv.Current {
			t.Fatalf("ReadState = %q, %+v", got, rv)
		}
		u := mustGet(t, db, "a/b")
		if u.VersionCount != 1 || u.CurrentVersion != 1 || u.Serial != 3 || u.Lineage != "lin-1" ||
			u.Size != int64(len(state)) || !u.Updated.Equal(want.Timestamp) || u.Encrypted {
			t.Fatalf("unit after write = %+v", u)
		}
	})
	t.Run("History", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		var states [][]byte
		for i := range 5 {
			s := tfState(int64(i+1), "L")
			states = append(states, s)
			if v := mustWrite(t, db, "a", s, store.WriteOptions{}); v.Version != int64(i+1) {
				t.Fatalf("write %d got version %d", i, v.Version)
			}
		}
		vs := mustList(t, db, "a")
		if got := versionNumbers(vs); !slices.Equal(got, []int64{5, 4, 3, 2, 1}) {
			t.Fatalf("ListVersions = %v; want newest first", got)
		}
		for _, v := range vs {
			if v.Current != (v.Version == 5) {
				t.Errorf("version %d current=%v", v.Version, v.Current)
			}
			if v.Serial != v.Version {
				t.Errorf("version %d serial=%d", v.Version, v.Serial)
			}
			got, rv := mustRead(t, db, "a", v.Version)
			if !bytes.Equal(got, states[v.Version-1]) || rv.Version != v.Version || rv.Current != v.Current {
				t.Errorf("ReadState(%d) = %q, %+v", v.Version, got, rv)
			}
		}
		for i := 1; i < len(vs); i++ {
			if !vs[i-1].Timestamp.After(vs[i].Timestamp) {
				t.Errorf("timestamps not increasing: v%d %v, v%d %v", vs[i].Version, vs[i].Timestamp, vs[i-1].Version, vs[i-1].Timestamp)
			}
		}
	})
	t.Run("ByteIdentical", func(t *testing.T) {
		big := func() []byte {
			var b bytes.Buffer
			b.WriteString(`{"version":4,"serial":1,"lineage":"big","resources":[`)
			for i := 0; b.Len() < 5<<20; i++ {
				if i > 0 {
					b.WriteString(",\n  ")
				}
				fmt.Fprintf(&b, `{"name":"r%d","attr":"%s \u00e9"}`, i, strings.Repeat("x", 200))
			}
			b.WriteString("]}")
			return b.Bytes()
		}()
		for name, state := range map[string][]byte{
			"Whitespace":     []byte(" \n\t{ \"serial\" :\t2 ,\r\n \"lineage\" : \"L\" ,\"a\":[ 1 , 2 ] }\n\n"),
			"UnicodeEscapes": []byte(`{"serial":1,"lineage":"\u004c\u00e9","s":"\ud83d\ude00 \u2028 \" \\ \/","é":"ü"}`),
			"RawUnicode":     []byte("{\"serial\":1,\"name\":\"héllo 世界 😀\"}"),
			"KeyOrder":       []byte(`{"z":1,"lineage":"L","a":{"b":[{},[]]},"serial":9}`),
			"FloatsAndBig":   []byte(`{"serial":1,"f":1.0e+2,"n":-0.000,"big":123456789012345678901234567890}`),
			"DuplicateKeys":  []byte(`{"serial":1,"a":1,"a":2}`),
			"Empty":          []byte(`{}`),
			"Large5MB":       big,
		} {
			t.Run(name, func(t *testing.T) {
				db := mustOpen(t)
				mustCreate(t, db, "u")
				in := bytes.Clone(state)
				v := mustWrite(t, db, "u", in, store.WriteOptions{})
				// The caller may reuse its buffer after the write returns.
				for i := range in {
					in[i] = 'X'
				}
				got, _ := mustRead(t, db, "u", 0)
				if !bytes.Equal(got, state) {
					t.Fatalf("ReadState is not byte-identical (%d bytes in, %d out)", len(state), len(got))
				}
				if v.Size != int64(len(state)) {
					t.Fatalf("size = %d; want %d", v.Size, len(state))
				}
				// The returned bytes are the caller's to change.
				for i := range got {
					got[i] = 'Y'
				}
				again, _ := mustRead(t, db, "u", v.Version)
				if !bytes.Equal(again, state) {
					t.Fatal("changing bytes returned by ReadState changed the stored state")
				}
			})
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for name, state := range map[string]string{
			"Array":          `[{"serial":1}]`,
			"String":         `"{}"`,
			"Null":           `null`,
			"Number":         `42`,
			"True":           `true`,
			"InvalidJSON":    `{"serial":1,`,
			"TrailingGarb":   `{"serial":1} x`,
			"TwoObjects":     `{}{}`,
			"TrailingComma":  `{"a":1,}`,
			"SingleQuotes":   `{'a':1}`,
			"Empty":          ``,
			"Whitespace":     " \n\t ",
			"BOM":            "\xef\xbb\xbf{}",
			"UnquotedKey":    `{serial:1}`,
			"NulByte":        "{\"a\":\"\x00\"}",
			"ObjectInString": `"{\"serial\":1}"`,
		} {
			t.Run(name, func(t *testing.T) {
				db := mustOpen(t)
				mustCreate(t, db, "u")
				_, err := db.WriteState("u", []byte(state), store.WriteOptions{})
				wantCode(t, err, store.EINVALID)
				// Nothing stored, and an unknown unit is not created either.
				_, err = db.WriteState("new", []byte(state), store.WriteOptions{Create: true})
				wantCode(t, err, store.EINVALID)
				if _, err := db.GetUnit("new"); store.ErrorCode(err) != store.ENOTFOUND {
					t.Fatalf("invalid write with Create created the unit: %v", err)
				}
				if u := mustGet(t, db, "u"); u.VersionCount != 0 || u.CurrentVersion != 0 {
					t.Fatalf("unit after invalid write = %+v", u)
				}
				if n := bucketLen(t, db, bucketBlobs); n != 0 {
					t.Fatalf("%d blobs stored after invalid write", n)
				}
				if vs := mustList(t, db, "u"); len(vs) != 0 {
					t.Fatalf("versions after invalid write = %+v", vs)
				}
			})
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, err := db.WriteState("nope", tfState(1, "L"), store.WriteOptions{})
		wantCode(t, err, store.ENOTFOUND)
		if n := bucketLen(t, db, bucketUnits); n != 0 {
			t.Fatalf("write without Create made %d units", n)
		}
	})
	t.Run("Create", func(t *testing.T) {
		db := mustOpen(t)
		v, err := db.WriteState("new/unit", tfState(1, "L"), store.WriteOptions{Create: true, Source: store.SourceBackend})
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != 1 || v.Source != store.SourceBackend {
			t.Fatalf("version = %+v", v)
		}
		u := mustGet(t, db, "new/unit")
		if u.VersionCount != 1 || u.CurrentVersion != 1 || !u.Created.Equal(u.Updated) {
			t.Fatalf("created unit = %+v", u)
		}
		// Create on an existing unit is an ordinary write.
		if v := mustWrite(t, db, "new/unit", tfState(2, "L"), store.WriteOptions{Create: true}); v.Version != 2 {
			t.Fatalf("second write = %+v", v)
		}
	})
	t.Run("ErrInvalidID", func(t *testing.T) {
		db := mustOpen(t)
		for _, id := range []string{"", "a/lock", "a__b", "../x", "/a", "a//b", "a/"} {
			_, err := db.WriteState(id, tfState(1, "L"), store.WriteOptions{Create: true})
			wantCode(t, err, store.EINVALID)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustWrite(t, db, "u", tfState(1, "L"), store.WriteOptions{})
		if _, err := db.LockUnit("u", store.Lock{ID: "holder", Who: "alice"}, "", false); err != nil {
			t.Fatal(err)
		}
		for _, lockID := range []string{"", "other", "HOLDER"} {
			_, err := db.WriteState("u", tfState(2, "L"), store.WriteOptions{LockID: lockID})
			wantLocked(t, err, "holder")
			if l := store.ErrorLock(err); l.Who != "alice" {
				t.Fatalf("lock in error = %+v", l)
			}
		}
		// Create does not bypass the lock either.
		_, err := db.WriteState("u", tfState(2, "L"), store.WriteOptions{Create: true})
		wantLocked(t, err, "holder")
		if u := mustGet(t, db, "u"); u.VersionCount != 1 || u.Serial != 1 {
			t.Fatalf("unit after refused writes = %+v", u)
		}
	})
	t.Run("LockHolder", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		if _, err := db.LockUnit("u", store.Lock{ID: "holder"}, "alice", false); err != nil {
			t.Fatal(err)
		}
		v := mustWrite(t, db, "u", tfState(1, "L"), store.WriteOptions{LockID: "holder"})
		if v.Version != 1 {
			t.Fatalf("version = %+v", v)
		}
		// The write keeps the lock.
		if l, err := db.GetLock("u"); err != nil || l == nil || l.ID != "holder" {
			t.Fatalf("lock after write = %+v, %v", l, err)
		}
	})
	t.Run("Unlocked", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		for i, lockID := range []string{"", "anything", "stale-lock-id"} {
			v := mustWrite(t, db, "u", tfState(int64(i), "L"), store.WriteOptions{LockID: lockID})
			if v.Version != int64(i+1) {
				t.Fatalf("write %d = %+v", i, v)
			}
		}
	})
}

func TestStore_ReadState(t *testing.T) {
	t.Run("NoState", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		b, v, err := db.ReadState("u", 0)
		if b != nil || v != nil || err != nil {
			t.Fatalf("ReadState of empty unit = %q, %+v, %v; want nil, nil, nil", b, v, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, _, err := db.ReadState("nope", 0)
		wantCode(t, err, store.ENOTFOUND)
		mustCreate(t, db, "u")
		for _, n := range []int64{1, -1} {
			_, _, err = db.ReadState("u", n)
			wantCode(t, err, store.ENOTFOUND)
		}
		mustWrite(t, db, "u", tfState(1, "L"), store.WriteOptions{})
		for _, n := range []int64{2, 1000, -1} {
			_, _, err = db.ReadState("u", n)
			wantCode(t, err, store.ENOTFOUND)
		}
	})
}

func TestStore_ListVersions(t *testing.T) {
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, err := db.ListVersions("nope")
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("Empty", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		vs, err := db.ListVersions("u")
		if err != nil || vs == nil || len(vs) != 0 {
			t.Fatalf("ListVersions of empty unit = %#v, %v; want non-nil empty slice", vs, err)
		}
	})
	t.Run("PerUnit", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustCreate(t, db, "a/b")
		mustWrite(t, db, "a", tfState(1, "A"), store.WriteOptions{})
		mustWrite(t, db, "a/b", tfState(1, "B"), store.WriteOptions{})
		mustWrite(t, db, "a/b", tfState(2, "B"), store.WriteOptions{})
		if got := versionNumbers(mustList(t, db, "a")); !slices.Equal(got, []int64{1}) {
			t.Fatalf("versions of a = %v", got)
		}
		if got := versionNumbers(mustList(t, db, "a/b")); !slices.Equal(got, []int64{2, 1}) {
			t.Fatalf("versions of a/b = %v", got)
		}
	})
}

func TestStore_Retention(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		db.MaxVersions = 3
		mustCreate(t, db, "u")
		var states [][]byte
		for i := range 10 {
			s := tfState(int64(i+1), "L")
			states = append(states, s)
			mustWrite(t, db, "u", s, store.WriteOptions{})
			checkInvariants(t, db)
		}
		if got := versionNumbers(mustList(t, db, "u")); !slices.Equal(got, []int64{10, 9, 8}) {
			t.Fatalf("versions after 10 writes = %v; want [10 9 8]", got)
		}
		for n := int64(1); n <= 7; n++ {
			_, _, err := db.ReadState("u", n)
			wantCode(t, err, store.ENOTFOUND)
		}
		for n := int64(8); n <= 10; n++ {
			if got, _ := mustRead(t, db, "u", n); !bytes.Equal(got, states[n-1]) {
				t.Fatalf("version %d = %q", n, got)
			}
		}
		if u := mustGet(t, db, "u"); u.VersionCount != 3 || u.CurrentVersion != 10 {
			t.Fatalf("unit = %+v", u)
		}
		if n := bucketLen(t, db, bucketBlobs); n != 3 {
			t.Fatalf("%d blobs kept; want 3", n)
		}
		// Version numbers are never reused after pruning.
		if v := mustWrite(t, db, "u", tfState(11, "L"), store.WriteOptions{}); v.Version != 11 {
			t.Fatalf("next version = %d; want 11", v.Version)
		}
		if got := versionNumbers(mustList(t, db, "u")); !slices.Equal(got, []int64{11, 10, 9}) {
			t.Fatalf("versions = %v; want [11 10 9]", got)
		}
	})
	t.Run("KeepOne", func(t *testing.T) {
		db := mustOpen(t)
		db.MaxVersions = 1
		mustCreate(t, db, "u")
		for i := range 4 {
			s := tfState(int64(i), "L")
			v := mustWrite(t, db, "u", s, store.WriteOptions{})
			got, cur := mustRead(t, db, "u", 0)
			if !bytes.Equal(got, s) || cur.Version != v.Version || !cur.Current {
				t.Fatalf("current after write %d = %q, %+v", i, got, cur)
			}
			if vs := versionNumbers(mustList(t, db, "u")); !slices.Equal(vs, []int64{v.Version}) {
				t.Fatalf("versions = %v; want only the current one", vs)
			}
		}
	})
	t.Run("Unlimited", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		for i := range 150 {
			mustWrite(t, db, "u", tfState(int64(i), "L"), store.WriteOptions{})
		}
		if u := mustGet(t, db, "u"); u.VersionCount != 150 {
			t.Fatalf("version_count = %d; want 150 with MaxVersions 0", u.VersionCount)
		}
	})
	t.Run("Lowered", func(t *testing.T) {
		// A lower limit (e.g. after a restart with a new flag) prunes
		// everything beyond it on the next write.
		db := mustOpen(t)
		mustCreate(t, db, "u")
		for i := range 6 {
			mustWrite(t, db, "u", tfState(int64(i), "L"), store.WriteOptions{})
		}
		db.MaxVersions = 2
		mustWrite(t, db, "u", tfState(7, "L"), store.WriteOptions{})
		if got := versionNumbers(mustList(t, db, "u")); !slices.Equal(got, []int64{7, 6}) {
			t.Fatalf("versions = %v; want [7 6]", got)
		}
	})
	t.Run("SharedBlob", func(t *testing.T) {
		// Pruning a version whose content the current one shares keeps the blob.
		db := mustOpen(t)
		db.MaxVersions = 2
		mustCreate(t, db, "u")
		same := tfState(1, "L")
		v := mustWrite(t, db, "u", same, store.WriteOptions{})
		mustWrite(t, db, "u", same, store.WriteOptions{})
		mustWrite(t, db, "u", same, store.WriteOptions{})
		if refs := blobRefs(t, db); len(refs) != 1 || refs[v.SHA256] != 2 {
			t.Fatalf("refs = %v; want %s:2", refs, v.SHA256)
		}
		if got, _ := mustRead(t, db, "u", 0); !bytes.Equal(got, same) {
			t.Fatalf("current = %q", got)
		}
	})
}

// paddedState returns a valid state document of exactly n bytes (n >= 40)
// whose padding varies, so chunks stored out of order would not read back
// equal.
func paddedState(n int) []byte {
	b := []byte(`{"serial":1,"lineage":"L","pad":"`)
	for i := 0; len(b) < n-2; i++ {
		b = append(b, byte('a'+(i+i/1000)%26))
	}
	return append(b, `"}`...)
}

// blobChunkSizes returns the raw chunk sizes of the blob with digest sum, in
// chunk index order, and fails unless the chunk keys are 4-byte indices.
func blobChunkSizes(t testing.TB, db *store.DB, sum string) []int {
	t.Helper()
	var sizes []int
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs).Bucket([]byte(sum))
		if b == nil {
			return fmt.Errorf("blob %s is not a bucket of %q", sum, bucketBlobs)
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 4 || binary.BigEndian.Uint32(k) != uint32(len(sizes)) {
				return fmt.Errorf("blob %s chunk key %x; want index %d", sum, k, len(sizes))
			}
			sizes = append(sizes, len(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

func TestStore_BlobChunks(t *testing.T) {
	const mib = 1 << 20
	for name, tc := range map[string]struct {
		state []byte
		want  []int
	}{
		"EmptyObject":    {[]byte(`{}`), []int{2}},
		"Small":          {tfState(1, "L"), []int{len(tfState(1, "L"))}},
		"Exactly1MiB":    {paddedState(mib), []int{mib}},
		"1MiBPlusOne":    {paddedState(mib + 1), []int{mib, 1}},
		"Exactly2MiB":    {paddedState(2 * mib), []int{mib, mib}},
		"TwoAndAHalfMiB": {paddedState(2*mib + mib/2), []int{mib, mib, mib / 2}},
	} {
		t.Run(name, func(t *testing.T) {
			if len(tc.state) != sumInts(tc.want) {
				t.Fatalf("test state is %d bytes; want %d", len(tc.state), sumInts(tc.want))
			}
			db := mustOpen(t)
			mustCreate(t, db, "a")
			mustCreate(t, db, "b")
			v := mustWrite(t, db, "a", bytes.Clone(tc.state), store.WriteOptions{})
			sum := sha256.Sum256(tc.state)
			if v.SHA256 != hex.EncodeToString(sum[:]) || v.Size != int64(len(tc.state)) {
				t.Fatalf("version = %+v; want sha256 %x, size %d", v, sum, len(tc.state))
			}
			if got := blobChunkSizes(t, db, v.SHA256); !slices.Equal(got, tc.want) {
				t.Fatalf("chunk sizes = %v; want %v", got, tc.want)
			}
			if got, _ := mustRead(t, db, "a", 0); !bytes.Equal(got, tc.state) {
				t.Fatalf("ReadState is not byte-identical (%d bytes in, %d out)", len(tc.state), len(got))
			}
			// The same content in another unit shares the chunked blob.
			mustWrite(t, db, "b", bytes.Clone(tc.state), store.WriteOptions{})
			if n := bucketLen(t, db, bucketBlobs); n != 1 {
				t.Fatalf("%d blobs; want 1", n)
			}
			if got, _ := mustRead(t, db, "b", 0); !bytes.Equal(got, tc.state) {
				t.Fatalf("shared blob read from b is not byte-identical")
			}
			checkInvariants(t, db)
			// Deleting both units drops the blob bucket with all its chunks.
			for _, id := range []string{"a", "b"} {
				if err := db.DeleteUnit(id, false); err != nil {
					t.Fatal(err)
				}
			}
			if n, m := bucketLen(t, db, bucketBlobs), bucketLen(t, db, bucketBlobRefs); n != 0 || m != 0 {
				t.Fatalf("%d blobs, %d refcounts left after deleting both units", n, m)
			}
		})
	}
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestStore_SharedBlob(t *testing.T) {
	t.Run("AcrossUnits", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		mustCreate(t, db, "b")
		state := tfState(1, "same")
		va := mustWrite(t, db, "a", state, store.WriteOptions{})
		vb := mustWrite(t, db, "b", bytes.Clone(state), store.WriteOptions{})
		if va.SHA256 != vb.SHA256 {
			t.Fatalf("identical content has digests %s and %s", va.SHA256, vb.SHA256)
		}
		if refs := blobRefs(t, db); len(refs) != 1 || refs[va.SHA256] != 2 {
			t.Fatalf("refs = %v; want %s:2", refs, va.SHA256)
		}
		if n := bucketLen(t, db, bucketBlobs); n != 1 {
			t.Fatalf("%d blobs; want 1", n)
		}
		if err := db.DeleteUnit("a", false); err != nil {
			t.Fatal(err)
		}
		if refs := blobRefs(t, db); len(refs) != 1 || refs[va.SHA256] != 1 {
			t.Fatalf("refs after deleting a = %v; want %s:1", refs, va.SHA256)
		}
		if got, _ := mustRead(t, db, "b", 0); !bytes.Equal(got, state) {
			t.Fatalf("b after deleting a = %q", got)
		}
		if err := db.DeleteUnit("b", false); err != nil {
			t.Fatal(err)
		}
		if n, m := bucketLen(t, db, bucketBlobs), bucketLen(t, db, bucketBlobRefs); n != 0 || m != 0 {
			t.Fatalf("%d blobs, %d refcounts left after deleting both units", n, m)
		}
	})
	t.Run("WithinUnit", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "a")
		state := tfState(1, "same")
		v1 := mustWrite(t, db, "a", state, store.WriteOptions{})
		v2 := mustWrite(t, db, "a", state, store.WriteOptions{})
		if v1.Version == v2.Version || v1.SHA256 != v2.SHA256 {
			t.Fatalf("versions %+v, %+v", v1, v2)
		}
		if refs := blobRefs(t, db); refs[v1.SHA256] != 2 {
			t.Fatalf("refs = %v; want %s:2", refs, v1.SHA256)
		}
		if err := db.DeleteUnit("a", false); err != nil {
			t.Fatal(err)
		}
		if n, m := bucketLen(t, db, bucketBlobs), bucketLen(t, db, bucketBlobRefs); n != 0 || m != 0 {
			t.Fatalf("%d blobs, %d refcounts left", n, m)
		}
	})
}

// restoreState has a nested "serial" key before the top-level one, odd
// spacing and escapes, so that only a surgical edit keeps every other byte.
const restoreState = "{\n  \"version\": 4,\n  \"resources\": [{\"serial\": 7, \"meta\": {\"serial\":7}}],\n" +
	"  \"s\": \"\\\"serial\\\": 7\",\n  \"serial\" :  7 ,\n  \"lineage\": \"lin\\u0065\"\n}\n"

func TestStore_Restore(t *testing.T) {
	setup := func(t *testing.T) (*store.DB, *store.Version) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		v1 := mustWrite(t, db, "u", []byte(restoreState), store.WriteOptions{Who: "alice"})
		mustWrite(t, db, "u", tfState(8, "line"), store.WriteOptions{})
		mustWrite(t, db, "u", tfState(11, "line"), store.WriteOptions{})
		return db, v1
	}
	want := strings.Replace(restoreState, "\"serial\" :  7 ,", "\"serial\" :  12 ,", 1)
	check := func(t *testing.T, db *store.DB, res *store.RestoreResult, v1 *store.Version) {
		t.Helper()
		if res.UnitID != "u" || res.RestoredVersion != 1 || res.NewVersion != 4 ||
			!res.RestoredTimestamp.Equal(v1.Timestamp) || !res.SerialRewritten || res.Serial != 12 {
			t.Fatalf("Restore = %+v", res)
		}
		got, cur := mustRead(t, db, "u", 0)
		if string(got) != want {
			t.Fatalf("restored bytes =\n%s\nwant\n%s", got, want)
		}
		if cur.Version != 4 || cur.Serial != 12 || cur.Lineage != "line" || cur.Source != store.SourceRestore ||
			cur.Who != "bob" || !cur.Current || cur.Encrypted {
			t.Fatalf("restored version = %+v", cur)
		}
		if u := mustGet(t, db, "u"); u.Serial != 12 || u.CurrentVersion != 4 || u.VersionCount != 4 || u.Size != int64(len(want)) {
			t.Fatalf("unit after restore = %+v", u)
		}
		// The old version is untouched.
		if old, _ := mustRead(t, db, "u", 1); string(old) != restoreState {
			t.Fatalf("version 1 changed: %s", old)
		}
	}
	t.Run("ByVersion", func(t *testing.T) {
		db, v1 := setup(t)
		res, err := db.Restore("u", store.RestoreRequest{Version: 1, Who: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, db, res, v1)
	})
	t.Run("ByTimestamp", func(t *testing.T) {
		db, v1 := setup(t)
		listed := mustList(t, db, "u")[2] // oldest, exactly as listed
		if listed.Version != 1 {
			t.Fatalf("oldest listed = %+v", listed)
		}
		res, err := db.Restore("u", store.RestoreRequest{Timestamp: listed.Timestamp, Who: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, db, res, v1)
	})
	t.Run("ByTimestampInOtherZone", func(t *testing.T) {
		db, v1 := setup(t)
		ts := v1.Timestamp.In(time.FixedZone("X", -7*3600))
		res, err := db.Restore("u", store.RestoreRequest{Timestamp: ts, Who: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, db, res, v1)
	})
	t.Run("Twice", func(t *testing.T) {
		// Restoring again keeps history monotonic.
		db, _ := setup(t)
		for i, want := range []int64{12, 13} {
			res, err := db.Restore("u", store.RestoreRequest{Version: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.Serial != want || res.NewVersion != int64(5+i-1) {
				t.Fatalf("restore %d = %+v", i, res)
			}
			b, _ := mustRead(t, db, "u", 0)
			if info, err := store.ParseState(b); err != nil || info.Serial != want {
				t.Fatalf("restored state serial = %+v, %v", info, err)
			}
		}
	})
	t.Run("NoSerial", func(t *testing.T) {
		// A state without a top-level serial is restored unchanged, and
		// neither the answer nor the version claims a rewritten serial.
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := `{"lineage":"L","resources":[{"serial":3}]}`
		mustWrite(t, db, "u", []byte(state), store.WriteOptions{})
		mustWrite(t, db, "u", tfState(5, "L"), store.WriteOptions{})
		res, err := db.Restore("u", store.RestoreRequest{Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.SerialRewritten || res.Serial != 0 || res.NewVersion != 3 {
			t.Fatalf("Restore = %+v; want serial_rewritten false, serial 0", res)
		}
		got, cur := mustRead(t, db, "u", 0)
		if string(got) != state || cur.Serial != 0 {
			t.Fatalf("restored = %s (serial %d); want %s (serial 0)", got, cur.Serial, state)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db, v1 := setup(t)
		for _, req := range []store.RestoreRequest{
			{Version: 99}, {Version: -1},
			{Timestamp: v1.Timestamp.Add(time.Nanosecond)},
			{Timestamp: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
		} {
			_, err := db.Restore("u", req)
			wantCode(t, err, store.ENOTFOUND)
		}
		_, err := db.Restore("nope", store.RestoreRequest{Version: 1})
		wantCode(t, err, store.ENOTFOUND)
		mustCreate(t, db, "empty")
		_, err = db.Restore("empty", store.RestoreRequest{Version: 1})
		wantCode(t, err, store.ENOTFOUND)
		if u := mustGet(t, db, "u"); u.VersionCount != 3 || u.CurrentVersion != 3 {
			t.Fatalf("unit after failed restores = %+v", u)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db, _ := setup(t)
		_, err := db.Restore("u", store.RestoreRequest{})
		wantCode(t, err, store.EINVALID)
	})
	t.Run("Pruned", func(t *testing.T) {
		db, _ := setup(t)
		db.MaxVersions = 2
		mustWrite(t, db, "u", tfState(12, "line"), store.WriteOptions{})
		_, err := db.Restore("u", store.RestoreRequest{Version: 1})
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("ErrLocked", func(t *testing.T) {
		db, _ := setup(t)
		if _, err := db.LockUnit("u", store.Lock{ID: "holder"}, "alice", false); err != nil {
			t.Fatal(err)
		}
		for _, lockID := range []string{"", "other"} {
			_, err := db.Restore("u", store.RestoreRequest{Version: 1, LockID: lockID})
			wantLocked(t, err, "holder")
		}
		// The lock rule comes first: a locked unit does not reveal whether
		// a version exists.
		_, err := db.Restore("u", store.RestoreRequest{Version: 99})
		wantLocked(t, err, "holder")
		if u := mustGet(t, db, "u"); u.VersionCount != 3 {
			t.Fatalf("unit after refused restore = %+v", u)
		}
	})
	t.Run("LockHolder", func(t *testing.T) {
		db, v1 := setup(t)
		if _, err := db.LockUnit("u", store.Lock{ID: "holder"}, "alice", false); err != nil {
			t.Fatal(err)
		}
		res, err := db.Restore("u", store.RestoreRequest{Version: 1, LockID: "holder", Who: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, db, res, v1)
	})
	t.Run("Encrypted", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		env := `{"serial":3,"lineage":"x","meta":{"key_provider.pbkdf2.k":"eyJzYWx0IjoiYWJjIn0="},"encrypted_data":"c2VjcmV0IGJ5dGVz+/==","encryption_version":"v0"}`
		v1 := mustWrite(t, db, "u", []byte(env), store.WriteOptions{})
		if !v1.Encrypted || v1.Serial != 3 || v1.Lineage != "x" {
			t.Fatalf("encrypted version = %+v", v1)
		}
		env2 := `{"serial":4,"lineage":"x","meta":{"key_provider.pbkdf2.k":"eyJzYWx0IjoiZGVmIn0="},"encrypted_data":"b3RoZXI=","encryption_version":"v0"}`
		mustWrite(t, db, "u", []byte(env2), store.WriteOptions{})
		res, err := db.Restore("u", store.RestoreRequest{Version: 1, Who: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		if res.SerialRewritten || res.Serial != 3 || res.RestoredVersion != 1 || res.NewVersion != 3 {
			t.Fatalf("Restore of encrypted state = %+v", res)
		}
		got, cur := mustRead(t, db, "u", 0)
		if string(got) != env {
			t.Fatalf("restored envelope = %s; want byte-identical %s", got, env)
		}
		if cur.SHA256 != v1.SHA256 || !cur.Encrypted || cur.Serial != 3 || cur.Source != store.SourceRestore {
			t.Fatalf("restored version = %+v", cur)
		}
		if refs := blobRefs(t, db); refs[v1.SHA256] != 2 {
			t.Fatalf("refs = %v; want the envelope's blob shared", refs)
		}
		if u := mustGet(t, db, "u"); !u.Encrypted || u.Serial != 3 {
			t.Fatalf("unit after restore = %+v", u)
		}
	})
	t.Run("PlainOverEncrypted", func(t *testing.T) {
		// Restoring a plain state while the current one is encrypted
		// rewrites the serial to the envelope's serial + 1.
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustWrite(t, db, "u", tfState(2, "x"), store.WriteOptions{})
		mustWrite(t, db, "u", []byte(`{"serial":9,"lineage":"x","encrypted_data":"AA==","encryption_version":"v0"}`), store.WriteOptions{})
		res, err := db.Restore("u", store.RestoreRequest{Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !res.SerialRewritten || res.Serial != 10 {
			t.Fatalf("Restore = %+v", res)
		}
		if got, _ := mustRead(t, db, "u", 0); !bytes.Equal(got, tfState(10, "x")) {
			t.Fatalf("restored = %s", got)
		}
		if u := mustGet(t, db, "u"); u.Encrypted {
			t.Fatalf("unit still marked encrypted: %+v", u)
		}
	})
}

func TestStore_WriteState_Concurrent(t *testing.T) {
	db := mustOpen(t)
	mustCreate(t, db, "u")
	const n = 32
	var wg sync.WaitGroup
	versions := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			v, err := db.WriteState("u", tfState(int64(i), fmt.Sprintf("w%d", i)), store.WriteOptions{Who: fmt.Sprint(i)})
			errs[i] = err
			if err == nil {
				versions[i] = v.Version
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("version numbers = %v; want 1..%d each once", versions, n)
		}
	}
	vs := mustList(t, db, "u")
	if len(vs) != n {
		t.Fatalf("%d versions stored; want %d", len(vs), n)
	}
	// Each stored version holds what its writer sent.
	for _, v := range vs {
		b, _ := mustRead(t, db, "u", v.Version)
		var i int64
		if _, err := fmt.Sscan(v.Who, &i); err != nil || !bytes.Equal(b, tfState(i, fmt.Sprintf("w%d", i))) {
			t.Fatalf("version %d (who %q) holds %s", v.Version, v.Who, b)
		}
	}
	// Timestamps follow the commit order: a later version is never older.
	for i := 1; i < len(vs); i++ {
		if vs[i].Timestamp.After(vs[i-1].Timestamp) {
			t.Fatalf("version %d has timestamp %v, after version %d's %v",
				vs[i].Version, vs[i].Timestamp, vs[i-1].Version, vs[i-1].Timestamp)
		}
	}
	if u := mustGet(t, db, "u"); u.VersionCount != n || u.CurrentVersion != n || !u.Updated.Equal(vs[0].Timestamp) {
		t.Fatalf("unit = %+v; want updated = %v", u, vs[0].Timestamp)
	}
}
