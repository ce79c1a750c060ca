package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/cli"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
	"github.com/opentaco/opentaco/tfe"
)

// authEnv is a real server with authentication on (built-in admin, no
// OIDC), its bootstrap admin token, and a private $HOME for Terraform's
// credentials file. Tests that use it cannot run in parallel (HOME).
type authEnv struct {
	*testEnv
	auth      *authn.Authenticator
	admin     string // the bootstrap admin token
	tokenFile string // <data dir>/admin.token
	home      string
	host      string // the server's host as Terraform names it
}

func newAuthEnv(t *testing.T, cfg authn.Config) *authEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg.Store, cfg.Issuer = db, base
	auth, err := authn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile, err := auth.Bootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.Nop(), Auth: auth})
	tfe.Register(srv)
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("APPDATA", home)
	return &authEnv{
		testEnv:   &testEnv{t: t, server: base, configDir: filepath.Join(t.TempDir(), "config"), client: httpapi.NewClient(base, "")},
		auth:      auth,
		admin:     strings.TrimSpace(string(admin)),
		tokenFile: tokenFile,
		home:      home,
		host:      ln.Addr().String(),
	}
}

// storedCred mirrors one entry of <config dir>/credentials.json.
type storedCred struct {
	AccessToken      string    `json:"access_token"`
	RefreshToken     string    `json:"refresh_token"`
	ExpiresAt        time.Time `json:"expires_at"`
	APIToken         string    `json:"api_token"`
	TerraformTokenID string    `json:"terraform_token_id"`
	TerraformHost    string    `json:"terraform_host"`
}

func (e *authEnv) credPath() string { return filepath.Join(e.configDir, "credentials.json") }

