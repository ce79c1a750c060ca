package login

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// TestLogin_OIDC: `terraform login` and `tofu login` through the real
// OpenID provider; the stored token then drives a cloud-block init and
// apply, and the server records the provider's subject.
func TestLogin_OIDC(t *testing.T) {
	t.Parallel()
	srv, op := startServer(t, true)
	// The provider's user needs a role to create and write workspaces.
	if _, err := srv.DB.Assign(store.Assignment{Subject: opSubject, Role: "writer"}); err != nil {
		t.Fatal(err)
	}
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		sb := newSandbox(t, tl, srv)
		sb.login(t, tl, func(authURL string) string {
			checkAuthURL(t, tl, srv, authURL)
			return newBrowser(t, srv).loginAtProvider(t, authURL, op.Username)
		})
		token := sb.storedToken(t, tl)
		if !strings.HasPrefix(token, authn.APITokenPrefix) {
			t.Fatalf("stored token %.8s… is not an API token", token)
		}
		if p := srv.me(t, token); p.Subject != opSubject || p.Kind != authn.KindAPIToken {
			t.Fatalf("/v1/auth/me with the stored token: %+v, want subject %s", p, opSubject)
		}
		useToken(t, tl, sb, token, opSubject)
	})
	t.Run("opentaco-cli", func(t *testing.T) {
		t.Parallel()
		// The CLI's client: same endpoints, a token pair instead.
		const verifier = "opentaco-cli-verifier-0123456789-0123456789-abcdef"
		redirect := "http://127.0.0.1:10001/login"
		q := url.Values{
			"client_id": {"opentaco-cli"}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"st-cli"},
			"code_challenge": {authn.PKCEChallenge(verifier)}, "code_challenge_method": {"S256"},
		}
		loop := newBrowser(t, srv).loginAtProvider(t, srv.URL+"/oauth/authorization?"+q.Encode(), op.Username)
		lu, _ := url.Parse(loop)
		if lu.Query().Get("state") != "st-cli" {
			t.Fatalf("redirect %s lost the state", loop)
		}
		status, body := postToken(t, srv, url.Values{
			"grant_type": {"authorization_code"}, "code": {lu.Query().Get("code")}, "code_verifier": {verifier},
			"client_id": {"opentaco-cli"}, "redirect_uri": {redirect},
		})
		var pair authn.TokenPair
		if err := json.Unmarshal(body, &pair); err != nil || status != http.StatusOK || pair.RefreshToken == "" || pair.ExpiresIn <= 0 {
			t.Fatalf("token: %d %s", status, body)
		}
		if p := srv.me(t, pair.AccessToken); p.Subject != opSubject || p.Kind != authn.KindAccess {
			t.Fatalf("/v1/auth/me with the access token: %+v", p)
		}
		rb, _ := json.Marshal(map[string]string{"refresh_token": pair.RefreshToken})
		resp, err := srv.HTTP.Post(srv.URL+"/v1/auth/token", "application/json", bytes.NewReader(rb))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %s", resp.Status)
		}
	})
}

// TestLogin_Builtin: without a provider, the login page takes the
// bootstrap admin token and the tool gets a new API token of its own.
func TestLogin_Builtin(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, false)
	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		sb := newSandbox(t, tl, srv)
		sb.login(t, tl, func(authURL string) string {
			checkAuthURL(t, tl, srv, authURL)
			return newBrowser(t, srv).loginWithToken(t, authURL, srv.Admin)
		})
		token := sb.storedToken(t, tl)
		if !strings.HasPrefix(token, authn.APITokenPrefix) || token == srv.Admin {
			t.Fatalf("stored token %.8s… is not a new API token", token)
		}
		if p := srv.me(t, token); p.Subject != authn.AdminSubject {
			t.Fatalf("/v1/auth/me with the stored token: %+v", p)
		}
		useToken(t, tl, sb, token, authn.AdminSubject)
	})
}

