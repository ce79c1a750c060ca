package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
	"github.com/opentaco/opentaco/tfe"
)

const authIssuer = "http://opentaco.test"

// authServer is the real server wiring with authentication on, TFE
// registered, on 127.0.0.1:0.
type authServer struct {
	URL   string
	db    *store.DB
	auth  *authn.Authenticator
	admin string // the bootstrap admin token
	// past is an Authenticator over the same store whose clock is two
	// hours behind: what it issues has already expired.
	past *authn.Authenticator
	log  *lockedBuffer // the server's request log
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authn.New(authn.Config{Store: db, Issuer: authIssuer})
	if err != nil {
		t.Fatal(err)
	}
	db.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	past, err := authn.New(authn.Config{Store: db, Issuer: authIssuer})
	db.Now = time.Now // before anything else reads it
	if err != nil {
		t.Fatal(err)
	}
	path, err := auth.Bootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &lockedBuffer{}
	srv := httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.New(logBuf), Auth: auth})
	tfe.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return &authServer{URL: "http://" + ln.Addr().String(), db: db, auth: auth, admin: strings.TrimSpace(string(admin)), past: past, log: logBuf}
}

// noRedirect never follows a redirect, so a 3xx is seen as such.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// cred says how a request carries its credential.
type cred struct {
	bearer string // Authorization: Bearer
	basic  string // basic auth password, user "x"
	none   bool
}

func bearer(tok string) cred { return cred{bearer: tok} }

func (c cred) apply(r *http.Request) {
	switch {
	case c.none:
	case c.basic != "":
		r.SetBasicAuth("x", c.basic)
	default:
		r.Header.Set("Authorization", "Bearer "+c.bearer)
	}
}

func (s *authServer) call(t *testing.T, method, path string, c cred, body []byte) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.apply(req)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *authServer) want(t *testing.T, what string, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, a.status, status, a.body)
	}
}

// want401 checks a refusal: 401, a JSON body of the surface's shape,
// WWW-Authenticate, no redirect.
func want401(t *testing.T, what, path string, a answer) {
	t.Helper()
	if a.status != http.StatusUnauthorized {
		t.Errorf("%s: status %d, want 401; body %.300s", what, a.status, a.body)
		return
	}
	if a.header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without WWW-Authenticate", what)
	}
	if loc := a.header.Get("Location"); loc != "" {
		t.Errorf("%s: 401 with Location %q", what, loc)
	}
	ct := a.header.Get("Content-Type")
	tfePath := strings.HasPrefix(path, "/tfe/api/v2/") || strings.HasPrefix(path, "/api/v2/")
	if tfePath {
		var doc struct {
			Errors []struct{ Status, Title, Detail string } `json:"errors"`
		}
		if ct != "application/vnd.api+json" {
			t.Errorf("%s: Content-Type %q, want application/vnd.api+json", what, ct)
		}
		if err := json.Unmarshal(a.body, &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Status != "401" {
			t.Errorf("%s: body %s is not a JSON:API 401 error document (%v)", what, a.body, err)
		}
		return
	}
	var body httpapi.ErrorBody
	if !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if err := json.Unmarshal(a.body, &body); err != nil || body.Code != store.EUNAUTHORIZED || body.Error == "" {
		t.Errorf("%s: body %s, want {\"error\": ..., \"code\": \"unauthorized\"} (%v)", what, a.body, err)
	}
}

