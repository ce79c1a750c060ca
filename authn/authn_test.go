package authn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

// epoch is the start of the test clock.
var epoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable test clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testIssuer = "https://opentaco.test"

// env is an Authenticator over a real store in t.TempDir(), with db.Now
// set to a test clock before authn.New reads it.
type env struct {
	db   *store.DB
	clk  *clock
	auth *authn.Authenticator
	cfg  authn.Config
}

func newEnv(t *testing.T, cfg authn.Config) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	clk := &clock{t: epoch}
	db.Now = clk.Now
	cfg.Store = db
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	e := &env{db: db, clk: clk, cfg: cfg}
	e.auth = e.reopen(t, cfg)
	return e
}

// reopen builds another Authenticator over the same store (a restart, or
// one configured differently).
func (e *env) reopen(t *testing.T, cfg authn.Config) *authn.Authenticator {
	t.Helper()
	cfg.Store = e.db
	a, err := authn.New(cfg)
	if err != nil {
		t.Fatalf("authn.New: %v", err)
	}
	return a
}

var alice = &authn.Principal{Subject: "alice", Email: "alice@example.com", Groups: []string{"dev", "ops"}}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var e *store.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: err = %v (%T), want a *store.Error with code %s", what, err, err, code)
	}
	if e.Code != code {
		t.Fatalf("%s: code %s (%s), want %s", what, e.Code, e.Message, code)
	}
}

// wantUnauthorized authenticates cred and fails unless the answer is
// EUNAUTHORIZED with no principal (and no panic).
func wantUnauthorized(t *testing.T, a *authn.Authenticator, what, cred string) {
	t.Helper()
	var p *authn.Principal
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("%s: Authenticate panicked: %v", what, v)
			}
		}()
		p, err = a.Authenticate(context.Background(), cred)
	}()
	if p != nil {
		t.Fatalf("%s: authenticated as %+v, want EUNAUTHORIZED", what, p)
	}
	wantCode(t, what, err, store.EUNAUTHORIZED)
}

// ---------------------------------------------------------------------------
// JWT helpers

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

