package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opentaco/opentaco/store"
)

// ocProvider is an in-process OpenID provider with a token endpoint that
// checks what a confidential client with PKCE must send and answers with
// an ID token whose claims the test can change.
type ocProvider struct {
	srv *httptest.Server
	key jwk.Key // private, kid "oc1"

	mu          sync.Mutex
	authMethods []string          // token_endpoint_auth_methods_supported
	codes       map[string]string // code → PKCE challenge
	claims      map[string]any    // overrides of the ID token's claims; nil deletes
	status      int               // forced token endpoint status (0: normal)
	gotBasic    bool              // the last token request used basic auth
	nonce       string            // nonce of the last authorization request
	noIDToken   bool              // answer without an id_token
}

const (
	ocClientID = "oc-client"
	ocSecret   = "oc s3cret/+" // needs form-encoding in basic auth
	ocCallback = "https://opentaco.test/oauth/callback"
)

func newOCProvider(t *testing.T) *ocProvider {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, "oc1")
	p := &ocProvider{key: key, codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		writeTestJSON(w, http.StatusOK, map[string]any{
			"issuer": p.srv.URL + "/", "authorization_endpoint": p.srv.URL + "/authorize?tenant=x",
			"token_endpoint": p.srv.URL + "/token", "jwks_uri": p.srv.URL + "/keys",
			"token_endpoint_auth_methods_supported": p.authMethods,
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		pub, _ := key.PublicKey()
		set := jwk.NewSet()
		_ = set.AddKey(pub)
		writeTestJSON(w, http.StatusOK, set)
	})
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// token is the provider's token endpoint.
func (p *ocProvider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != 0 {
		writeTestJSON(w, p.status, map[string]string{"error": "server_error"})
		return
	}
	_ = r.ParseForm()
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	p.gotBasic = basic
	f := r.PostForm
	challenge, known := p.codes[f.Get("code")]
	delete(p.codes, f.Get("code"))
	switch {
	case id != ocClientID || secret != ocSecret:
		writeTestJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
	case f.Get("grant_type") != "authorization_code" || f.Get("redirect_uri") != ocCallback || !known || PKCEChallenge(f.Get("code_verifier")) != challenge:
		writeTestJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "bad code"})
	case p.noIDToken:
		writeTestJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer"})
	default:
		writeTestJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": p.idToken()})
	}
}

func (p *ocProvider) idToken() string {
	now := time.Now()
	claims := map[string]any{
		"iss": p.srv.URL + "/", "aud": ocClientID, "sub": "user-1", "email": "user1@example.com",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": p.nonce, "groups": []string{"dev"},
	}
	for k, v := range p.claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	tok := jwt.New()
	for k, v := range claims {
		_ = tok.Set(k, v)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, p.key))
	if err != nil {
		panic(err)
	}
	return string(signed)
}

// authorize plays the user at the provider: it reads the authorization
// URL and returns a code for it.
func (p *ocProvider) authorize(t *testing.T, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	p.mu.Lock()
	defer p.mu.Unlock()
	code := "code-" + q.Get("state")
	p.codes[code] = q.Get("code_challenge")
	p.nonce = q.Get("nonce")
	return code
}