// ---------------------------------------------------------------------------
// Forged credentials

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// forged returns credentials that must all be refused: forged, expired,
// revoked, of the wrong kind, or nonsense.
func (s *authServer) forged(t *testing.T) map[string]string {
	t.Helper()
	admin := &authn.Principal{Subject: authn.AdminSubject}
	good, err := s.auth.IssueAccess(admin)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	var hdr, payload map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(pb, &payload) != nil {
		t.Fatalf("cannot decode %s", good)
	}
	kid, _ := hdr["kid"].(string)

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, kid)
	sameKID, err := jws.Sign(mustJSONBytes(t, payload), jws.WithKey(jwa.EdDSA, otherKey, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	none := b64url(mustJSONBytes(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid})) + "." + parts[1] + "."
	longer := map[string]any{}
	for k, v := range payload {
		longer[k] = v
	}
	longer["sub"] = "root"
	longer["exp"] = payload["exp"].(float64) + 86400
	tampered := parts[0] + "." + b64url(mustJSONBytes(t, longer)) + "." + parts[2]

	otherAud, err := authn.New(authn.Config{Store: s.db, Issuer: authIssuer, Audience: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, _ := otherAud.IssueAccess(admin)
	otherIss, err := authn.New(authn.Config{Store: s.db, Issuer: "http://evil.test"})
	if err != nil {
		t.Fatal(err)
	}
	wrongIss, _ := otherIss.IssueAccess(admin)
	expired, _ := s.past.IssueAccess(admin)
	expiredAPI, _, err := s.past.CreateAPIToken(admin, "expired", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	revoked, rt, err := s.auth.CreateAPIToken(admin, "revoked", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.RevokeAPIToken(rt.ID); err != nil {
		t.Fatal(err)
	}
	pair, err := s.auth.IssuePair(admin)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"OtherKeySameKID":   string(sameKID),
		"AlgNone":           none,
		"TamperedPayload":   tampered,
		"WrongAudience":     wrongAud,
		"WrongIssuer":       wrongIss,
		"ExpiredAccess":     expired,
		"ExpiredAPIToken":   expiredAPI,
		"RevokedAPIToken":   revoked,
		"RefreshToken":      pair.RefreshToken,
		"RandomAPIToken":    authn.APITokenPrefix + b64url(make([]byte, 32)),
		"AdminTokenMangled": s.admin[:len(s.admin)-1] + "x",
		"Garbage":           "garbage",
		"Dots":              "..",
		"Long":              strings.Repeat("A", 8<<10),
	}
}

// protected are requests on every surface that need a credential.
var protected = []struct {
	name, method, path string
	body               string
}{
	{"V1List", http.MethodGet, "/v1/units", ""},
	{"V1Unit", http.MethodGet, "/v1/units/x", ""},
	{"V1Me", http.MethodGet, "/v1/auth/me", ""},
	{"V1Tokens", http.MethodGet, "/v1/tokens", ""},
	{"V1CreateToken", http.MethodPost, "/v1/tokens", `{"name":"sneaky"}`},
	{"V1Unknown", http.MethodGet, "/v1/nope", ""},
	{"BackendGet", http.MethodGet, "/v1/backend/x", ""},
	{"BackendPost", http.MethodPost, "/v1/backend/x", `{"version":4,"serial":1,"lineage":"l","outputs":{},"resources":[]}`},
	{"BackendLock", "LOCK", "/v1/backend/x", `{"ID":"L1","Operation":"OperationTypeApply","Info":"","Who":"w","Version":"1.11.4","Created":"2025-01-01T00:00:00Z","Path":""}`},
	{"BackendUnlock", "UNLOCK", "/v1/backend/x", `{"ID":"L1"}`},
	{"BackendPostLock", http.MethodPost, "/v1/backend/x/lock", `{"ID":"L1"}`},
	{"TFEWorkspaces", http.MethodGet, "/tfe/api/v2/organizations/acme/workspaces", ""},
	{"TFEPing", http.MethodGet, "/tfe/api/v2/ping", ""},
	{"APIPing", http.MethodGet, "/api/v2/ping", ""},
	{"APIAccount", http.MethodGet, "/api/v2/account/details", ""},
}

func TestAuth_Refused(t *testing.T) {
	s := newAuthServer(t)
	bad := s.forged(t)
	for _, rq := range protected {
		t.Run(rq.name, func(t *testing.T) {
			var body []byte
			if rq.body != "" {
				body = []byte(rq.body)
			}
			want401(t, "no credential", rq.path, s.call(t, rq.method, rq.path, cred{none: true}, body))
			want401(t, "empty bearer", rq.path, s.call(t, rq.method, rq.path, bearer(""), body))
			for name, c := range bad {
				want401(t, name, rq.path, s.call(t, rq.method, rq.path, bearer(c), body))
				if strings.HasPrefix(rq.path, "/v1/backend/") {
					want401(t, name+" (basic auth)", rq.path, s.call(t, rq.method, rq.path, cred{basic: c}, body))
				}
			}
		})
	}
	// Nothing was written, nothing locked.
	if l, err := s.db.GetLock("x"); err == nil && l != nil {
		t.Errorf("unit x is locked by %+v after refused requests", l)
	}
	if vs, err := s.db.ListVersions("x"); err == nil && len(vs) > 0 {
		t.Errorf("unit x has %d versions after refused requests", len(vs))
	}
	toks, _ := s.db.ListAPITokens("")
	for _, tk := range toks {
		if tk.Name == "sneaky" {
			t.Errorf("a refused request created token %+v", tk)
		}
	}
}

func TestAuth_Accepted(t *testing.T) {
	s := newAuthServer(t)
	access, err := s.auth.IssueAccess(&authn.Principal{Subject: authn.AdminSubject})
	if err != nil {
		t.Fatal(err)
	}
	// Every credential kind works on every surface.
	for name, c := range map[string]cred{
		"APITokenBearer": bearer(s.admin), "APITokenBasic": {basic: s.admin},
		"AccessBearer": bearer(access), "AccessBasic": {basic: access},
	} {
		t.Run(name, func(t *testing.T) {
			s.want(t, "GET /v1/units", s.call(t, http.MethodGet, "/v1/units", c, nil), http.StatusOK)
			s.want(t, "backend GET (no state yet)", s.call(t, http.MethodGet, "/v1/backend/acc-"+name, c, nil), http.StatusNotFound)
			s.want(t, "backend LOCK", s.call(t, "LOCK", "/v1/backend/acc-"+name, c, []byte(`{"ID":"L1","Who":"w","Operation":"OperationTypeApply"}`)), http.StatusOK)
			s.want(t, "backend POST", s.call(t, http.MethodPost, "/v1/backend/acc-"+name+"?ID=L1", c, state(1)), http.StatusOK)
			s.want(t, "backend UNLOCK", s.call(t, "UNLOCK", "/v1/backend/acc-"+name, c, []byte(`{"ID":"L1"}`)), http.StatusOK)
			s.want(t, "TFE workspaces", s.call(t, http.MethodGet, "/tfe/api/v2/organizations/acme/workspaces", c, nil), http.StatusOK)
			ping := s.call(t, http.MethodGet, "/api/v2/ping", c, nil)
			if ping.status/100 != 2 || ping.header.Get("TFP-API-Version") == "" {
				t.Errorf("ping: status %d, TFP-API-Version %q", ping.status, ping.header.Get("TFP-API-Version"))
			}
			me := s.call(t, http.MethodGet, "/v1/auth/me", c, nil)
			s.want(t, "me", me, http.StatusOK)
			var p authn.Principal
			if err := json.Unmarshal(me.body, &p); err != nil || p.Subject != authn.AdminSubject || !slices.Contains(p.Roles, "admin") {
				t.Errorf("me: %s (%v)", me.body, err)
			}
		})
	}
}

func TestAuth_OpenRoutes(t *testing.T) {
	s := newAuthServer(t)
	bad := s.forged(t)
	for _, path := range []string{"/healthz", "/readyz", "/v1/auth/config", "/oidc/jwks.json", "/.well-known/terraform.json"} {
		t.Run(strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			s.want(t, "no credential", s.call(t, http.MethodGet, path, cred{none: true}, nil), http.StatusOK)
			for name, c := range bad {
				s.want(t, name, s.call(t, http.MethodGet, path, bearer(c), nil), http.StatusOK)
			}
			s.want(t, "valid credential", s.call(t, http.MethodGet, path, bearer(s.admin), nil), http.StatusOK)
		})
	}
	cfg := s.call(t, http.MethodGet, "/v1/auth/config", cred{none: true}, nil)
	var ac httpapi.AuthConfig
	if err := json.Unmarshal(cfg.body, &ac); err != nil || !ac.AuthEnabled || !ac.BuiltinAdmin || ac.OIDC != nil {
		t.Errorf("auth config %s (%v)", cfg.body, err)
	}
	jwks := s.call(t, http.MethodGet, "/oidc/jwks.json", cred{none: true}, nil)
	if !strings.Contains(string(jwks.body), `"kty":"OKP"`) || strings.Contains(string(jwks.body), `"d":`) {
		t.Errorf("JWKS %s: want public OKP keys only", jwks.body)
	}
	// The open auth endpoints refuse a bad body on their own terms, even
	// with a stale credential alongside.
	a := s.call(t, http.MethodPost, "/v1/auth/token", bearer(bad["ExpiredAccess"]), []byte(`{"refresh_token":"otr_nope"}`))
	want401(t, "refresh with an unknown refresh token", "/v1/auth/token", a)
}

func TestAuth_Tokens(t *testing.T) {
	s := newAuthServer(t)
	admin := bearer(s.admin)

	create := func(t *testing.T, c cred, body string) httpapi.CreatedToken {
		t.Helper()
		a := s.call(t, http.MethodPost, "/v1/tokens", c, []byte(body))
		s.want(t, "POST /v1/tokens "+body, a, http.StatusCreated)
		if cc := a.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("created token: Cache-Control %q, want no-store", cc)
		}
		var ct httpapi.CreatedToken
		if err := json.Unmarshal(a.body, &ct); err != nil || !strings.HasPrefix(ct.Token, authn.APITokenPrefix) || ct.APIToken == nil {
			t.Fatalf("created token %s (%v)", a.body, err)
		}
		if strings.Contains(string(a.body), `"hash"`) {
			t.Errorf("created token leaks its hash: %s", a.body)
		}
		return ct
	}
	list := func(t *testing.T, c cred, query string) []string {
		t.Helper()
		a := s.call(t, http.MethodGet, "/v1/tokens"+query, c, nil)
		s.want(t, "GET /v1/tokens"+query, a, http.StatusOK)
		var tl httpapi.TokenList
		if err := json.Unmarshal(a.body, &tl); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tk := range tl.Tokens {
			names = append(names, tk.Name)
		}
		slices.Sort(names)
		return names
	}
	works := func(t *testing.T, what, tok string, ok bool) {
		t.Helper()
		for _, rq := range []struct{ method, path string }{
			{http.MethodGet, "/v1/units"},
			{http.MethodGet, "/v1/backend/tok-unit"},
			{http.MethodGet, "/tfe/api/v2/organizations/acme/workspaces"},
		} {
			for _, c := range []cred{bearer(tok), {basic: tok}} {
				a := s.call(t, rq.method, rq.path, c, nil)
				if ok && a.status == http.StatusUnauthorized {
					t.Errorf("%s: %s %s refused: %s", what, rq.method, rq.path, a.body)
				} else if !ok {
					want401(t, what+" "+rq.method+" "+rq.path, rq.path, a)
				}
			}
		}
	}

	t.Run("RevokeAtOnce", func(t *testing.T) {
		ct := create(t, admin, `{"name":"ci"}`)
		if ct.Owner != authn.AdminSubject || ct.Name != "ci" || ct.Expires != nil {
			t.Errorf("created %+v", ct.APIToken)
		}
		works(t, "new token", ct.Token, true)
		s.want(t, "DELETE", s.call(t, http.MethodDelete, "/v1/tokens/"+ct.ID, admin, nil), http.StatusNoContent)
		works(t, "revoked token", ct.Token, false)
		s.want(t, "DELETE unknown", s.call(t, http.MethodDelete, "/v1/tokens/at-nope", admin, nil), http.StatusNotFound)
	})

	t.Run("Expiry", func(t *testing.T) {
		ct := create(t, admin, `{"name":"short","expires_in":1}`)
		if ct.Expires == nil {
			t.Fatal("no expiry")
		}
		works(t, "fresh", ct.Token, true)
		time.Sleep(time.Until(*ct.Expires) + 100*time.Millisecond)
		works(t, "expired", ct.Token, false)
		a := s.call(t, http.MethodPost, "/v1/tokens", admin, []byte(`{"name":"neg","expires_in":-1}`))
		s.want(t, "negative expires_in", a, http.StatusBadRequest)
		s.want(t, "no name", s.call(t, http.MethodPost, "/v1/tokens", admin, []byte(`{}`)), http.StatusBadRequest)
	})

	t.Run("Owners", func(t *testing.T) {
		bobSecret, _, err := s.auth.CreateAPIToken(&authn.Principal{Subject: "bob"}, "bob-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		bob := bearer(bobSecret)
		// A principal without a role manages its own tokens only.
		bob2 := create(t, bob, `{"name":"bob-2"}`)
		if bob2.Owner != "bob" {
			t.Errorf("bob's token owned by %q", bob2.Owner)
		}
		adminTok := create(t, admin, `{"name":"admin-x"}`)
		if got := list(t, bob, ""); !slices.Equal(got, []string{"bob-1", "bob-2"}) {
			t.Errorf("bob lists %v, want [bob-1 bob-2]", got)
		}
		if got := list(t, admin, ""); slices.Contains(got, "bob-1") || !slices.Contains(got, "admin-x") {
			t.Errorf("admin lists %v: want its own tokens only", got)
		}
		a := s.call(t, http.MethodGet, "/v1/tokens?all=true", bob, nil)
		s.want(t, "bob lists all", a, http.StatusForbidden)
		if got := list(t, admin, "?all=true"); !slices.Contains(got, "bob-1") || !slices.Contains(got, "admin-x") {
			t.Errorf("admin lists all: %v", got)
		}
		// Another's token does not exist for bob.
		s.want(t, "bob revokes admin's token", s.call(t, http.MethodDelete, "/v1/tokens/"+adminTok.ID, bob, nil), http.StatusNotFound)
		works(t, "admin's token after bob's attempt", adminTok.Token, true)
		s.want(t, "bob revokes his own", s.call(t, http.MethodDelete, "/v1/tokens/"+bob2.ID, bob, nil), http.StatusNoContent)
		works(t, "bob's revoked token", bob2.Token, false)
		// The admin may revoke anyone's.
		bobTokens, _ := s.db.ListAPITokens("bob")
		for _, tk := range bobTokens {
			if tk.Name == "bob-1" {
				s.want(t, "admin revokes bob's", s.call(t, http.MethodDelete, "/v1/tokens/"+tk.ID, admin, nil), http.StatusNoContent)
			}
		}
		works(t, "bob-1 revoked by the admin", bobSecret, false)
	})
}

func TestAuth_Session(t *testing.T) {
	s := newAuthServer(t)

	t.Run("MeWithoutCredential", func(t *testing.T) {
		want401(t, "me", "/v1/auth/me", s.call(t, http.MethodGet, "/v1/auth/me", cred{none: true}, nil))
	})

	t.Run("RefreshRotates", func(t *testing.T) {
		pair, err := s.auth.IssuePair(&authn.Principal{Subject: authn.AdminSubject, Email: "root@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(tok string) answer {
			return s.call(t, http.MethodPost, "/v1/auth/token", cred{none: true}, mustJSONBytes(t, map[string]string{"refresh_token": tok}))
		}
		a := refresh(pair.RefreshToken)
		s.want(t, "refresh", a, http.StatusOK)
		if cc := a.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("refresh: Cache-Control %q", cc)
		}
		var next authn.TokenPair
		if err := json.Unmarshal(a.body, &next); err != nil || next.TokenType != "Bearer" || next.ExpiresIn <= 0 || next.RefreshToken == pair.RefreshToken || next.AccessToken == "" {
			t.Fatalf("refreshed pair %s (%v)", a.body, err)
		}
		me := s.call(t, http.MethodGet, "/v1/auth/me", bearer(next.AccessToken), nil)
		s.want(t, "me with the refreshed access token", me, http.StatusOK)
		if !strings.Contains(string(me.body), `"subject":"admin"`) || !strings.Contains(string(me.body), "root@example.com") {
			t.Errorf("me: %s", me.body)
		}
		// A racing second refresh gets the same pair.
		a = refresh(pair.RefreshToken)
		s.want(t, "refresh within the grace window", a, http.StatusOK)
		var again authn.TokenPair
		_ = json.Unmarshal(a.body, &again)
		if again != next {
			t.Errorf("second refresh gave %+v, want %+v", again, next)
		}
		// Logout revokes the family.
		s.want(t, "logout", s.call(t, http.MethodPost, "/v1/auth/logout", bearer(next.AccessToken), mustJSONBytes(t, map[string]string{"refresh_token": next.RefreshToken})), http.StatusNoContent)
		want401(t, "refresh after logout", "/v1/auth/token", refresh(next.RefreshToken))
		s.want(t, "refresh without a token", s.call(t, http.MethodPost, "/v1/auth/token", cred{none: true}, []byte(`{}`)), http.StatusBadRequest)
	})

	t.Run("ExchangeWithoutOIDC", func(t *testing.T) {
		a := s.call(t, http.MethodPost, "/v1/auth/exchange", cred{none: true}, []byte(`{"id_token":"a.b.c"}`))
		s.want(t, "exchange without a provider", a, http.StatusBadRequest)
		var body httpapi.ErrorBody
		if err := json.Unmarshal(a.body, &body); err != nil || body.Code != store.EINVALID {
			t.Errorf("exchange: %s", a.body)
		}
	})

	t.Run("S3Creds", func(t *testing.T) {
		want401(t, "issue-s3-creds without a credential", "/v1/auth/issue-s3-creds", s.call(t, http.MethodPost, "/v1/auth/issue-s3-creds", cred{none: true}, nil))
		a := s.call(t, http.MethodPost, "/v1/auth/issue-s3-creds", bearer(s.admin), nil)
		s.want(t, "issue-s3-creds", a, http.StatusOK)
		var c authn.S3Credentials
		if err := json.Unmarshal(a.body, &c); err != nil || c.Version != 1 || c.AccessKeyID == "" {
			t.Fatalf("S3 credentials %s (%v)", a.body, err)
		}
		if p, _, err := s.auth.VerifyS3Session(c.AccessKeyID, c.SessionToken); err != nil || p.Subject != authn.AdminSubject {
			t.Errorf("VerifyS3Session: %+v, %v", p, err)
		}
	})
}

// TestAuth_RequestLog: the request log names the authenticated principal
// (and never the credential); a refused request is logged as anonymous.
func TestAuth_RequestLog(t *testing.T) {
	s := newAuthServer(t)
	s.want(t, "GET /v1/units", s.call(t, http.MethodGet, "/v1/units", bearer(s.admin), nil), http.StatusOK)
	s.want(t, "backend GET", s.call(t, http.MethodGet, "/v1/backend/logged", cred{basic: s.admin}, nil), http.StatusNotFound)
	want401(t, "refused", "/v1/units", s.call(t, http.MethodGet, "/v1/units", bearer("garbage"), nil))
	var lines []struct {
		Message, Method, Route, Principal string
		Status                            int
	}
	for _, l := range strings.Split(strings.TrimSpace(s.log.String()), "\n") {
		var line struct {
			Message, Method, Route, Principal string
			Status                            int
		}
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if line.Message == "request" {
			lines = append(lines, line)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d request lines, want 3:\n%s", len(lines), s.log.String())
	}
	for i, want := range []string{authn.AdminSubject, authn.AdminSubject, "anonymous"} {
		if lines[i].Principal != want {
			t.Errorf("request %d (%s %s → %d) logged principal %q, want %q", i, lines[i].Method, lines[i].Route, lines[i].Status, lines[i].Principal, want)
		}
	}
	if strings.Contains(s.log.String(), s.admin) {
		t.Error("the request log holds the admin token")
	}
}
