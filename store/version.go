package store

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sources of a version.
const (
	SourceAPI     = "api"
	SourceBackend = "backend"
	SourceTFE     = "tfe"
	SourceS3      = "s3"
	SourceRestore = "restore"
)

// Version is one stored copy of a unit's state.
type Version struct {
	Version   int64     `json:"version"`
	Timestamp time.Time `json:"timestamp"`
	Hash      string    `json:"hash"`   // first 8 hex chars of SHA-256
	SHA256    string    `json:"sha256"` // full hex digest
	MD5       string    `json:"md5"`    // hex MD5 (what Terraform Cloud clients send)
	Size      int64     `json:"size"`
	Serial    int64     `json:"serial"`
	Lineage   string    `json:"lineage"`
	Who       string    `json:"who"`
	Source    string    `json:"source"`
	Encrypted bool      `json:"encrypted,omitempty"`
	Current   bool      `json:"current"`
	// TFEID is the Terraform Cloud state-version ID the version was
	// declared under, when it came through the create-then-upload flow.
	TFEID string `json:"tfe_id,omitempty"`
}

// WriteOptions describe one state write.
type WriteOptions struct {
	LockID string // must name the holder's lock when the unit is locked
	Who    string // principal recorded in the version
	Source string // SourceAPI, SourceBackend, ...
	Create bool   // create an unknown unit instead of ENOTFOUND
	TFEID  string // Terraform Cloud state-version ID, recorded in the version
}

// WriteState stores state as the new current version of unit id. The state
// must be a JSON object. Returns EINVALID, ENOTFOUND, ELOCKED.
func (db *DB) WriteState(id string, state []byte, opt WriteOptions) (*Version, error) {
	c, err := newContent(state)
	if err != nil {
		return nil, err
	}
	var out *Version
	err = db.batch(func(tx *bolt.Tx, now time.Time) error {
		out = nil
		if err := ensureUnit(tx, id, now, opt.Create); err != nil {
			return err
		} else if err := checkLock(tx, id, opt.LockID); err != nil {
			return err
		}
		if out, err = addVersion(tx, db.MaxVersions, id, c, opt, now); err != nil {
			return err
		}
		return db.audit(tx, now, AuditWrite, id, fmt.Sprintf("version %d via %s", out.Version, opt.Source))
	})
	return out, err
}

// content is a state with the digests and fields computed before a write
// transaction starts, so the transaction itself does no hashing.
type content struct {
	data []byte
	sha  [32]byte
	md5  [16]byte
	info *StateInfo
	deps *stateDeps // outputs and data sources for the graph (nil: read them in the transaction)
}

// newContent validates state and computes its digests. Returns EINVALID.
func newContent(state []byte) (*content, error) {
	info, err := ParseState(state)
	if err != nil {
		return nil, err
	}
	return &content{data: state, sha: sha256.Sum256(state), md5: md5.Sum(state), info: info, deps: readDeps(state, info)}, nil
}

// ReadState returns the bytes and metadata of version n of unit id (n = 0:
// the current one). A unit with no state yet gives (nil, nil, nil).
// Returns ENOTFOUND (unit or version).
func (db *DB) ReadState(id string, n int64) ([]byte, *Version, error) {
	var data []byte
	var ver *Version
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		if ver, err = resolveVersion(tx, id, n); err != nil || ver == nil {
			return err
		}
		if data = getBlob(tx, ver.SHA256, ver.Size); data == nil {
			return fmt.Errorf("blob %s of %s version %d is missing", ver.SHA256, id, ver.Version)
		}
		return nil
	})
	return data, ver, err
}

// resolveVersion returns version n of unit id, or its current version for
// n = 0; nil (and no error) for n = 0 when the unit has no state yet.
// Returns ENOTFOUND (unit or version).
func resolveVersion(tx *bolt.Tx, id string, n int64) (*Version, error) {
	u, err := readUnit(tx, id)
	if err != nil {
		return nil, err
	} else if n == 0 && u.CurrentVersion == 0 {
		return nil, nil
	} else if n == 0 {
		n = u.CurrentVersion
	}
	return getVersion(tx, u, n)
}

// ListVersions returns the versions of unit id, newest first.
// Returns ENOTFOUND.
func (db *DB) ListVersions(id string) ([]*Version, error) {
	out := []*Version{}
	err := db.view(func(tx *bolt.Tx) error {
		u, err := readUnit(tx, id)
		if err != nil {
			return err
		}
		vb := tx.Bucket(bucketVersions).Bucket([]byte(id))
		if vb == nil {
			return nil
		}
		c := vb.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			ver, err := decodeVersion(u, v)
			if err != nil {
				return err
			}
			out = append(out, ver)
		}
		return nil
	})
	return out, err
}

// RestoreRequest names the version to restore: by number, or by timestamp.
type RestoreRequest struct {
	Version   int64
	Timestamp time.Time
	LockID    string
	Who       string
}

// RestoreResult reports a restore.
type RestoreResult struct {
	UnitID            string    `json:"unit_id"`
	RestoredVersion   int64     `json:"restored_version"`
	NewVersion        int64     `json:"new_version"`
	RestoredTimestamp time.Time `json:"restored_timestamp"`
	SerialRewritten   bool      `json:"serial_rewritten"`
	Serial            int64     `json:"serial"`
}

