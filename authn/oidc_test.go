package authn_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

const clientID = "opentaco-test"

var (
	rsaOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey // provider key 1, provider key 2, a rogue key
)

func testRSAKeys(t *testing.T) [3]*rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for i := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[i] = k
		}
	})
	return rsaKeys
}

// provider is an in-process OpenID provider: a discovery document and a
// JWKS whose keys, Cache-Control and health the test changes, with fetch
// counters.
type provider struct {
	srv       *httptest.Server
	issuer    string // what discovery and the tokens say
	discovery atomic.Int64
	jwksHits  atomic.Int64

	mu           sync.Mutex
	keys         map[string]*rsa.PrivateKey // kid → key published
	cacheControl string
	jwksStatus   int
}

// newProvider starts a provider; issuerSuffix is appended to its URL to
// form the issuer (e.g. "/" for providers whose issuer ends in a slash).
func newProvider(t *testing.T, issuerSuffix string) *provider {
	t.Helper()
	keys := testRSAKeys(t)
	p := &provider{keys: map[string]*rsa.PrivateKey{"k1": keys[0]}, jwksStatus: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discovery.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.issuer, "authorization_endpoint": p.srv.URL + "/authorize",
			"token_endpoint": p.srv.URL + "/token", "jwks_uri": p.srv.URL + "/keys",
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.jwksStatus != http.StatusOK {
			w.WriteHeader(p.jwksStatus)
			return
		}
		set := jwk.NewSet()
		for kid, k := range p.keys {
			pub, err := jwk.FromRaw(&k.PublicKey)
			if err != nil {
				panic(err)
			}
			_ = pub.Set(jwk.KeyIDKey, kid) // no "alg", as some providers publish
			_ = pub.Set(jwk.KeyUsageKey, "sig")
			_ = set.AddKey(pub)
		}
		if p.cacheControl != "" {
			w.Header().Set("Cache-Control", p.cacheControl)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL + issuerSuffix
	return p
}

func (p *provider) set(fn func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

// claims are valid ID-token claims for alice at now.
func (p *provider) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": p.issuer, "aud": clientID, "sub": "alice-oidc", "email": "alice@example.com",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "groups": []string{"dev", "ops"},
	}
}

func (p *provider) token(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	return p.tokenWith(t, p.keys[kid], kid, claims)
}

func (p *provider) tokenWith(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	return signJWT(t, jwa.RS256, key, kid, claims)
}

func with(claims map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// newOIDCEnv is an Authenticator configured with p as its provider.
func newOIDCEnv(t *testing.T, p *provider, cfgIssuer, groupsClaim string) *env {
	t.Helper()
	return newEnv(t, authn.Config{
		OIDC:       &authn.OIDCConfig{Issuer: cfgIssuer, ClientID: clientID, ClientSecret: "s3cret", GroupsClaim: groupsClaim},
		HTTPClient: p.srv.Client(),
	})
}

func exchangeOK(t *testing.T, e *env, what, idToken string) *authn.Principal {
	t.Helper()
	pair, p, err := e.auth.Exchange(context.Background(), idToken)
	if err != nil {
		t.Fatalf("%s: Exchange: %v", what, err)
	}
	if pair == nil || pair.AccessToken == "" || !strings.HasPrefix(pair.RefreshToken, "otr_") {
		t.Fatalf("%s: pair %+v", what, pair)
	}
	return p
}

func exchangeRefused(t *testing.T, e *env, what, idToken string) {
	t.Helper()
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("%s: Exchange panicked: %v", what, v)
			}
		}()
		var pair *authn.TokenPair
		pair, _, err = e.auth.Exchange(context.Background(), idToken)
		if pair != nil {
			t.Fatalf("%s: Exchange issued %+v", what, pair)
		}
	}()
	wantCode(t, what, err, store.EUNAUTHORIZED)
}