// jwtParts splits a compact JWS into its decoded header and payload and
// its raw signature part.
func jwtParts(t *testing.T, tok string) (hdr, payload map[string]any, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	if err := json.Unmarshal(unb64(t, parts[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(unb64(t, parts[1]), &payload); err != nil {
		t.Fatal(err)
	}
	return hdr, payload, parts[2]
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signJWT signs payload with key under the header fields hdr (alg and kid
// at least) and returns the compact form.
func signJWT(t *testing.T, alg jwa.SignatureAlgorithm, key any, kid string, payload map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	if kid != "" {
		if err := h.Set(jws.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Set(jws.TypeKey, "JWT"); err != nil {
		t.Fatal(err)
	}
	out, err := jws.Sign(mustJSON(t, payload), jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return string(out)
}

// noneJWT builds an unsigned token (alg "none") by hand.
func noneJWT(t *testing.T, kid string, payload map[string]any) string {
	t.Helper()
	hdr := map[string]any{"alg": "none", "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	return b64(mustJSON(t, hdr)) + "." + b64(mustJSON(t, payload)) + "."
}

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// jwksKIDs returns the kids of a JWKS document.
func jwksKIDs(t *testing.T, doc []byte) []string {
	t.Helper()
	set, err := jwk.Parse(doc)
	if err != nil {
		t.Fatalf("JWKS %s: %v", doc, err)
	}
	var out []string
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if _, ok := k.(jwk.OKPPublicKey); !ok {
			t.Errorf("JWKS key %s is %T, want a public Ed25519 (OKP) key", k.KeyID(), k)
		}
		out = append(out, k.KeyID())
	}
	return out
}

// ---------------------------------------------------------------------------

func TestCredential(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(r *http.Request)
		want string
	}{
		{"None", func(r *http.Request) {}, ""},
		{"Bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, "abc"},
		{"BearerCase", func(r *http.Request) { r.Header.Set("Authorization", "bearer  abc ") }, "abc"},
		{"Basic", func(r *http.Request) { r.SetBasicAuth("x", "otc_pw") }, "otc_pw"},
		{"BasicEmptyPassword", func(r *http.Request) { r.SetBasicAuth("x", "") }, ""},
		{"OtherScheme", func(r *http.Request) { r.Header.Set("Authorization", "Token abc") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/units", nil)
			tc.set(r)
			if got := authn.Credential(r); got != tc.want {
				t.Errorf("Credential = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPrincipalContext(t *testing.T) {
	if p := authn.PrincipalFrom(context.Background()); p != nil {
		t.Errorf("PrincipalFrom(empty) = %+v, want nil", p)
	}
	ctx := authn.WithPrincipal(context.Background(), alice)
	if p := authn.PrincipalFrom(ctx); p != alice {
		t.Errorf("PrincipalFrom = %+v, want alice", p)
	}
}

func TestAuthenticator_Bootstrap(t *testing.T) {
	ctx := context.Background()
	readToken := func(t *testing.T, path string) string {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	wantAdmin := func(t *testing.T, a *authn.Authenticator, tok string) *authn.Principal {
		t.Helper()
		p, err := a.Authenticate(ctx, tok)
		if err != nil {
			t.Fatalf("bootstrap token: %v", err)
		}
		if p.Subject != authn.AdminSubject || !p.IsAdmin() {
			t.Fatalf("bootstrap principal %+v", p)
		}
		return p
	}

	t.Run("CreateReuseRecreate", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		dir := t.TempDir()
		path, err := e.auth.Bootstrap(dir)
		if err != nil {
			t.Fatal(err)
		}
		if path != filepath.Join(dir, authn.AdminTokenFile) {
			t.Fatalf("path %s", path)
		}
		tok1 := readToken(t, path)
		if !strings.HasPrefix(tok1, authn.APITokenPrefix) {
			t.Fatalf("bootstrap token %q lacks the otc_ prefix", tok1)
		}
		p := wantAdmin(t, e.auth, tok1)

		// Second start: the same token.
		if _, err := e.reopen(t, e.cfg).Bootstrap(dir); err != nil {
			t.Fatal(err)
		}
		if tok := readToken(t, path); tok != tok1 {
			t.Fatal("second Bootstrap replaced a working token")
		}
		if ts, _ := e.db.ListAPITokens(authn.AdminSubject); len(ts) != 1 {
			t.Errorf("%d admin tokens after two starts, want 1", len(ts))
		}

		// Revoked: a new token replaces it.
		if err := e.db.RevokeAPIToken(p.TokenID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.auth.Bootstrap(dir); err != nil {
			t.Fatal(err)
		}
		tok2 := readToken(t, path)
		if tok2 == tok1 {
			t.Fatal("Bootstrap kept a revoked token")
		}
		wantAdmin(t, e.auth, tok2)

		// Unknown (e.g. the data dir of another database).
		if err := os.WriteFile(path, []byte("otc_unknown\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := e.auth.Bootstrap(dir); err != nil {
			t.Fatal(err)
		}
		tok3 := readToken(t, path)
		if tok3 == "otc_unknown" || tok3 == tok2 {
			t.Fatalf("Bootstrap kept an unknown token: %q", tok3)
		}
		wantAdmin(t, e.auth, tok3)
	})

	t.Run("TightensMode", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		dir := t.TempDir()
		path, err := e.auth.Bootstrap(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := e.auth.Bootstrap(dir); err != nil {
			t.Fatal(err)
		}
		readToken(t, path)
	})

	t.Run("StaleTempFile", func(t *testing.T) {
		// A temp file left by a crash, with a loose mode, must not make
		// the token file readable by others.
		e := newEnv(t, authn.Config{})
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, authn.AdminTokenFile+".tmp"), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := e.auth.Bootstrap(dir)
		if err != nil {
			t.Fatal(err)
		}
		wantAdmin(t, e.auth, readToken(t, path))
	})
}