// checkAuthURL checks what the tool asked for (TFE.md §1.3).
func checkAuthURL(t *testing.T, tl e2etest.Tool, srv *server, authURL string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil || u.Host != srv.Host || u.Path != "/oauth/authorization" {
		t.Fatalf("%s opened %s", tl.Name, authURL)
	}
	q := u.Query()
	if q.Get("client_id") != "terraform-cli" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || !loopbackLogin(q.Get("redirect_uri")) {
		t.Errorf("%s asked for %v", tl.Name, q)
	}
	t.Logf("%s asked for client_id=%s redirect_uri=%s scope=%q", tl.Name, q.Get("client_id"), q.Get("redirect_uri"), q.Get("scope"))
}

func loopbackLogin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "http" && loopback.MatchString(u.Host) && u.Path == "/login"
}

// useToken runs a cloud-block init and apply with the stored token (the
// CLI config is empty) and checks that the version records subject.
func useToken(t *testing.T, tl e2etest.Tool, sb *sandbox, token, subject string) {
	t.Helper()
	ws := "login-" + tl.Short()
	sb.cloudConfig(t, ws)
	sb.run(t, tl, "init")
	sb.run(t, tl, "apply", "-auto-approve")
	req, _ := http.NewRequest(http.MethodGet, sb.srv.URL+"/v1/units/"+ws+"/versions", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := sb.srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list httpapi.VersionList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK || len(list.Versions) == 0 {
		t.Fatalf("versions of %s: %s %v %+v", ws, resp.Status, err, list)
	}
	for _, v := range list.Versions {
		if v.Who != subject {
			t.Errorf("version %d of %s was written by %q, want %q", v.Version, ws, v.Who, subject)
		}
	}
}

func postToken(t *testing.T, srv *server, form url.Values) (int, []byte) {
	t.Helper()
	resp, err := srv.HTTP.PostForm(srv.URL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// TestLogin_Refusals: over the real wiring, no redirect leaves for a
// foreign redirect_uri, and a code works once, for its own client,
// redirect_uri and verifier.
func TestLogin_Refusals(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, false)
	const verifier = "refusals-verifier-0123456789-0123456789-abcdefgh"
	authz := func(redirect string) url.Values {
		return url.Values{
			"client_id": {"terraform-cli"}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"s1"},
			"code_challenge": {authn.PKCEChallenge(verifier)}, "code_challenge_method": {"S256"},
		}
	}
	t.Run("ErrRedirectURI", func(t *testing.T) {
		for _, r := range []string{"http://localhost:9999/login", "http://localhost:10011/login", "http://evil.example:10000/login", "https://localhost:10000/login", "http://localhost:10000/cb"} {
			resp, err := srv.HTTP.Get(srv.URL + "/oauth/authorization?" + authz(r).Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s: %s Location=%q", r, resp.Status, resp.Header.Get("Location"))
			}
		}
	})
	code := func(t *testing.T) string {
		t.Helper()
		b := newBrowser(t, srv)
		loop, _ := url.Parse(b.loginWithToken(t, srv.URL+"/oauth/authorization?"+authz("http://localhost:10003/login").Encode(), srv.Admin))
		return loop.Query().Get("code")
	}
	form := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "client_id": {"terraform-cli"}, "redirect_uri": {"http://localhost:10003/login"}}
	}
	wantGrantErr := func(t *testing.T, what string, f url.Values) {
		t.Helper()
		status, body := postToken(t, srv, f)
		var e struct{ Error string }
		if json.Unmarshal(body, &e); status != http.StatusBadRequest || e.Error != "invalid_grant" {
			t.Errorf("%s: %d %s, want 400 invalid_grant", what, status, body)
		}
	}
	t.Run("ErrReused", func(t *testing.T) {
		c := code(t)
		if status, body := postToken(t, srv, form(c)); status != http.StatusOK {
			t.Fatalf("first use: %d %s", status, body)
		}
		wantGrantErr(t, "second use", form(c))
	})
	for name, edit := range map[string]func(url.Values){
		"ErrVerifier":    func(f url.Values) { f.Set("code_verifier", verifier+"x") },
		"ErrClientID":    func(f url.Values) { f.Set("client_id", "opentaco-cli") },
		"ErrRedirectURI": func(f url.Values) { f.Set("redirect_uri", "http://localhost:10004/login") },
	} {
		t.Run(name, func(t *testing.T) {
			f := form(code(t))
			edit(f)
			wantGrantErr(t, name, f)
		})
	}
}
