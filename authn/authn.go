package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opentaco/opentaco/store"
)

// Credential kinds of a Principal.
const (
	KindAccess    = "access"    // a JWT this server signed
	KindAPIToken  = "api_token" // an otc_ token
	KindAnonymous = "anonymous" // --auth-disable
)

// Principal is an authenticated caller.
type Principal struct {
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups"`
	Roles   []string `json:"roles"`
	Scopes  []string `json:"scopes"`
	Kind    string   `json:"kind"`
	TokenID string   `json:"token_id,omitempty"` // the API token used, if any
}

// IsAdmin reports whether p has the built-in admin role.
func (p *Principal) IsAdmin() bool {
	for _, r := range p.Roles {
		if r == "admin" {
			return true
		}
	}
	return false
}

// Config configures an Authenticator.
type Config struct {
	Store      *store.DB
	Issuer     string        // the server's public URL, the "iss" of access tokens
	Audience   string        // "aud" of access tokens (default "opentaco")
	AccessTTL  time.Duration // default 1h
	RefreshTTL time.Duration // default 30 days
	OIDC       *OIDCConfig   // nil: built-in admin only
	HTTPClient *http.Client  // for the OIDC provider
}

// Authenticator issues and checks credentials.
type Authenticator struct {
	cfg   Config
	store *store.DB
	now   func() time.Time
	oidc  *oidcVerifier

	mu   sync.Mutex
	keys *keyRing

	refreshMu sync.Mutex
	grace     map[string]graceEntry // spent refresh hash → the pair it was rotated to
}

// Defaults.
const (
	DefaultAccessTTL  = time.Hour
	DefaultRefreshTTL = 30 * 24 * time.Hour
	refreshGrace      = 10 * time.Second
)

// New loads (or creates, on first start) the signing key.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Audience == "" {
		cfg.Audience = "opentaco"
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	a := &Authenticator{cfg: cfg, store: cfg.Store, now: cfg.Store.Now, grace: map[string]graceEntry{}}
	if err := a.loadKeys(); err != nil {
		return nil, err
	}
	if cfg.OIDC != nil {
		a.oidc = newOIDCVerifier(*cfg.OIDC, cfg.HTTPClient, a.now)
	}
	return a, nil
}

// Authenticate checks a credential (an access JWT or an API token) and
// returns its principal. Every failure is EUNAUTHORIZED.
func (a *Authenticator) Authenticate(ctx context.Context, cred string) (*Principal, error) {
	cred = strings.TrimSpace(cred)
	switch {
	case cred == "":
		return nil, store.Errorf(store.EUNAUTHORIZED, "a credential is required (Authorization: Bearer <token>)")
	case strings.HasPrefix(cred, APITokenPrefix):
		return a.authenticateAPIToken(cred)
	case strings.HasPrefix(cred, refreshPrefix):
		return nil, store.Errorf(store.EUNAUTHORIZED, "a refresh token is not an access credential")
	}
	return a.verifyAccess(cred)
}

// Credential extracts the credential of a request: a bearer token, or the
// password of HTTP basic auth (Terraform's http backend sends that).
func Credential(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	return ""
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// rolesOf gives a principal the roles assigned to it or its groups.
func (a *Authenticator) rolesOf(subject string, groups []string) []string {
	rb, err := a.store.LoadRBAC()
	if err != nil {
		return []string{}
	}
	return rolesFor(rb, subject, groups)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
