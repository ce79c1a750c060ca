package tfe

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// loginEnv is the real server wiring (httpapi + tfe) without an OIDC
// provider, on an httptest server, with a clock the test moves.
type loginEnv struct {
	url   string
	auth  *authn.Authenticator
	db    *store.DB
	admin string // the bootstrap admin token
	hc    *http.Client

	mu  sync.Mutex
	now time.Time
}

func newLoginEnv(t *testing.T, authDisabled bool) *loginEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &loginEnv{db: db, now: time.Now()}
	cfg := httpapi.Config{Store: db, Logger: zerolog.Nop(), AuthDisabled: authDisabled}
	if !authDisabled {
		if e.auth, err = authn.New(authn.Config{Store: db, Issuer: "http://opentaco.test"}); err != nil {
			t.Fatal(err)
		}
		path, err := e.auth.Bootstrap(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		e.admin = strings.TrimSpace(string(b))
		cfg.Auth = e.auth
	}
	srv := httpapi.NewServer(cfg)
	api := Register(srv)
	api.now = e.clock
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e.url = ts.URL
	e.hc = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *loginEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *loginEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (e *loginEnv) get(t *testing.T, path string, q url.Values) answer {
	t.Helper()
	resp, err := e.hc.Get(e.url + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, resp)
}

func (e *loginEnv) post(t *testing.T, path string, form url.Values) answer {
	t.Helper()
	resp, err := e.hc.PostForm(e.url+path, form)
	if err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// Terraform's shapes: a UUID state and a "<uuid>.<9 digits>" verifier.
const (
	tfState    = "0b7e3f0e-8c53-4c31-9b1a-4e3c1f1b2a6d"
	tfVerifier = "1f0c8b3e-7a1d-4f55-8e0b-2c9d4a7e6b10.123456789"
	tfRedirect = "http://localhost:10005/login"
)

// authzQuery is a valid authorization request from Terraform.
func authzQuery(client string) url.Values {
	return url.Values{
		"client_id": {client}, "redirect_uri": {tfRedirect}, "response_type": {"code"}, "state": {tfState},
		"code_challenge": {authn.PKCEChallenge(tfVerifier)}, "code_challenge_method": {"S256"},
	}
}

// login runs the login page with token and returns the code from the
// redirect to the client.
func (e *loginEnv) login(t *testing.T, client, token string) string {
	t.Helper()
	form := authzQuery(client)
	form.Set("token", token)
	a := e.post(t, "/oauth/authorization", form)
	if a.status != http.StatusFound {
		t.Fatalf("POST /oauth/authorization: %d %s", a.status, a.body)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != tfRedirect {
		t.Fatalf("redirected to %s, want %s", got, tfRedirect)
	}
	if loc.Query().Get("state") != tfState || loc.Query().Get("code") == "" {
		t.Fatalf("redirect query %q lacks the code or the unchanged state", loc.RawQuery)
	}
	return loc.Query().Get("code")
}

func tokenForm(code, client string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {tfVerifier}, "client_id": {client}, "redirect_uri": {tfRedirect}}
}

// oauthErr checks an OAuth JSON error answer.
func oauthErr(t *testing.T, a answer, want string) {
	t.Helper()
	var body struct{ Error, ErrorDescription string }
	_ = json.Unmarshal([]byte(a.body), &body)
	if a.status != http.StatusBadRequest || body.Error != want || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("got %d %s %s, want 400 {\"error\":%q}", a.status, a.header.Get("Content-Type"), a.body, want)
	}
}

func TestLogin_Authorize(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t, false)
	t.Run("Page", func(t *testing.T) {
		a := e.get(t, "/oauth/authorization", authzQuery("terraform-cli"))
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("got %d %s", a.status, a.header.Get("Content-Type"))
		}
		for _, want := range []string{"<title>", `type="password"`, `name="token"`, `action="/oauth/authorization"`, `value="` + tfState + `"`, "admin.token", `name="code_challenge_method" value="S256"`} {
			if !strings.Contains(a.body, want) {
				t.Errorf("login page lacks %q", want)
			}
		}
		if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})
	t.Run("ErrRedirectURI", func(t *testing.T) {
		for _, uri := range []string{
			"", "https://localhost:10005/login", "http://localhost:9999/login", "http://localhost:10011/login",
			"http://localhost/login", "http://example.com:10005/login", "http://localhost.example.com:10005/login",
			"http://127.0.0.2:10005/login", "http://[::1]:10005/login", "http://localhost:10005/", "http://localhost:10005/login/",
			"http://localhost:10005/login?next=http://evil", "http://localhost:10005/login#x", "http://u:p@localhost:10005/login",
			"http://localhost:010005/login", "http://localhost:+10005/login", "//evil.example/login", "javascript:alert(1)",
			"http://localhost:10005/%6cogin",
		} {
			q := authzQuery("terraform-cli")
			q.Set("redirect_uri", uri)
			for _, a := range []answer{e.get(t, "/oauth/authorization", q), e.post(t, "/oauth/authorization", withToken(q, e.admin))} {
				if a.status != http.StatusBadRequest || a.header.Get("Location") != "" || !strings.Contains(a.body, "redirect_uri") {
					t.Errorf("redirect_uri %q: %d Location=%q", uri, a.status, a.header.Get("Location"))
				}
			}
		}
	})
	t.Run("ErrRequest", func(t *testing.T) {
		for name, edit := range map[string]func(url.Values){
			"NoClientID":      func(q url.Values) { q.Del("client_id") },
			"ResponseToken":   func(q url.Values) { q.Set("response_type", "token") },
			"NoChallenge":     func(q url.Values) { q.Del("code_challenge") },
			"MethodPlain":     func(q url.Values) { q.Set("code_challenge_method", "plain") },
			"NoMethod":        func(q url.Values) { q.Del("code_challenge_method") },
			"ShortChallenge":  func(q url.Values) { q.Set("code_challenge", "abc") },
			"BadChallenge":    func(q url.Values) { q.Set("code_challenge", strings.Repeat("+", 43)) },
			"HugeState":       func(q url.Values) { q.Set("state", strings.Repeat("s", 5000)) },
			"ClientWithHTML":  func(q url.Values) { q.Set("client_id", "<b>x</b>"); q.Del("code_challenge") },
			"BadRedirectLast": func(q url.Values) { q.Set("redirect_uri", "http://evil.example:10005/login") },
		} {
			q := authzQuery("terraform-cli")
			edit(q)
			a := e.get(t, "/oauth/authorization", q)
			if a.status != http.StatusBadRequest || a.header.Get("Location") != "" || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
				t.Errorf("%s: %d %s Location=%q", name, a.status, a.header.Get("Content-Type"), a.header.Get("Location"))
			}
			if strings.Contains(a.body, "<b>x</b>") {
				t.Errorf("%s: page echoes HTML unescaped", name)
			}
		}
	})
	t.Run("ErrToken", func(t *testing.T) {
		for _, tok := range []string{"", "otc_wrong", "garbage"} {
			a := e.post(t, "/oauth/authorization", withToken(authzQuery("terraform-cli"), tok))
			if a.status != http.StatusUnauthorized || a.header.Get("Location") != "" || !strings.Contains(a.body, "not accepted") || !strings.Contains(a.body, `name="token"`) {
				t.Errorf("token %q: %d Location=%q body lacks the error or the form", tok, a.status, a.header.Get("Location"))
			}
		}
	})
	t.Run("ErrCallback", func(t *testing.T) {
		for _, q := range []url.Values{{"state": {"x"}, "code": {"y"}}, {"state": {"x"}, "error": {"access_denied"}}, {}} {
			a := e.get(t, "/oauth/callback", q)
			if a.status != http.StatusBadRequest || a.header.Get("Location") != "" {
				t.Errorf("callback %v: %d Location=%q", q, a.status, a.header.Get("Location"))
			}
		}
	})
}