func TestOIDC_Discovery(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		p := newProvider(t, "")
		e := newOIDCEnv(t, p, p.issuer+"/", "")
		for range 3 {
			m, err := e.auth.Metadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Issuer != p.issuer || m.JWKSURI != p.srv.URL+"/keys" || m.TokenEndpoint != p.srv.URL+"/token" || m.AuthorizationEndpoint != p.srv.URL+"/authorize" {
				t.Fatalf("metadata %+v", m)
			}
		}
		if n := p.discovery.Load(); n != 1 {
			t.Errorf("discovery fetched %d times, want 1", n)
		}
		cfg := e.auth.OIDC()
		if cfg == nil || cfg.GroupsClaim != "groups" || !slices.Equal(cfg.Scopes, []string{"openid", "profile", "email"}) {
			t.Errorf("OIDC() = %+v, want the defaults", cfg)
		}
	})

	t.Run("IssuerMismatch", func(t *testing.T) {
		p := newProvider(t, "")
		p.issuer = "https://elsewhere.test"
		e := newOIDCEnv(t, p, p.srv.URL, "")
		if _, err := e.auth.Metadata(ctx); err == nil {
			t.Fatal("Metadata accepted a discovery document for another issuer")
		}
		if _, _, err := e.auth.Exchange(ctx, p.token(t, "k1", p.claims(epoch))); err == nil {
			t.Fatal("Exchange worked against a provider whose discovery names another issuer")
		}
	})

	t.Run("NoProvider", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		_, err := e.auth.Metadata(ctx)
		wantCode(t, "Metadata without a provider", err, store.EINVALID)
		_, _, err = e.auth.Exchange(ctx, "x.y.z")
		wantCode(t, "Exchange without a provider", err, store.EINVALID)
		if e.auth.OIDC() != nil {
			t.Error("OIDC() != nil without a provider")
		}
	})
}

func TestOIDC_Verify(t *testing.T) {
	p := newProvider(t, "")
	e := newOIDCEnv(t, p, p.issuer, "")
	now := epoch

	t.Run("OK", func(t *testing.T) {
		pr := exchangeOK(t, e, "valid ID token", p.token(t, "k1", p.claims(now)))
		if pr.Subject != "alice-oidc" || pr.Email != "alice@example.com" || !slices.Equal(pr.Groups, []string{"dev", "ops"}) {
			t.Errorf("principal %+v", pr)
		}
		// The access token of the pair carries the identity.
		pair, _, err := e.auth.Exchange(context.Background(), p.token(t, "k1", p.claims(now)))
		if err != nil {
			t.Fatal(err)
		}
		ap, err := e.auth.Authenticate(context.Background(), pair.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if ap.Subject != "alice-oidc" || !slices.Equal(ap.Groups, []string{"dev", "ops"}) || ap.Email != "alice@example.com" {
			t.Errorf("access principal %+v", ap)
		}
		if _, err := e.auth.Refresh(pair.RefreshToken); err != nil {
			t.Errorf("refresh of an exchanged pair: %v", err)
		}
	})

	t.Run("Skew", func(t *testing.T) {
		c := p.claims(now)
		for _, tc := range []struct {
			name   string
			claims map[string]any
			ok     bool
		}{
			{"Expired59sAgo", with(c, "exp", now.Add(-59*time.Second).Unix(), "iat", now.Add(-time.Hour).Unix()), true},
			{"Expired61sAgo", with(c, "exp", now.Add(-61*time.Second).Unix(), "iat", now.Add(-time.Hour).Unix()), false},
			{"NotBefore59sAhead", with(c, "nbf", now.Add(59*time.Second).Unix()), true},
			{"NotBefore61sAhead", with(c, "nbf", now.Add(61*time.Second).Unix()), false},
			{"IssuedAt59sAhead", with(c, "iat", now.Add(59*time.Second).Unix()), true},
			{"IssuedAt61sAhead", with(c, "iat", now.Add(61*time.Second).Unix()), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tok := p.token(t, "k1", tc.claims)
				if tc.ok {
					exchangeOK(t, e, tc.name, tok)
				} else {
					exchangeRefused(t, e, tc.name, tok)
				}
			})
		}
	})

	t.Run("Refused", func(t *testing.T) {
		c := p.claims(now)
		keys := testRSAKeys(t)
		good := p.token(t, "k1", c)
		parts := strings.Split(good, ".")
		tampered := parts[0] + "." + b64(mustJSON(t, with(c, "sub", "admin"))) + "." + parts[2]
		for _, tc := range []struct{ name, tok string }{
			{"OtherKeySameKID", p.tokenWith(t, keys[2], "k1", c)},
			{"AlgNone", noneJWT(t, "k1", c)},
			{"HS256WithPublicKey", signJWT(t, jwa.HS256, keys[0].PublicKey.N.Bytes(), "k1", c)},
			{"TamperedPayload", tampered},
			{"WrongIssuer", p.token(t, "k1", with(c, "iss", "https://evil.test"))},
			{"WrongAudience", p.token(t, "k1", with(c, "aud", "someone-else"))},
			{"NoAudience", p.token(t, "k1", with(c, "aud", nil))},
			{"NoIssuer", p.token(t, "k1", with(c, "iss", nil))},
			{"NoSubject", p.token(t, "k1", with(c, "sub", nil))},
			{"Expired", p.token(t, "k1", with(c, "exp", now.Add(-time.Hour).Unix(), "iat", now.Add(-2*time.Hour).Unix()))},
			{"OurOwnAccessToken", func() string { s, _ := e.auth.IssueAccess(alice); return s }()},
			{"Garbage", "garbage"},
			{"Empty", ""},
		} {
			t.Run(tc.name, func(t *testing.T) { exchangeRefused(t, e, tc.name, tc.tok) })
		}
	})
}