// stored returns the stored credential of e's server, or nil.
func (e *authEnv) stored() *storedCred {
	e.t.Helper()
	b, err := os.ReadFile(e.credPath())
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		e.t.Fatal(err)
	}
	var d struct {
		Credentials map[string]*storedCred `json:"credentials"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		e.t.Fatal(err)
	}
	return d.Credentials[e.server]
}

// store writes c as the stored credential of e's server.
func (e *authEnv) store(c *storedCred) {
	e.t.Helper()
	b, err := json.Marshal(map[string]any{"credentials": map[string]any{e.server: c}})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.MkdirAll(e.configDir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.credPath(), b, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *authEnv) tfPath() string {
	return filepath.Join(e.home, ".terraform.d", "credentials.tfrc.json")
}

// tfCreds returns Terraform's credentials file, decoded.
func (e *authEnv) tfCreds() map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(e.tfPath())
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		e.t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		e.t.Fatalf("%s: %v\n%s", e.tfPath(), err, b)
	}
	return doc
}

// tfToken returns Terraform's token for host, or "".
func (e *authEnv) tfToken(host string) string {
	creds, _ := e.tfCreds()["credentials"].(map[string]any)
	entry, _ := creds[host].(map[string]any)
	tok, _ := entry["token"].(string)
	return tok
}

// me asks the server who token is; the error code is "" on success.
func (e *authEnv) me(token string) (*authn.Principal, string) {
	e.t.Helper()
	p, err := httpapi.NewClient(e.server, token).Me(context.Background())
	if err != nil && store.ErrorCode(err) != store.EUNAUTHORIZED {
		e.t.Fatal(err)
	}
	return p, store.ErrorCode(err)
}

// session issues a login session (access + refresh token) for subject.
func (e *authEnv) session(subject string) *authn.TokenPair {
	e.t.Helper()
	pair, err := e.auth.IssuePair(&authn.Principal{Subject: subject, Email: subject + "@example.com", Groups: []string{"dev"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return pair
}

func TestCLI_Login(t *testing.T) {
	t.Run("TokenFile", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		// Terraform's credentials file already holds another host and a
		// key of its own; both survive.
		if err := os.MkdirAll(filepath.Dir(e.tfPath()), 0o700); err != nil {
			t.Fatal(err)
		}
		other := `{"credentials":{"app.terraform.io":{"token":"tfc-secret"}},"x_other":true}`
		if err := os.WriteFile(e.tfPath(), []byte(other), 0o644); err != nil {
			t.Fatal(err)
		}

		r := e.run("", "login", "--token-file", e.tokenFile)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "Logged in to "+e.server+" as admin") {
			t.Fatalf("login: %+v", r)
		}
		if strings.Contains(r.stderr, e.admin) || strings.Contains(r.stderr, "otc_") {
			t.Fatalf("login printed a secret: %s", r.stderr)
		}
		c := e.stored()
		if c == nil || c.APIToken != e.admin || c.RefreshToken != "" || c.TerraformTokenID == "" || c.TerraformHost != e.host {
			t.Fatalf("stored credential: %+v", c)
		}
		checkMode(t, e.credPath(), 0o600)
		checkMode(t, e.configDir, 0o700)

		// Terraform's entry is a new API token named after the host that
		// works as the admin; the other entries are kept; mode 0600.
		tf := e.tfToken(e.host)
		if !strings.HasPrefix(tf, authn.APITokenPrefix) || tf == e.admin {
			t.Fatalf("terraform token for %s: %q", e.host, tf)
		}
		if p, code := e.me(tf); code != "" || p.Subject != "admin" || p.TokenID != c.TerraformTokenID {
			t.Fatalf("terraform token: %+v %s", p, code)
		}
		if e.tfToken("app.terraform.io") != "tfc-secret" || e.tfCreds()["x_other"] != true {
			t.Fatalf("other entries lost: %v", e.tfCreds())
		}
		checkMode(t, e.tfPath(), 0o600)
		if !strings.Contains(r.stderr, c.TerraformTokenID) || !strings.Contains(r.stderr, e.tfPath()) {
			t.Fatalf("login does not say what it did: %s", r.stderr)
		}
		list, err := httpapi.NewClient(e.server, e.admin).ListTokens(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tok := range list.Tokens {
			names = append(names, tok.Name)
		}
		if !strings.Contains(strings.Join(names, ","), "terraform ("+e.host+")") {
			t.Fatalf("tokens: %v", names)
		}

		// whoami, table and JSON.
		out := e.ok("", "whoami")
		for _, want := range []string{"Subject:", "admin", "Roles:", "Groups:", "Email:"} {
			if !strings.Contains(out, want) {
				t.Fatalf("whoami lacks %q:\n%s", want, out)
			}
		}
		var p authn.Principal
		e.okJSON(&p, "", "whoami")
		if p.Subject != "admin" || len(p.Roles) != 1 || p.Roles[0] != "admin" {
			t.Fatalf("whoami -o json: %+v", p)
		}

		// Logging in again replaces (and revokes) Terraform's token.
		e.ok("", "login", "--token-file", e.tokenFile)
		if c2 := e.stored(); c2.TerraformTokenID == c.TerraformTokenID || e.tfToken(e.host) == tf {
			t.Fatalf("second login kept the old Terraform token: %+v", c2)
		}
		if _, code := e.me(tf); code != store.EUNAUTHORIZED {
			t.Fatalf("old terraform token after a new login: %q, want unauthorized", code)
		}
	})

	t.Run("Stdin", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		e.ok(e.admin+"\n", "login", "--token", "-", "--no-terraform")
		if c := e.stored(); c == nil || c.APIToken != e.admin || c.TerraformTokenID != "" {
			t.Fatalf("stored credential: %+v", c)
		}
		if _, err := os.Stat(e.tfPath()); !os.IsNotExist(err) {
			t.Fatalf("--no-terraform wrote %s: %v", e.tfPath(), err)
		}
		if out := e.ok("", "whoami"); !strings.Contains(out, "admin") {
			t.Fatalf("whoami:\n%s", out)
		}
	})

	t.Run("ErrBadToken", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		e.fail(3, "otc_not-a-token\n", "login", "--token", "-")
		e.fail(2, "\n", "login", "--token", "-")
		if e.stored() != nil || e.tfCreds() != nil {
			t.Fatal("a refused login left state behind")
		}
	})

	t.Run("ServerArgument", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		var stdout, stderr bytes.Buffer
		code := cli.Run(context.Background(), []string{"--config-dir", e.configDir, "login", e.server + "/", "--token-file", e.tokenFile},
			strings.NewReader(""), &stdout, &stderr)
		if code != 0 || !strings.Contains(stderr.String(), "--server "+e.server) {
			t.Fatalf("login SERVER: exit %d\n%s", code, stderr.String())
		}
		if e.stored() == nil {
			t.Fatal("no credential stored under the server URL")
		}
	})

	t.Run("Logout", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		if err := os.MkdirAll(filepath.Dir(e.tfPath()), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.tfPath(), []byte(`{"credentials":{"other.example":{"token":"keep"}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		e.ok("", "login", "--token-file", e.tokenFile)
		tf := e.tfToken(e.host)

		r := e.run("", "logout")
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "Logged out") {
			t.Fatalf("logout: %+v", r)
		}
		if e.stored() != nil {
			t.Fatal("credential still stored after logout")
		}
		if e.tfToken(e.host) != "" || e.tfToken("other.example") != "keep" {
			t.Fatalf("terraform credentials after logout: %v", e.tfCreds())
		}
		if _, code := e.me(tf); code != store.EUNAUTHORIZED {
			t.Fatalf("terraform token after logout: %q, want unauthorized", code)
		}
		if _, code := e.me(e.admin); code != "" {
			t.Fatal("logout revoked the admin token it was given")
		}
		r = e.run("", "logout")
		if r.code != 0 || !strings.Contains(r.stderr, "Not logged in") {
			t.Fatalf("second logout: %+v", r)
		}
		msg := e.fail(3, "", "whoami")
		if !strings.Contains(msg, "opentaco login") {
			t.Fatalf("whoami after logout does not say how to log in: %s", msg)
		}
	})

	t.Run("LogoutSession", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		pair := e.session("alice")
		e.store(&storedCred{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(time.Hour)})
		e.ok("", "logout")
		if _, err := e.auth.Refresh(pair.RefreshToken); store.ErrorCode(err) != store.EUNAUTHORIZED {
			t.Fatalf("refresh after logout: %v, want unauthorized", err)
		}
		if e.stored() != nil {
			t.Fatal("credential still stored after logout")
		}
	})

	t.Run("ReplacesSession", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		pair := e.session("admin")
		e.store(&storedCred{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(time.Hour)})
		e.ok("", "login", "--token-file", e.tokenFile, "--no-terraform")
		if _, err := e.auth.Refresh(pair.RefreshToken); store.ErrorCode(err) != store.EUNAUTHORIZED {
			t.Fatalf("the replaced session still refreshes: %v", err)
		}
		if c := e.stored(); c == nil || c.APIToken != e.admin || c.RefreshToken != "" {
			t.Fatalf("stored credential: %+v", c)
		}
	})

	t.Run("UnitCommands", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		msg := e.fail(3, "", "unit", "ls")
		if !strings.Contains(msg, "opentaco login") {
			t.Fatalf("unit ls without credentials: %s", msg)
		}
		e.fail(3, "", "unit", "create", "a/b")
		e.ok("", "--token", e.admin, "unit", "create", "a/b") // --token needs no login

		e.ok("", "login", "--token-file", e.tokenFile)
		e.ok("", "unit", "create", "a/c")
		e.ok(tfstate(1), "unit", "push", "a/c")
		if got := e.ok("", "unit", "pull", "a/c"); got != tfstate(1) {
			t.Fatalf("pull = %q", got)
		}
		if rows := lines(e.ok("", "unit", "ls")); len(rows) != 3 {
			t.Fatalf("unit ls: %v", rows)
		}
		// A wrong --token wins over the stored credential.
		e.fail(3, "", "--token", "otc_wrong", "unit", "ls")
	})

	t.Run("ErrAuthDisabled", func(t *testing.T) {
		e := newEnv(t)
		t.Setenv("HOME", t.TempDir())
		e.fail(2, "", "login", "--token", "whatever")
	})

	t.Run("ErrTimeout", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		r := e.run("", "login", "--no-browser", "--timeout", "200ms")
		if r.code != 1 || !strings.Contains(r.stderr, "/oauth/authorization?") || !strings.Contains(r.stderr, "gave up waiting") {
			t.Fatalf("login timeout: %+v", r)
		}
		if e.stored() != nil {
			t.Fatal("a failed login stored a credential")
		}
	})
}

