package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Output is one root-module output of a state version, in Terraform's
// state shape: the value, its cty type JSON and whether it is sensitive.
type Output struct {
	Value     json.RawMessage `json:"value"`
	Type      json.RawMessage `json:"type,omitempty"`
	Sensitive bool            `json:"sensitive,omitempty"`
}

// Outputs returns the outputs of version n of unit id (0 = current) and
// that version. They come from what the writer declared (Terraform Cloud's
// json-state-outputs) or, failing that, from the state's top-level
// "outputs". An encrypted state has none. A unit with no state gives an
// empty map and a nil version. Returns ENOTFOUND.
func (db *DB) Outputs(id string, n int64) (map[string]Output, *Version, error) {
	outs := map[string]Output{}
	var ver *Version
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		if ver, err = resolveVersion(tx, id, n); err != nil || ver == nil {
			return err
		}
		n = ver.Version
		if ob := tx.Bucket(bucketOutputs).Bucket([]byte(id)); ob != nil {
			if v := ob.Get(u64(uint64(n))); v != nil {
				return json.Unmarshal(v, &outs)
			}
		}
		if ver.Encrypted {
			return nil
		}
		data := getBlob(tx, ver.SHA256, ver.Size)
		if data == nil {
			return fmt.Errorf("blob of %s version %d is missing", id, n)
		}
		outs, err = StateOutputs(data)
		return err
	})
	if outs == nil && err == nil { // declared outputs of "null"
		outs = map[string]Output{}
	}
	return outs, ver, err
}

// StateOutputs reads the top-level "outputs" of a state document.
// Returns EINVALID when the state is not a JSON object.
func StateOutputs(state []byte) (map[string]Output, error) {
	outs := map[string]Output{}
	if _, err := ParseState(state); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	err := topLevel(state, func(key string, start, end int) {
		if key == "outputs" {
			raw = state[start:end]
		}
	})
	if err != nil || raw == nil {
		return outs, err
	}
	if err := json.Unmarshal(raw, &outs); err != nil || outs == nil {
		return map[string]Output{}, nil // not Terraform's shape (or null): no outputs
	}
	return outs, nil
}

// putOutputs records the declared outputs of version n of unit id.
func putOutputs(tx *bolt.Tx, id string, n int64, outs json.RawMessage) error {
	if len(outs) == 0 {
		return nil
	}
	ob, err := tx.Bucket(bucketOutputs).CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return err
	}
	return ob.Put(u64(uint64(n)), outs)
}

// dropOutputs removes the declared outputs of version n of unit id.
func dropOutputs(tx *bolt.Tx, id string, n int64) error {
	if ob := tx.Bucket(bucketOutputs).Bucket([]byte(id)); ob != nil {
		return ob.Delete(u64(uint64(n)))
	}
	return nil
}
