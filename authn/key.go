package authn

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/opentaco/opentaco/store"
)

// keyRing is the active signing key and the public keys that verify.
type keyRing struct {
	active jwk.Key
	public jwk.Set
}

// loadKeys reads the signing keys, creating the first on a new database,
// and drops retired keys whose tokens have all expired.
func (a *Authenticator) loadKeys() error {
	keys, err := a.store.SigningKeys()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		if err := a.addKey(); err != nil {
			return err
		}
		return a.loadKeys()
	}
	ring := &keyRing{public: jwk.NewSet()}
	for _, k := range keys {
		if k.Retired != nil && a.now().Sub(*k.Retired) > a.cfg.AccessTTL+time.Minute {
			if err := a.store.DropSigningKey(k.KID); err != nil {
				return err
			}
			continue
		}
		priv, pub, err := jwkPair(k)
		if err != nil {
			return err
		}
		if k.Retired == nil {
			ring.active = priv
		}
		if err := ring.public.AddKey(pub); err != nil {
			return err
		}
	}
	if ring.active == nil {
		return fmt.Errorf("no active signing key")
	}
	a.mu.Lock()
	a.keys = ring
	a.mu.Unlock()
	return nil
}

func (a *Authenticator) addKey() error {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	kid := make([]byte, 8)
	_, _ = rand.Read(kid)
	return a.store.AddSigningKey(store.SigningKey{KID: hex.EncodeToString(kid), Seed: seed})
}

// RotateSigningKey adds a new active key; the old public key stays in the
// JWKS until the tokens it signed have expired.
func (a *Authenticator) RotateSigningKey() error {
	if err := a.addKey(); err != nil {
		return err
	}
	return a.loadKeys()
}

func jwkPair(k store.SigningKey) (jwk.Key, jwk.Key, error) {
	priv, err := jwk.FromRaw(ed25519.NewKeyFromSeed(k.Seed))
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range [][2]any{{jwk.KeyIDKey, k.KID}, {jwk.AlgorithmKey, jwa.EdDSA}, {jwk.KeyUsageKey, "sig"}} {
		if err := priv.Set(kv[0].(string), kv[1]); err != nil {
			return nil, nil, err
		}
	}
	pub, err := priv.PublicKey()
	return priv, pub, err
}

// JWKS returns the public keys as a JSON Web Key Set document.
func (a *Authenticator) JWKS() ([]byte, error) {
	a.mu.Lock()
	set := a.keys.public
	a.mu.Unlock()
	return json.Marshal(set)
}

func (a *Authenticator) ring() *keyRing {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys
}