func TestCLI_Refresh(t *testing.T) {
	t.Run("Expired", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		pair := e.session("admin") // may change units (RBAC)
		e.store(&storedCred{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(-time.Minute)})
		if out := e.ok("", "whoami"); !strings.Contains(out, "admin@example.com") {
			t.Fatalf("whoami:\n%s", out)
		}
		// (The access token may come out identical: same claims, same second.)
		c := e.stored()
		if c.RefreshToken == pair.RefreshToken || !c.ExpiresAt.After(time.Now().Add(50*time.Minute)) {
			t.Fatalf("the session was not renewed and saved: %+v", c)
		}
		checkMode(t, e.credPath(), 0o600)
		// The saved pair works on its own: no renewal on the next run.
		e.ok("", "unit", "ls")
		if c2 := e.stored(); c2.RefreshToken != c.RefreshToken {
			t.Fatal("a fresh session was renewed again")
		}
		// A streamed upload after expiry is renewed before it is sent.
		c.ExpiresAt = time.Now().Add(-time.Second)
		e.store(c)
		e.ok("", "unit", "create", "x")
		e.ok(tfstate(1), "unit", "push", "x")
	})

	t.Run("ShortAccessTTL", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{AccessTTL: time.Second})
		pair := e.session("bob")
		e.store(&storedCred{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(time.Second)})
		time.Sleep(1100 * time.Millisecond)
		for range 3 {
			if out := e.ok("", "whoami"); !strings.Contains(out, "bob") {
				t.Fatalf("whoami:\n%s", out)
			}
		}
		if e.stored().RefreshToken == pair.RefreshToken {
			t.Fatal("the expired session was not renewed")
		}
	})

	t.Run("Unauthorized", func(t *testing.T) {
		// The server refuses an access token the CLI thinks is fresh: it
		// renews once and retries.
		e := newAuthEnv(t, authn.Config{})
		pair := e.session("admin")
		e.store(&storedCred{AccessToken: "not-a-jwt", RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(time.Hour)})
		e.ok("", "unit", "create", "c") // a POST with a JSON body, replayed
		if out := e.ok("", "whoami"); !strings.Contains(out, "admin@example.com") {
			t.Fatalf("whoami:\n%s", out)
		}
		if c := e.stored(); c.AccessToken == "not-a-jwt" || c.RefreshToken == pair.RefreshToken {
			t.Fatalf("session not renewed: %+v", c)
		}
	})

	t.Run("ErrRevoked", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		pair := e.session("dave")
		if err := e.auth.Logout(pair.RefreshToken); err != nil {
			t.Fatal(err)
		}
		e.store(&storedCred{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(-time.Minute)})
		msg := e.fail(3, "", "whoami")
		if !strings.Contains(msg, "expired or was revoked") || !strings.Contains(msg, "opentaco login") {
			t.Fatalf("whoami with a revoked session: %s", msg)
		}
		// The same when the server refuses an access token that is not
		// expired yet.
		e.store(&storedCred{AccessToken: "not-a-jwt", RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(time.Hour)})
		if msg := e.fail(3, "", "unit", "ls"); !strings.Contains(msg, "expired or was revoked") {
			t.Fatalf("unit ls with a refused token and a revoked session: %s", msg)
		}
	})
}