func TestOIDC_GroupsClaim(t *testing.T) {
	p := newProvider(t, "")
	e := newOIDCEnv(t, p, p.issuer, "cognito:groups")
	c := with(p.claims(epoch), "cognito:groups", []string{"admins"})
	pr := exchangeOK(t, e, "custom groups claim", p.token(t, "k1", c))
	if !slices.Equal(pr.Groups, []string{"admins"}) {
		t.Errorf("groups %v, want [admins] from cognito:groups (not the groups claim)", pr.Groups)
	}
	pr = exchangeOK(t, e, "single string", p.token(t, "k1", with(c, "cognito:groups", "solo")))
	if !slices.Equal(pr.Groups, []string{"solo"}) {
		t.Errorf("groups %v, want [solo]", pr.Groups)
	}
	pr = exchangeOK(t, e, "no groups", p.token(t, "k1", with(c, "cognito:groups", nil)))
	if pr.Groups == nil || len(pr.Groups) != 0 {
		t.Errorf("groups %#v, want an empty list", pr.Groups)
	}
}

// TestOIDC_IssuerTrailingSlash: some providers' issuer identifier ends in
// "/" (Auth0: "https://tenant.auth0.com/"), and their ID tokens carry it
// exactly so. Configured as the provider documents it, login must work.
func TestOIDC_IssuerTrailingSlash(t *testing.T) {
	p := newProvider(t, "/")
	e := newOIDCEnv(t, p, p.issuer, "")
	exchangeOK(t, e, "ID token whose iss ends in a slash", p.token(t, "k1", p.claims(epoch)))
	exchangeRefused(t, e, "iss without the slash", p.token(t, "k1", with(p.claims(epoch), "iss", strings.TrimSuffix(p.issuer, "/"))))
}