func withToken(q url.Values, token string) url.Values {
	f := url.Values{}
	for k, v := range q {
		f[k] = v
	}
	f.Set("token", token)
	return f
}

func TestLogin_Token(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t, false)
	t.Run("APIToken", func(t *testing.T) {
		code := e.login(t, "terraform-cli", e.admin)
		a := e.post(t, "/oauth/token", tokenForm(code, "terraform-cli"))
		var body map[string]any
		if err := json.Unmarshal([]byte(a.body), &body); err != nil || a.status != http.StatusOK {
			t.Fatalf("got %d %s", a.status, a.body)
		}
		if a.header.Get("Content-Type") != "application/json" || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("headers %v", a.header)
		}
		tok, _ := body["access_token"].(string)
		if !strings.HasPrefix(tok, authn.APITokenPrefix) || body["token_type"] != "bearer" || body["refresh_token"] != nil {
			t.Fatalf("body %s", a.body)
		}
		p, err := e.auth.Authenticate(t.Context(), tok)
		if err != nil || p.Subject != authn.AdminSubject || p.Kind != authn.KindAPIToken {
			t.Fatalf("Authenticate(new token) = %+v, %v", p, err)
		}
		got, err := e.db.GetAPIToken(p.TokenID)
		if err != nil || got.Name != "terraform-cli (terraform login)" || got.Expires != nil {
			t.Fatalf("stored token %+v, %v", got, err)
		}
		oauthErr(t, e.post(t, "/oauth/token", tokenForm(code, "terraform-cli")), "invalid_grant") // reused
	})
	t.Run("CLIPair", func(t *testing.T) {
		code := e.login(t, CLIClientID, e.admin)
		a := e.post(t, "/oauth/token", tokenForm(code, CLIClientID))
		var body struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    int    `json:"expires_in"`
			TokenType    string `json:"token_type"`
		}
		if err := json.Unmarshal([]byte(a.body), &body); err != nil || a.status != http.StatusOK {
			t.Fatalf("got %d %s", a.status, a.body)
		}
		if strings.HasPrefix(body.AccessToken, authn.APITokenPrefix) || body.RefreshToken == "" || body.ExpiresIn <= 0 || body.TokenType != "bearer" {
			t.Fatalf("body %s", a.body)
		}
		if p, err := e.auth.Authenticate(t.Context(), body.AccessToken); err != nil || p.Subject != authn.AdminSubject || p.Kind != authn.KindAccess {
			t.Fatalf("Authenticate(access) = %+v, %v", p, err)
		}
		if _, err := e.auth.Refresh(body.RefreshToken); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
	})
	t.Run("ErrGrant", func(t *testing.T) {
		for name, edit := range map[string]func(url.Values){
			"WrongVerifier":    func(f url.Values) { f.Set("code_verifier", tfVerifier+"0") },
			"OtherClient":      func(f url.Values) { f.Set("client_id", "other-cli") },
			"OtherRedirectURI": func(f url.Values) { f.Set("redirect_uri", "http://localhost:10006/login") },
			"OtherHost":        func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:10005/login") },
			"UnknownCode":      func(f url.Values) { f.Set("code", "nope") },
		} {
			code := e.login(t, "terraform-cli", e.admin)
			f := tokenForm(code, "terraform-cli")
			edit(f)
			a := e.post(t, "/oauth/token", f)
			oauthErr(t, a, "invalid_grant")
			if name != "UnknownCode" { // any attempt with the code spends it
				oauthErr(t, e.post(t, "/oauth/token", tokenForm(code, "terraform-cli")), "invalid_grant")
			}
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		code := e.login(t, "terraform-cli", e.admin)
		e.advance(codeTTL + time.Second)
		oauthErr(t, e.post(t, "/oauth/token", tokenForm(code, "terraform-cli")), "invalid_grant")
		code = e.login(t, "terraform-cli", e.admin)
		e.advance(codeTTL - time.Second)
		if a := e.post(t, "/oauth/token", tokenForm(code, "terraform-cli")); a.status != http.StatusOK {
			t.Fatalf("code used just before expiry: %d %s", a.status, a.body)
		}
	})
	t.Run("ErrRequest", func(t *testing.T) {
		code := e.login(t, "terraform-cli", e.admin)
		for _, k := range []string{"code", "code_verifier", "client_id", "redirect_uri", "grant_type"} {
			f := tokenForm(code, "terraform-cli")
			f.Del(k)
			oauthErr(t, e.post(t, "/oauth/token", f), "invalid_request")
		}
		f := tokenForm(code, "terraform-cli")
		f.Set("grant_type", "password")
		oauthErr(t, e.post(t, "/oauth/token", f), "unsupported_grant_type")
		resp, err := e.hc.Post(e.url+"/oauth/token", "application/json", strings.NewReader(`{"grant_type":"authorization_code"}`))
		if err != nil {
			t.Fatal(err)
		}
		oauthErr(t, readAnswer(t, resp), "invalid_request")
		resp, err = e.hc.Post(e.url+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader("%zz"))
		if err != nil {
			t.Fatal(err)
		}
		oauthErr(t, readAnswer(t, resp), "invalid_request")
		// The code was never spent by the malformed requests.
		if a := e.post(t, "/oauth/token", tokenForm(code, "terraform-cli")); a.status != http.StatusOK {
			t.Fatalf("after malformed requests: %d %s", a.status, a.body)
		}
	})
	t.Run("StaleBearerIgnored", func(t *testing.T) {
		code := e.login(t, "terraform-cli", e.admin)
		req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth/token", strings.NewReader(tokenForm(code, "terraform-cli").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer otc_stale")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if a := readAnswer(t, resp); a.status != http.StatusOK {
			t.Fatalf("with a stale bearer token: %d %s", a.status, a.body)
		}
	})
}

func TestLogin_AuthDisabled(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t, true)
	a := e.get(t, "/oauth/authorization", authzQuery("terraform-cli"))
	loc, _ := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusFound || loc == nil || loc.Query().Get("state") != tfState {
		t.Fatalf("got %d Location=%q", a.status, a.header.Get("Location"))
	}
	a = e.post(t, "/oauth/token", tokenForm(loc.Query().Get("code"), "terraform-cli"))
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || a.status != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("got %d %s", a.status, a.body)
	}
}

func TestCheckRedirectURI(t *testing.T) {
	for _, ok := range []string{"http://localhost:10000/login", "http://127.0.0.1:10010/login", "http://localhost:10007/login"} {
		if err := checkRedirectURI(ok); err != nil {
			t.Errorf("checkRedirectURI(%q) = %v", ok, err)
		}
	}
}