func (p *ocProvider) set(fn func(p *ocProvider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

func newOCAuth(t *testing.T, p *ocProvider, secret string) *Authenticator {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := Config{Store: db, Issuer: "https://opentaco.test", HTTPClient: p.srv.Client()}
	cfg.OIDC = &OIDCConfig{Issuer: p.srv.URL, ClientID: ocClientID, ClientSecret: secret}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ocLogin runs AuthCodeURL, the provider's authorization and ExchangeCode.
func ocLogin(t *testing.T, a *Authenticator, p *ocProvider) (*Principal, error) {
	t.Helper()
	verifier := "verifier-" + strings.Repeat("v", 40)
	authURL, err := a.AuthCodeURL(context.Background(), "st-1", PKCEChallenge(verifier), ocCallback)
	if err != nil {
		t.Fatal(err)
	}
	return a.ExchangeCode(context.Background(), p.authorize(t, authURL), verifier, ocCallback)
}

func wantErrCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if store.ErrorCode(err) != code {
		t.Fatalf("%s: error %v, want code %s", what, err, code)
	}
}

func TestPKCEChallenge(t *testing.T) {
	// RFC 7636 appendix B.
	if got := PKCEChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("PKCEChallenge = %s", got)
	}
}

func TestOIDCClient_AuthCodeURL(t *testing.T) {
	t.Parallel()
	p := newOCProvider(t)
	a := newOCAuth(t, p, ocSecret)
	got, err := a.AuthCodeURL(context.Background(), "st-1", "ch-1", ocCallback)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	q := u.Query()
	if u.Path != "/authorize" || q.Get("tenant") != "x" {
		t.Errorf("URL %s lost the endpoint's own path or query", got)
	}
	want := map[string]string{
		"response_type": "code", "client_id": ocClientID, "redirect_uri": ocCallback, "scope": "openid profile email",
		"state": "st-1", "code_challenge": "ch-1", "code_challenge_method": "S256", "nonce": "ch-1",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
}

func TestOIDCClient_ExchangeCode(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		p := newOCProvider(t)
		pr, err := ocLogin(t, newOCAuth(t, p, ocSecret), p)
		if err != nil {
			t.Fatal(err)
		}
		var basic bool
		p.set(func(p *ocProvider) { basic = p.gotBasic })
		if pr.Subject != "user-1" || pr.Email != "user1@example.com" || len(pr.Groups) != 1 || pr.Kind != KindAccess || !basic {
			t.Fatalf("principal %+v, basic auth %v", pr, basic)
		}
	})
	t.Run("ClientSecretPost", func(t *testing.T) {
		t.Parallel()
		p := newOCProvider(t)
		p.set(func(p *ocProvider) { p.authMethods = []string{"client_secret_post", "private_key_jwt"} })
		_, err := ocLogin(t, newOCAuth(t, p, ocSecret), p)
		var basic bool
		p.set(func(p *ocProvider) { basic = p.gotBasic })
		if err != nil || basic {
			t.Fatalf("err %v, basic auth %v", err, basic)
		}
	})
	t.Run("NoNonce", func(t *testing.T) {
		t.Parallel()
		p := newOCProvider(t)
		p.set(func(p *ocProvider) { p.claims = map[string]any{"nonce": nil} })
		if _, err := ocLogin(t, newOCAuth(t, p, ocSecret), p); err != nil {
			t.Fatal(err)
		}
	})
	for name, tc := range map[string]struct {
		secret string
		edit   func(p *ocProvider)
		code   string
	}{
		"ErrSecret":       {secret: "wrong", code: store.EUNAUTHORIZED},
		"ErrNonce":        {edit: func(p *ocProvider) { p.claims = map[string]any{"nonce": "other"} }, code: store.EUNAUTHORIZED},
		"ErrAudience":     {edit: func(p *ocProvider) { p.claims = map[string]any{"aud": "someone-else"} }, code: store.EUNAUTHORIZED},
		"ErrIssuer":       {edit: func(p *ocProvider) { p.claims = map[string]any{"iss": "https://evil.example/"} }, code: store.EUNAUTHORIZED},
		"ErrExpired":      {edit: func(p *ocProvider) { p.claims = map[string]any{"exp": time.Now().Add(-time.Hour).Unix()} }, code: store.EUNAUTHORIZED},
		"ErrNoIDToken":    {edit: func(p *ocProvider) { p.noIDToken = true }, code: store.EUNAUTHORIZED},
		"ErrProviderDown": {edit: func(p *ocProvider) { p.status = http.StatusBadGateway }, code: store.EINTERNAL},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newOCProvider(t)
			if tc.edit != nil {
				p.set(tc.edit)
			}
			secret := ocSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			pr, err := ocLogin(t, newOCAuth(t, p, secret), p)
			if pr != nil {
				t.Fatalf("principal %+v", pr)
			}
			wantErrCode(t, name, err, tc.code)
		})
	}
	t.Run("ErrWrongVerifier", func(t *testing.T) {
		t.Parallel()
		p := newOCProvider(t)
		a := newOCAuth(t, p, ocSecret)
		authURL, err := a.AuthCodeURL(context.Background(), "st-2", PKCEChallenge("right-verifier"), ocCallback)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.ExchangeCode(context.Background(), p.authorize(t, authURL), "wrong-verifier", ocCallback)
		wantErrCode(t, "wrong verifier", err, store.EUNAUTHORIZED)
	})
	t.Run("ErrNoProvider", func(t *testing.T) {
		t.Parallel()
		db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		a, err := New(Config{Store: db, Issuer: "https://opentaco.test"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.AuthCodeURL(context.Background(), "s", "c", ocCallback)
		wantErrCode(t, "AuthCodeURL", err, store.EINVALID)
		_, err = a.ExchangeCode(context.Background(), "c", "v", ocCallback)
		wantErrCode(t, "ExchangeCode", err, store.EINVALID)
	})
}

func TestUsesBasic(t *testing.T) {
	for _, tc := range []struct {
		methods []string
		want    bool
	}{
		{nil, true},
		{[]string{"client_secret_basic", "client_secret_post"}, true},
		{[]string{"client_secret_post"}, false},
		{[]string{"none", "private_key_jwt"}, true},
	} {
		if got := usesBasic(tc.methods); got != tc.want {
			t.Errorf("usesBasic(%v) = %v", tc.methods, got)
		}
	}
}