func TestOIDC_JWKSCache(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cacheControl string
		maxAge       time.Duration
	}{
		{"MaxAge", "public, max-age=120", 120 * time.Second},
		{"MaxAgeFirst", "max-age=300, must-revalidate", 300 * time.Second},
		{"Default", "", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, "")
			p.set(func(p *provider) { p.cacheControl = tc.cacheControl })
			e := newOIDCEnv(t, p, p.issuer, "")
			verify := func() {
				t.Helper()
				exchangeOK(t, e, "verify", p.token(t, "k1", p.claims(e.clk.Now())))
			}
			verify()
			verify()
			if n := p.jwksHits.Load(); n != 1 {
				t.Fatalf("JWKS fetched %d times for two verifications, want 1", n)
			}
			e.clk.Advance(tc.maxAge - time.Second)
			verify()
			if n := p.jwksHits.Load(); n != 1 {
				t.Fatalf("JWKS fetched %d times within max-age, want 1", n)
			}
			e.clk.Advance(2 * time.Second)
			verify()
			verify()
			if n := p.jwksHits.Load(); n != 2 {
				t.Fatalf("JWKS fetched %d times after max-age, want 2", n)
			}
		})
	}

	t.Run("NoStore", func(t *testing.T) {
		p := newProvider(t, "")
		p.set(func(p *provider) { p.cacheControl = "no-store" })
		e := newOIDCEnv(t, p, p.issuer, "")
		for range 3 {
			exchangeOK(t, e, "verify", p.token(t, "k1", p.claims(e.clk.Now())))
			e.clk.Advance(time.Second)
		}
		if n := p.jwksHits.Load(); n != 3 {
			t.Errorf("JWKS fetched %d times under no-store, want 3", n)
		}
	})

	t.Run("ProviderDownKeepsLastGoodSet", func(t *testing.T) {
		p := newProvider(t, "")
		p.set(func(p *provider) { p.cacheControl = "max-age=60" })
		e := newOIDCEnv(t, p, p.issuer, "")
		exchangeOK(t, e, "verify", p.token(t, "k1", p.claims(e.clk.Now())))
		p.set(func(p *provider) { p.jwksStatus = http.StatusServiceUnavailable })
		e.clk.Advance(2 * time.Minute)
		exchangeOK(t, e, "verify with the provider's JWKS down", p.token(t, "k1", p.claims(e.clk.Now())))
		if n := p.jwksHits.Load(); n != 2 {
			t.Errorf("JWKS fetched %d times, want 2 (one failed refresh)", n)
		}
	})
}

func TestOIDC_UnknownKID(t *testing.T) {
	p := newProvider(t, "")
	p.set(func(p *provider) { p.cacheControl = "max-age=3600" })
	e := newOIDCEnv(t, p, p.issuer, "")
	keys := testRSAKeys(t)
	exchangeOK(t, e, "k1", p.token(t, "k1", p.claims(e.clk.Now())))
	if n := p.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}

	// The provider rotates to k2. A token signed with k2 arrives after
	// the refetch gap: exactly one refetch, and it verifies.
	p.set(func(p *provider) { p.keys = map[string]*rsa.PrivateKey{"k1": keys[0], "k2": keys[1]} })
	e.clk.Advance(11 * time.Second)
	exchangeOK(t, e, "k2 after the provider rotated", p.token(t, "k2", p.claims(e.clk.Now())))
	if n := p.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times after an unknown kid, want 2", n)
	}
	exchangeOK(t, e, "k2 again", p.token(t, "k2", p.claims(e.clk.Now())))
	exchangeOK(t, e, "k1 still published", p.token(t, "k1", p.claims(e.clk.Now())))
	if n := p.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want still 2", n)
	}

	// A flood of tokens with an unknown kid refetches at most once per
	// gap, and every one is refused.
	e.clk.Advance(11 * time.Second)
	for i := range 20 {
		exchangeRefused(t, e, "unknown kid", p.tokenWith(t, keys[2], "k-rogue", p.claims(e.clk.Now())))
		if i == 9 {
			e.clk.Advance(time.Second)
		}
	}
	if n := p.jwksHits.Load(); n != 3 {
		t.Fatalf("JWKS fetched %d times for 20 unknown-kid tokens, want 3 (one refetch)", n)
	}
	e.clk.Advance(11 * time.Second)
	exchangeRefused(t, e, "unknown kid after the gap", p.tokenWith(t, keys[2], "k-rogue", p.claims(e.clk.Now())))
	if n := p.jwksHits.Load(); n != 4 {
		t.Fatalf("JWKS fetched %d times, want 4 (one more refetch after the gap)", n)
	}

	// The provider drops k1: a cached k1 still verifies until the cache
	// expires (that is what caching means) - but a k1 token after a
	// refetch that no longer lists it is refused.
	p.set(func(p *provider) { p.keys = map[string]*rsa.PrivateKey{"k2": keys[1]} })
	e.clk.Advance(time.Hour)
	exchangeRefused(t, e, "k1 after the provider dropped it", p.tokenWith(t, keys[0], "k1", p.claims(e.clk.Now())))
	exchangeOK(t, e, "k2", p.token(t, "k2", p.claims(e.clk.Now())))
}
