package authn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opentaco/opentaco/store"
)

// Token prefixes. API tokens are "otc_" + 32 random bytes (base64url);
// refresh tokens are "otr_" + 32 random bytes and are never accepted as
// access credentials.
const (
	APITokenPrefix = "otc_"
	refreshPrefix  = "otr_"
)

// TokenPair is the answer of a login, exchange or refresh.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

func randomSecret(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// IssueAccess signs an access JWT for p.
func (a *Authenticator) IssueAccess(p *Principal) (string, error) {
	now := a.now()
	t := jwt.New()
	claims := map[string]any{
		jwt.IssuerKey: a.cfg.Issuer, jwt.AudienceKey: []string{a.cfg.Audience}, jwt.SubjectKey: p.Subject,
		jwt.IssuedAtKey: now, jwt.ExpirationKey: now.Add(a.cfg.AccessTTL), jwt.NotBeforeKey: now.Add(-time.Minute),
		"email": p.Email, "groups": p.Groups, "typ": "access",
	}
	for k, v := range claims {
		if err := t.Set(k, v); err != nil {
			return "", err
		}
	}
	signed, err := jwt.Sign(t, jwt.WithKey(jwa.EdDSA, a.ring().active))
	return string(signed), err
}

// verifyAccess checks an access JWT: signature by one of our keys (by
// kid), issuer, audience, expiry, and that it is an access token.
func (a *Authenticator) verifyAccess(cred string) (*Principal, error) {
	t, err := jwt.Parse([]byte(cred),
		jwt.WithKeySet(a.ring().public),
		jwt.WithIssuer(a.cfg.Issuer),
		jwt.WithAudience(a.cfg.Audience),
		jwt.WithClock(jwt.ClockFunc(a.now)),
		jwt.WithAcceptableSkew(30*time.Second),
		jwt.WithRequiredClaim("typ"),
	)
	if err != nil {
		return nil, store.Errorf(store.EUNAUTHORIZED, "invalid access token: %v", err)
	}
	if typ, _ := t.Get("typ"); typ != "access" {
		return nil, store.Errorf(store.EUNAUTHORIZED, "not an access token")
	}
	p := &Principal{Subject: t.Subject(), Kind: KindAccess, Groups: stringsClaim(t, "groups"), Scopes: []string{}}
	if email, ok := t.Get("email"); ok {
		p.Email, _ = email.(string)
	}
	p.Roles = a.rolesOf(p.Subject, p.Groups)
	return p, nil
}

func stringsClaim(t jwt.Token, name string) []string {
	out := []string{}
	v, _ := t.Get(name)
	switch v := v.(type) {
	case []string:
		out = append(out, v...)
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case string:
		out = append(out, v)
	}
	return out
}

// IssuePair issues an access token and the first refresh token of a new
// family for p.
func (a *Authenticator) IssuePair(p *Principal) (*TokenPair, error) {
	fam := make([]byte, 12)
	_, _ = rand.Read(fam)
	return a.issuePair(p, hex.EncodeToString(fam))
}

func (a *Authenticator) issuePair(p *Principal, family string) (*TokenPair, error) {
	access, err := a.IssueAccess(p)
	if err != nil {
		return nil, err
	}
	refresh := randomSecret(refreshPrefix)
	err = a.store.PutRefreshToken(store.RefreshToken{
		Hash: hashSecret(refresh), Family: family, Subject: p.Subject, Email: p.Email, Groups: p.Groups,
		Expires: a.now().Add(a.cfg.RefreshTTL),
	})
	if err != nil {
		return nil, err
	}
	return &TokenPair{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(a.cfg.AccessTTL.Seconds()), TokenType: "Bearer"}, nil
}

type graceEntry struct {
	pair *TokenPair
	at   time.Time
}

// Refresh spends a refresh token and returns a new pair. A refresh token
// presented again after its rotation revokes the whole family, except
// within a short grace window, where the same successor pair is returned
// (two racing refreshes of one client). Every failure is EUNAUTHORIZED.
func (a *Authenticator) Refresh(refresh string) (*TokenPair, error) {
	hash := hashSecret(refresh)
	next := randomSecret(refreshPrefix)
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock() // one refresh at a time keeps the grace cache exact
	old, err := a.store.SpendRefreshToken(hash, store.RefreshToken{Hash: hashSecret(next), Expires: a.now().Add(a.cfg.RefreshTTL)}, refreshGrace)
	switch store.ErrorCode(err) {
	case "":
	case store.ECONFLICT:
		if g, ok := a.grace[hash]; ok && a.now().Sub(g.at) <= refreshGrace {
			return g.pair, nil
		}
		return nil, store.Errorf(store.EUNAUTHORIZED, "refresh token was already used")
	default:
		return nil, store.Errorf(store.EUNAUTHORIZED, "invalid refresh token: %s", store.ErrorMessage(err))
	}
	p := &Principal{Subject: old.Subject, Email: old.Email, Groups: old.Groups}
	access, err := a.IssueAccess(p)
	if err != nil {
		return nil, err
	}
	pair := &TokenPair{AccessToken: access, RefreshToken: next, ExpiresIn: int(a.cfg.AccessTTL.Seconds()), TokenType: "Bearer"}
	for h, g := range a.grace {
		if a.now().Sub(g.at) > refreshGrace {
			delete(a.grace, h)
		}
	}
	a.grace[hash] = graceEntry{pair: pair, at: a.now()}
	return pair, nil
}

// NewAPIToken makes the secret and record of an API token acting as owner,
// for the caller to store (store.DB.CreateAPIToken); ttl 0 = no expiry.
// Returns EINVALID.
func (a *Authenticator) NewAPIToken(owner *Principal, name string, ttl time.Duration) (string, store.APIToken, error) {
	if name == "" {
		return "", store.APIToken{}, store.Errorf(store.EINVALID, "a token needs a name")
	}
	secret := randomSecret(APITokenPrefix)
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	t := store.APIToken{ID: "at-" + hex.EncodeToString(id), Name: name, Owner: owner.Subject, Email: owner.Email, Groups: owner.Groups, Hash: hashSecret(secret)}
	if ttl > 0 {
		exp := a.now().Add(ttl)
		t.Expires = &exp
	}
	return secret, t, nil
}

// CreateAPIToken makes and stores an API token acting as owner. The
// secret is returned once; only its hash is stored.
func (a *Authenticator) CreateAPIToken(owner *Principal, name string, ttl time.Duration) (string, *store.APIToken, error) {
	secret, t, err := a.NewAPIToken(owner, name, ttl)
	if err != nil {
		return "", nil, err
	}
	created, err := a.store.CreateAPIToken(t)
	return secret, created, err
}

func (a *Authenticator) authenticateAPIToken(cred string) (*Principal, error) {
	t, err := a.store.APITokenByHash(hashSecret(cred))
	if store.ErrorCode(err) == store.ENOTFOUND {
		return nil, store.Errorf(store.EUNAUTHORIZED, "unknown API token")
	} else if err != nil {
		return nil, err
	}
	p := &Principal{Subject: t.Owner, Email: t.Email, Groups: t.Groups, Kind: KindAPIToken, TokenID: t.ID, Scopes: []string{}}
	if p.Groups == nil {
		p.Groups = []string{}
	}
	p.Roles = a.rolesOf(p.Subject, p.Groups)
	return p, nil
}

// Exchange verifies an ID token from the configured OIDC provider and
// issues a token pair for its subject. Returns EINVALID (no provider),
// EUNAUTHORIZED.
func (a *Authenticator) Exchange(ctx context.Context, idToken string) (*TokenPair, *Principal, error) {
	if a.oidc == nil {
		return nil, nil, store.Errorf(store.EINVALID, "no OIDC provider is configured")
	}
	p, err := a.oidc.verify(ctx, idToken)
	if err != nil {
		return nil, nil, err
	}
	p.Roles = a.rolesOf(p.Subject, p.Groups)
	pair, err := a.IssuePair(p)
	return pair, p, err
}

// OIDC returns the provider configuration, or nil.
func (a *Authenticator) OIDC() *OIDCConfig {
	if a.oidc == nil {
		return nil
	}
	c := a.oidc.cfg
	return &c
}

// Logout revokes the family of a refresh token. An unknown token is not an
// error.
func (a *Authenticator) Logout(refresh string) error {
	fam, err := a.store.RefreshFamily(hashSecret(refresh))
	if store.ErrorCode(err) == store.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	return a.store.RevokeRefreshFamily(fam)
}
