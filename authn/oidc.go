package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opentaco/opentaco/store"
)

// OIDCConfig names an external OpenID provider.
type OIDCConfig struct {
	Issuer       string   `json:"issuer"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"-"`
	GroupsClaim  string   `json:"groups_claim"`
	Scopes       []string `json:"scopes"`
}

// ProviderMetadata is the part of the provider's discovery document
// OpenTaco uses.
type ProviderMetadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	UserInfoEndpoint      string `json:"userinfo_endpoint"`
	// TokenEndpointAuthMethods lists how clients may authenticate at the
	// token endpoint (client_secret_basic when empty).
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported,omitempty"`
}

const (
	defaultJWKSMaxAge = time.Hour
	jwksRefetchGap    = 10 * time.Second // at most one unknown-kid refetch per gap
	clockSkew         = 60 * time.Second
)

// oidcVerifier verifies ID tokens against the provider's JWKS, cached as
// its Cache-Control says (an hour when it says nothing); an unknown kid
// triggers one rate-limited refetch.
type oidcVerifier struct {
	cfg    OIDCConfig
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	meta      *ProviderMetadata
	keys      jwk.Set
	expires   time.Time
	lastFetch time.Time
}

func newOIDCVerifier(cfg OIDCConfig, client *http.Client, now func() time.Time) *oidcVerifier {
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile", "email"}
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	return &oidcVerifier{cfg: cfg, client: client, now: now}
}

// Metadata returns the provider's discovery document (fetched once).
func (a *Authenticator) Metadata(ctx context.Context) (*ProviderMetadata, error) {
	if a.oidc == nil {
		return nil, store.Errorf(store.EINVALID, "no OIDC provider is configured")
	}
	return a.oidc.metadata(ctx)
}

func (v *oidcVerifier) metadata(ctx context.Context) (*ProviderMetadata, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.meta != nil {
		return v.meta, nil
	}
	var m ProviderMetadata
	if _, err := v.getJSON(ctx, v.cfg.Issuer+"/.well-known/openid-configuration", &m); err != nil {
		return nil, err
	}
	if strings.TrimSuffix(m.Issuer, "/") != v.cfg.Issuer {
		return nil, fmt.Errorf("OIDC discovery: issuer %q does not match --oidc-issuer %q", m.Issuer, v.cfg.Issuer)
	}
	v.meta = &m
	return v.meta, nil
}

func (v *oidcVerifier) getJSON(ctx context.Context, url string, out any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("OIDC provider: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OIDC provider: GET %s: %s", url, resp.Status)
	}
	return resp.Header, json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(out)
}

// keySet returns the cached JWKS, fetching it when stale or when refetch
// is asked for (an unknown kid) and the last fetch is old enough.
func (v *oidcVerifier) keySet(ctx context.Context, refetch bool) (jwk.Set, error) {
	meta, err := v.metadata(ctx)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	fresh := v.keys != nil && now.Before(v.expires)
	if fresh && !(refetch && now.Sub(v.lastFetch) > jwksRefetchGap) {
		return v.keys, nil
	}
	var raw json.RawMessage
	hdr, err := v.getJSON(ctx, meta.JWKSURI, &raw)
	if err != nil {
		if v.keys != nil {
			return v.keys, nil // keep serving the last good set
		}
		return nil, err
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("OIDC provider JWKS: %w", err)
	}
	v.keys, v.lastFetch, v.expires = set, now, now.Add(maxAge(hdr.Get("Cache-Control")))
	return set, nil
}

// maxAge reads max-age from Cache-Control, defaulting to an hour.
func maxAge(cc string) time.Duration {
	for _, part := range strings.Split(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return time.Duration(n) * time.Second
			}
		}
		if strings.TrimSpace(part) == "no-store" || strings.TrimSpace(part) == "no-cache" {
			return 0
		}
	}
	return defaultJWKSMaxAge
}

// verify checks an ID token: signature, issuer, audience, expiry (60 s of
// skew) and returns its principal.
func (v *oidcVerifier) verify(ctx context.Context, idToken string) (*Principal, error) {
	kid := ""
	if msg, err := jws.Parse([]byte(idToken)); err == nil && len(msg.Signatures()) > 0 {
		kid = msg.Signatures()[0].ProtectedHeaders().KeyID()
	}
	meta, err := v.metadata(ctx)
	if err != nil {
		return nil, err
	}
	set, err := v.keySet(ctx, false)
	if err != nil {
		return nil, err
	}
	if _, ok := set.LookupKeyID(kid); !ok {
		if set, err = v.keySet(ctx, true); err != nil {
			return nil, err
		}
	}
	t, err := jwt.Parse([]byte(idToken),
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)),
		jwt.WithIssuer(meta.Issuer), // exactly as the provider spells it (some end in "/")
		jwt.WithAudience(v.cfg.ClientID),
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithAcceptableSkew(clockSkew),
	)
	if err != nil {
		return nil, store.Errorf(store.EUNAUTHORIZED, "invalid ID token: %v", err)
	}
	p := &Principal{Subject: t.Subject(), Kind: KindAccess, Groups: stringsClaim(t, v.cfg.GroupsClaim), Scopes: []string{}}
	if email, ok := t.Get("email"); ok {
		p.Email, _ = email.(string)
	}
	if p.Subject == "" {
		return nil, store.Errorf(store.EUNAUTHORIZED, "ID token has no subject")
	}
	return p, nil
}