// formTag matches a <form> with its content, inputTag an <input>
// element, attribute one attribute of an element.
var (
	formTag   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputTag  = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attribute = regexp.MustCompile(`(?is)([a-z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attribute.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2] + a[3] + a[4])
	}
	return m
}

// submitLoginForm plays the user on the server's login page: it fills the
// token field (the password input, or the one named like "token") with
// token and posts the form, following redirects.
func submitLoginForm(t *testing.T, browser *http.Client, page *http.Response, token string) *http.Response {
	t.Helper()
	body, err := io.ReadAll(page.Body)
	page.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := formTag.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("the login page (%s) has no form:\n%s", page.Status, body)
	}
	form := attrs(m[1])
	values, filled := url.Values{}, false
	for _, in := range inputTag.FindAllStringSubmatch(m[2], -1) {
		a := attrs(in[1])
		switch {
		case a["name"] == "":
		case !filled && (a["type"] == "password" || strings.Contains(a["name"], "token")):
			values.Set(a["name"], token)
			filled = true
		case a["type"] == "submit" && a["value"] == "":
		default:
			values.Set(a["name"], a["value"])
		}
	}
	if !filled {
		t.Fatalf("the login page has no token field:\n%s", body)
	}
	action, err := page.Request.URL.Parse(form["action"])
	if err != nil {
		t.Fatal(err)
	}
	if m := strings.ToUpper(form["method"]); m != "" && m != http.MethodPost {
		t.Fatalf("login form method %q", m)
	}
	resp, err := browser.PostForm(action.String(), values)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestCLI_LoginBrowser(t *testing.T) {
	e := newAuthEnv(t, authn.Config{})
	// The /oauth routes belong to tfe/login.go.
	if resp, err := http.Get(e.server + "/oauth/authorization"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			t.Skip("the server has no GET /oauth/authorization route yet (tfe/login.go); the browser login cannot be tested")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() {
		args := []string{"--server", e.server, "--config-dir", e.configDir, "login", "--no-browser"}
		code := cli.Run(ctx, args, strings.NewReader(""), &stdout, pw)
		pw.Close()
		done <- code
	}()
	// Read stderr until the URL shows, then keep draining it.
	var stderr bytes.Buffer
	sc := bufio.NewScanner(pr)
	var authURL string
	for authURL == "" && sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if i := strings.Index(sc.Text(), e.server+"/oauth/authorization?"); i >= 0 {
			authURL = strings.TrimSpace(sc.Text()[i:])
		}
	}
	drained := make(chan struct{})
	go func() {
		_, _ = io.Copy(&stderr, pr)
		close(drained)
	}()
	if authURL == "" {
		cancel()
		<-drained
		t.Fatalf("login printed no URL:\n%s", stderr.String())
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("client_id") != "opentaco-cli" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || redirect.Hostname() != "127.0.0.1" || redirect.Path != "/login" ||
		redirect.Port() < "10000" || redirect.Port() > "10010" {
		t.Fatalf("authorization URL: %s", authURL)
	}

	// A callback with another state is refused and does not end the login.
	if resp, err := http.Get(redirect.String() + "?code=forged&state=wrong"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback with a wrong state: %s", resp.Status)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if page.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(page.Body)
		t.Fatalf("authorization page: %s\n%s", page.Status, b)
	}
	final := submitLoginForm(t, browser, page, e.admin)
	b, _ := io.ReadAll(final.Body)
	final.Body.Close()
	if final.Request.URL.Host != redirect.Host || final.StatusCode != http.StatusOK || !strings.Contains(string(b), "close this tab") {
		t.Fatalf("the browser ended at %s with %s:\n%s", final.Request.URL, final.Status, b)
	}

	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatal("login did not return after the callback")
	}
	<-drained
	if code != 0 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "Logged in to "+e.server+" as admin") {
		t.Fatalf("login: exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	c := e.stored()
	if c == nil || c.AccessToken == "" || !strings.HasPrefix(c.RefreshToken, "otr_") || !c.ExpiresAt.After(time.Now()) || c.APIToken != "" {
		t.Fatalf("stored credential: %+v", c)
	}
	if p, code := e.me(c.AccessToken); code != "" || p.Kind != authn.KindAccess || p.Subject != "admin" {
		t.Fatalf("stored access token: %+v %s", p, code)
	}
	if tf := e.tfToken(e.host); !strings.HasPrefix(tf, authn.APITokenPrefix) {
		t.Fatalf("terraform token: %q", tf)
	}
	if out := e.ok("", "whoami"); !strings.Contains(out, "admin") {
		t.Fatalf("whoami:\n%s", out)
	}

	// Logging out ends the session on the server.
	e.ok("", "logout")
	if _, err := e.auth.Refresh(c.RefreshToken); store.ErrorCode(err) != store.EUNAUTHORIZED {
		t.Fatalf("refresh after logout: %v", err)
	}
}
