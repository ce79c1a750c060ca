package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// blobChunk is the size of one stored piece of a state blob.
//
// Each blob is its own sub-bucket of "blobs" (named by its SHA-256 hex)
// holding chunks keyed by index. bbolt rewrites a whole leaf when a key is
// added to it, copying every value on it; with one flat bucket of whole
// states, storing a new 50 MB state re-read and re-wrote its 50 MB
// neighbours. A bucket per blob keeps a write to new pages only, and
// chunks keep each page allocation small.
const blobChunk = 1 << 20

// putBlob stores state under its digest, or adds a reference to the copy
// already there.
func putBlob(tx *bolt.Tx, sum string, state []byte) error {
	refs := tx.Bucket(bucketBlobRefs)
	n := uint64(0)
	if v := refs.Get([]byte(sum)); v != nil {
		n = binary.BigEndian.Uint64(v)
	} else if err := writeBlob(tx, sum, state); err != nil {
		return err
	}
	return refs.Put([]byte(sum), u64(n+1))
}

func writeBlob(tx *bolt.Tx, sum string, state []byte) error {
	b, err := tx.Bucket(bucketBlobs).CreateBucket([]byte(sum))
	if err != nil {
		return fmt.Errorf("blob %s: %w", sum, err)
	}
	b.FillPercent = 1.0 // chunks are appended in key order
	for i := 0; i == 0 || i*blobChunk < len(state); i++ {
		end := min((i+1)*blobChunk, len(state))
		if err := b.Put(u32(uint32(i)), state[i*blobChunk:end]); err != nil {
			return err
		}
	}
	return nil
}

// getBlob returns a copy of the blob with digest sum, or nil if missing.
func getBlob(tx *bolt.Tx, sum string, size int64) []byte {
	b := tx.Bucket(bucketBlobs).Bucket([]byte(sum))
	if b == nil {
		return nil
	}
	out := make([]byte, 0, max(size, 0))
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		out = append(out, v...)
	}
	return out
}

// dropBlob removes one reference to a blob and the blob with the last one.
func dropBlob(tx *bolt.Tx, sum string) error {
	refs := tx.Bucket(bucketBlobRefs)
	v := refs.Get([]byte(sum))
	if v == nil {
		return fmt.Errorf("blob %s has no reference count", sum)
	}
	if n := binary.BigEndian.Uint64(v); n > 1 {
		return refs.Put([]byte(sum), u64(n-1))
	}
	if err := refs.Delete([]byte(sum)); err != nil {
		return err
	}
	return tx.Bucket(bucketBlobs).DeleteBucket([]byte(sum))
}

func u32(n uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, n)
	return b
}
