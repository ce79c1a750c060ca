package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketKeys      = []byte("signing_keys") // kid → SigningKey
	bucketAPITokens = []byte("api_tokens")   // token ID → APIToken
	bucketTokenHash = []byte("api_token_by_hash")
	bucketRefresh   = []byte("refresh_tokens") // hash → RefreshToken
	bucketFamilies  = []byte("refresh_families")
)

// SigningKey is an Ed25519 key that signs access tokens. Retired keys stay
// published until the tokens they signed have expired.
type SigningKey struct {
	KID     string     `json:"kid"`
	Seed    []byte     `json:"seed"` // ed25519 private key seed
	Created time.Time  `json:"created"`
	Retired *time.Time `json:"retired,omitempty"`
}

// APIToken is an opaque long-lived credential ("otc_..."), stored as the
// SHA-256 of its secret.
type APIToken struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Owner    string     `json:"owner"`            // subject of the principal it acts as
	Email    string     `json:"email,omitempty"`  // copied from the owner at creation
	Groups   []string   `json:"groups,omitempty"` // copied from the owner at creation
	Hash     string     `json:"-"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Revoked  bool       `json:"revoked"`
}

type apiTokenRecord struct {
	APIToken
	Hash string `json:"hash"`
}

// RefreshToken is one link of a refresh-token family; each use spends it
// and makes a successor. Presenting a spent one revokes the family.
type RefreshToken struct {
	Hash    string     `json:"hash"`
	Family  string     `json:"family"`
	Subject string     `json:"subject"`
	Email   string     `json:"email,omitempty"`
	Groups  []string   `json:"groups,omitempty"`
	Created time.Time  `json:"created"`
	Expires time.Time  `json:"expires"`
	Spent   *time.Time `json:"spent,omitempty"`
}

func authBuckets() [][]byte {
	return [][]byte{bucketKeys, bucketAPITokens, bucketTokenHash, bucketRefresh, bucketFamilies}
}

// SigningKeys returns every stored signing key, oldest first.
func (db *DB) SigningKeys() ([]SigningKey, error) {
	var out []SigningKey
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(_, v []byte) error {
			var k SigningKey
			if err := json.Unmarshal(v, &k); err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// AddSigningKey stores k as the active key and retires every other active
// key at the same time.
func (db *DB) AddSigningKey(k SigningKey) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		b := tx.Bucket(bucketKeys)
		var retire []SigningKey
		err := b.ForEach(func(_, v []byte) error {
			var old SigningKey
			if err := json.Unmarshal(v, &old); err != nil {
				return err
			}
			if old.Retired == nil {
				old.Retired = &now
				retire = append(retire, old)
			}
			return nil
		})
		for _, old := range retire {
			if err == nil {
				err = putJSON(b, []byte(old.KID), old)
			}
		}
		if err != nil {
			return err
		}
		k.Created = now
		return putJSON(b, []byte(k.KID), k)
	})
}

// DropSigningKey removes a retired key whose tokens have all expired.
func (db *DB) DropSigningKey(kid string) error {
	return db.update(func(tx *bolt.Tx, _ time.Time) error {
		return tx.Bucket(bucketKeys).Delete([]byte(kid))
	})
}

// CreateAPIToken stores a token whose secret hashes to t.Hash.
// Returns ECONFLICT if the ID or hash exists.
func (db *DB) CreateAPIToken(t APIToken) (*APIToken, error) {
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		if tx.Bucket(bucketAPITokens).Get([]byte(t.ID)) != nil || tx.Bucket(bucketTokenHash).Get([]byte(t.Hash)) != nil {
			return Errorf(ECONFLICT, "token %s already exists", t.ID)
		}
		t.Created = now
		if err := tx.Bucket(bucketTokenHash).Put([]byte(t.Hash), []byte(t.ID)); err != nil {
			return err
		} else if err := db.audit(tx, now, AuditTokenCreate, "", fmt.Sprintf("%s %q for %s", t.ID, t.Name, t.Owner)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketAPITokens), []byte(t.ID), apiTokenRecord{t, t.Hash})
	})
	return &t, err
}

// APITokenByHash returns the token whose secret hashes to hash and records
// its use. Returns ENOTFOUND (unknown), EUNAUTHORIZED (revoked, expired).
func (db *DB) APITokenByHash(hash string) (*APIToken, error) {
	var out *APIToken
	err := db.batch(func(tx *bolt.Tx, now time.Time) error {
		out = nil
		id := tx.Bucket(bucketTokenHash).Get([]byte(hash))
		if id == nil {
			return Errorf(ENOTFOUND, "unknown API token")
		}
		rec, err := getAPIToken(tx, string(id))
		if err != nil {
			return err
		} else if rec.Revoked {
			return Errorf(EUNAUTHORIZED, "API token %s has been revoked", rec.ID)
		} else if rec.Expires != nil && now.After(*rec.Expires) {
			return Errorf(EUNAUTHORIZED, "API token %s has expired", rec.ID)
		}
		if rec.LastUsed == nil || now.Sub(*rec.LastUsed) > time.Minute { // spare a write per request
			rec.LastUsed = &now
			if err := putJSON(tx.Bucket(bucketAPITokens), []byte(rec.ID), rec); err != nil {
				return err
			}
		}
		t := rec.APIToken
		out = &t
		return nil
	})
	return out, err
}

// ListAPITokens returns the tokens of owner (all tokens if owner is ""),
// newest first.
func (db *DB) ListAPITokens(owner string) ([]*APIToken, error) {
	out := []*APIToken{}
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAPITokens).ForEach(func(k, _ []byte) error {
			rec, err := getAPIToken(tx, string(k))
			if err == nil && (owner == "" || rec.Owner == owner) {
				t := rec.APIToken
				out = append(out, &t)
			}
			return err
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// GetAPIToken returns a token by ID. Returns ENOTFOUND.
func (db *DB) GetAPIToken(id string) (*APIToken, error) {
	var out *APIToken
	err := db.view(func(tx *bolt.Tx) error {
		rec, err := getAPIToken(tx, id)
		if err == nil {
			t := rec.APIToken
			out = &t
		}
		return err
	})
	return out, err
}

// RevokeAPIToken marks a token revoked; it stops working at once.
// Returns ENOTFOUND.
func (db *DB) RevokeAPIToken(id string) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		rec, err := getAPIToken(tx, id)
		if err != nil {
			return err
		} else if err := db.audit(tx, now, AuditTokenRevoke, "", fmt.Sprintf("%s %q of %s", rec.ID, rec.Name, rec.Owner)); err != nil {
			return err
		}
		rec.Revoked = true
		return putJSON(tx.Bucket(bucketAPITokens), []byte(id), rec)
	})
}

func getAPIToken(tx *bolt.Tx, id string) (*apiTokenRecord, error) {
	v := tx.Bucket(bucketAPITokens).Get([]byte(id))
	if v == nil {
		return nil, Errorf(ENOTFOUND, "API token %q not found", id)
	}
	var rec apiTokenRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode API token: %w", err)
	}
	rec.APIToken.Hash = rec.Hash
	return &rec, nil
}

// PutRefreshToken stores a new refresh token (the first of a family, or a
// successor).
func (db *DB) PutRefreshToken(t RefreshToken) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		t.Created = now
		return putJSON(tx.Bucket(bucketRefresh), []byte(t.Hash), t)
	})
}

// SpendRefreshToken marks the refresh token with hash spent and stores its
// successor, in one transaction. A token already spent (reuse), expired or
// of a revoked family is EUNAUTHORIZED; reuse also revokes the family.
// The spent token is returned with Spent set when reuse is detected, so
// callers can apply a grace window. Returns ENOTFOUND, EUNAUTHORIZED.
func (db *DB) SpendRefreshToken(hash string, successor RefreshToken, graceWindow time.Duration) (*RefreshToken, error) {
	var out *RefreshToken
	var reuse, stolen bool
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		reuse, stolen = false, false
		v := tx.Bucket(bucketRefresh).Get([]byte(hash))
		if v == nil {
			return Errorf(ENOTFOUND, "unknown refresh token")
		}
		var t RefreshToken
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		out = &t
		if tx.Bucket(bucketFamilies).Get([]byte(t.Family)) != nil {
			return Errorf(EUNAUTHORIZED, "refresh token family has been revoked")
		} else if now.After(t.Expires) {
			return Errorf(EUNAUTHORIZED, "refresh token has expired")
		} else if t.Spent != nil {
			if now.Sub(*t.Spent) <= graceWindow {
				reuse = true // a racing refresh: the caller answers with the same successor
				return nil
			}
			stolen = true // presented again after the grace window: revoke the family
			return tx.Bucket(bucketFamilies).Put([]byte(t.Family), []byte(now.Format(time.RFC3339Nano)))
		}
		t.Spent = &now
		successor.Created, successor.Family = now, t.Family
		successor.Subject, successor.Email, successor.Groups = t.Subject, t.Email, t.Groups // the same login
		if err := putJSON(tx.Bucket(bucketRefresh), []byte(hash), t); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketRefresh), []byte(successor.Hash), successor)
	})
	if err == nil && stolen {
		return out, Errorf(EUNAUTHORIZED, "refresh token was already used; its family has been revoked")
	} else if reuse {
		return out, Errorf(ECONFLICT, "refresh token was just rotated")
	}
	return out, err
}

// RevokeRefreshFamily revokes every refresh token of a family (logout).
func (db *DB) RevokeRefreshFamily(family string) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		return tx.Bucket(bucketFamilies).Put([]byte(family), []byte(now.Format(time.RFC3339Nano)))
	})
}

// RefreshFamily returns the family of the refresh token with hash.
// Returns ENOTFOUND.
func (db *DB) RefreshFamily(hash string) (string, error) {
	var fam string
	err := db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRefresh).Get([]byte(hash))
		if v == nil {
			return Errorf(ENOTFOUND, "unknown refresh token")
		}
		var t RefreshToken
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		fam = t.Family
		return nil
	})
	return fam, err
}