// Restore writes the bytes of an earlier version as a new current version,
// with the top-level serial set to current serial + 1 so Terraform accepts
// its next write (an encrypted state is restored byte for byte). The lock
// rule is the one of WriteState. Returns EINVALID, ENOTFOUND, ELOCKED.
func (db *DB) Restore(id string, req RestoreRequest) (*RestoreResult, error) {
	var out *RestoreResult
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		u, err := readUnit(tx, id)
		if err != nil {
			return err
		} else if err := checkLock(tx, id, req.LockID); err != nil {
			return err
		}
		old, err := findVersion(tx, u, req)
		if err != nil {
			return err
		}
		blob := getBlob(tx, old.SHA256, old.Size)
		if blob == nil {
			return fmt.Errorf("blob of %s version %d is missing", id, old.Version)
		}
		info, err := ParseState(blob)
		if err != nil {
			return err
		}
		out = &RestoreResult{UnitID: id, RestoredVersion: old.Version, RestoredTimestamp: old.Timestamp}
		state := blob // getBlob returns a copy
		// A state without a top-level serial has nothing to rewrite; it is
		// restored as is and its metadata says so.
		if !info.Encrypted && info.serialSpan[0] != info.serialSpan[1] {
			state = WithSerial(blob, info, u.Serial+1)
			info.Serial, out.SerialRewritten = u.Serial+1, true
		}
		out.Serial = info.Serial
		opt := WriteOptions{Who: req.Who, Source: SourceRestore}
		c := &content{data: state, sha: sha256.Sum256(state), md5: md5.Sum(state), info: info}
		nv, err := addVersion(tx, db.MaxVersions, id, c, opt, now)
		if err != nil {
			return err
		}
		out.NewVersion = nv.Version
		return db.audit(tx, now, AuditRestore, id, fmt.Sprintf("version %d restored as %d", old.Version, nv.Version))
	})
	return out, err
}

func findVersion(tx *bolt.Tx, u *Unit, req RestoreRequest) (*Version, error) {
	if req.Version != 0 {
		return getVersion(tx, u, req.Version)
	}
	if req.Timestamp.IsZero() {
		return nil, Errorf(EINVALID, "restore needs a version number or a timestamp")
	}
	vb := tx.Bucket(bucketVersions).Bucket([]byte(u.ID))
	if vb != nil {
		c := vb.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			ver, err := decodeVersion(u, v)
			if err != nil {
				return nil, err
			} else if ver.Timestamp.Equal(req.Timestamp) {
				return ver, nil
			}
		}
	}
	return nil, Errorf(ENOTFOUND, "unit %q has no version with timestamp %s", u.ID, req.Timestamp.Format(time.RFC3339Nano))
}

func getVersion(tx *bolt.Tx, u *Unit, n int64) (*Version, error) {
	vb := tx.Bucket(bucketVersions).Bucket([]byte(u.ID))
	if vb == nil || n <= 0 {
		return nil, Errorf(ENOTFOUND, "unit %q has no version %d", u.ID, n)
	}
	v := vb.Get(u64(uint64(n)))
	if v == nil {
		return nil, Errorf(ENOTFOUND, "unit %q has no version %d", u.ID, n)
	}
	return decodeVersion(u, v)
}

func decodeVersion(u *Unit, v []byte) (*Version, error) {
	var ver Version
	if err := json.Unmarshal(v, &ver); err != nil {
		return nil, fmt.Errorf("decode version: %w", err)
	}
	ver.Current = ver.Version == u.CurrentVersion
	return &ver, nil
}

// addVersion stores state as the new current version of an existing unit,
// updates the unit record and prunes old versions beyond maxVersions.
func addVersion(tx *bolt.Tx, maxVersions int, id string, c *content, opt WriteOptions, now time.Time) (*Version, error) {
	u := getUnit(tx, id)
	vb, err := tx.Bucket(bucketVersions).CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return nil, err
	}
	n, err := vb.NextSequence()
	if err != nil {
		return nil, err
	}
	hexsum := hex.EncodeToString(c.sha[:])
	ver := &Version{
		Version: int64(n), Timestamp: now, Hash: hexsum[:8], SHA256: hexsum, MD5: hex.EncodeToString(c.md5[:]),
		Size: int64(len(c.data)), Serial: c.info.Serial, Lineage: c.info.Lineage,
		Who: opt.Who, Source: opt.Source, Encrypted: c.info.Encrypted, TFEID: opt.TFEID,
	}
	if err := putBlob(tx, hexsum, c.data); err != nil {
		return nil, err
	} else if err := putJSON(vb, u64(n), ver); err != nil {
		return nil, err
	}
	u.Updated, u.Size, u.Serial, u.Lineage, u.Encrypted = now, ver.Size, ver.Serial, ver.Lineage, ver.Encrypted
	u.CurrentVersion = ver.Version
	u.VersionCount++
	if err := prune(tx, vb, u, maxVersions); err != nil {
		return nil, err
	} else if err := putUnit(tx, u); err != nil {
		return nil, err
	} else if err := updateEdges(tx, id, c, now); err != nil {
		return nil, err
	}
	ver.Current = true
	return ver, nil
}

// prune removes the oldest versions beyond max, never the current one.
func prune(tx *bolt.Tx, vb *bolt.Bucket, u *Unit, max int) error {
	c := vb.Cursor()
	for k, v := c.First(); max > 0 && u.VersionCount > max && k != nil; k, v = c.First() {
		if int64(binary.BigEndian.Uint64(k)) == u.CurrentVersion {
			return nil
		}
		var ver Version
		if err := json.Unmarshal(v, &ver); err != nil {
			return err
		} else if err := dropBlob(tx, ver.SHA256); err != nil {
			return err
		} else if err := dropOutputs(tx, u.ID, ver.Version); err != nil {
			return err
		} else if err := c.Delete(); err != nil {
			return err
		}
		u.VersionCount--
	}
	return nil
}
