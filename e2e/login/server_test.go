package login

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/e2e/e2etest"
)

// ---------------------------------------------------------------------------
// The OpenID provider

// provider is a running zitadel example OP.
type provider struct {
	Issuer   string // http://localhost:<port>/
	Username string // test-user@localhost
}

// startProvider starts the example OP on a free port, accepting
// redirectURI, and stops it when the test ends.
func startProvider(t *testing.T, redirectURI string) *provider {
	t.Helper()
	path := e2etest.FindOIDCServer(t)
	var lastErr error
	for range 3 { // a free port may be taken between probe and start
		port := freePort(t)
		p := &provider{Issuer: fmt.Sprintf("http://localhost:%d/", port), Username: "test-user@localhost"}
		logs := &e2etest.SyncBuffer{}
		cmd := exec.Command(path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), fmt.Sprintf("PORT=%d", port), "REDIRECT_URI=" + redirectURI}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if lastErr = waitDiscovery(p.Issuer, exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("OIDC provider log:\n%s", e2etest.Tail(logs.String(), 6000))
				}
			})
			return p
		}
		_ = cmd.Process.Kill()
		<-exited
		t.Logf("OIDC provider on port %d did not start: %v\n%s", port, lastErr, e2etest.Tail(logs.String(), 2000))
	}
	t.Fatalf("OIDC provider: %v", lastErr)
	return nil
}

func waitDiscovery(issuer string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := http.Get(issuer + ".well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("no discovery document after 15s")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ---------------------------------------------------------------------------
// The OpenTaco server

// server is the real server wiring on a TLS loopback port. Its HTTP client
// trusts the CA and follows no redirects; Admin is the bootstrap admin
// token (no provider only).
type server struct {
	*e2etest.Server
}

// startServer starts httpapi + tfe with authentication on: with the
// provider started by startProvider when withOIDC, with the built-in admin
// otherwise. It fails the test if any request was answered with a 5xx.
func startServer(t *testing.T, withOIDC bool) (*server, *provider) {
	t.Helper()
	var op *provider
	o := e2etest.ServerOptions{TLS: true, TFE: true, Auth: true, Bootstrap: !withOIDC, No5xx: true}
	if withOIDC {
		o.OIDC = func(s *e2etest.Server) *authn.OIDCConfig {
			op = startProvider(t, s.URL+"/oauth/callback")
			return &authn.OIDCConfig{Issuer: op.Issuer, ClientID: opClient, ClientSecret: opSecret}
		}
	}
	s := e2etest.StartServer(t, o)
	s.HTTP.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &server{s}, op
}

// me asks /v1/auth/me who token is.
func (s *server) me(t *testing.T, token string) *authn.Principal {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p authn.Principal
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/auth/me: %s, %v", resp.Status, err)
	}
	return &p
}

// ---------------------------------------------------------------------------
// The browser

// browser is a cookie-jar HTTP client that trusts the server's CA and
// stops before the loopback redirect to the tool.
type browser struct {
	hc *http.Client
}

var loopback = regexp.MustCompile(`^(localhost|127\.0\.0\.1):100(0[0-9]|10)$`)

func newBrowser(t *testing.T, s *server) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{hc: &http.Client{
		Jar:       jar,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Pool}},
		Timeout:   30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if loopback.MatchString(req.URL.Host) || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// page is one answer seen by the browser.
type page struct {
	url      *url.URL // where it came from
	status   int
	location string
	body     string
}

func (b *browser) do(t *testing.T, method, target string, form url.Values) page {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = b.hc.PostForm(target, form)
	} else {
		resp, err = b.hc.Get(target)
	}
	if err != nil {
		t.Fatalf("browser %s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{url: resp.Request.URL, status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body)}
}

// toLoopback checks that p redirects to the tool's loopback listener with
// a code and returns that URL.
func toLoopback(t *testing.T, p page) string {
	t.Helper()
	u, err := url.Parse(p.location)
	if p.status != http.StatusFound || err != nil || !loopback.MatchString(u.Host) || u.Query().Get("code") == "" {
		t.Fatalf("browser ended at %s with %d, Location %q:\n%s", p.url, p.status, p.location, e2etest.Tail(p.body, 1500))
	}
	return p.location
}

var (
	inputRE  = regexp.MustCompile(`<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// loginWithToken fills OpenTaco's login page at authURL with token.
func (b *browser) loginWithToken(t *testing.T, authURL, token string) string {
	t.Helper()
	p := b.do(t, http.MethodGet, authURL, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="token"`) {
		t.Fatalf("login page: %d %s", p.status, e2etest.Tail(p.body, 1500))
	}
	form := url.Values{"token": {token}}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return toLoopback(t, b.do(t, http.MethodPost, p.url.ResolveReference(&url.URL{Path: "/oauth/authorization"}).String(), form))
}

// loginAtProvider follows authURL to the provider's login form, logs in
// as username and follows the redirects back through OpenTaco.
func (b *browser) loginAtProvider(t *testing.T, authURL, username string) string {
	t.Helper()
	p := b.do(t, http.MethodGet, authURL, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, `action="/login/username"`) {
		t.Fatalf("provider login page: %s %d %s", p.url, p.status, e2etest.Tail(p.body, 1500))
	}
	form := url.Values{"username": {username}, "password": {opPassword}}
	for _, m := range inputRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == "id" {
			form.Set("id", html.UnescapeString(m[2]))
		}
	}
	if form.Get("id") == "" {
		t.Fatalf("provider login page has no auth request id:\n%s", e2etest.Tail(p.body, 1500))
	}
	return toLoopback(t, b.do(t, http.MethodPost, p.url.ResolveReference(&url.URL{Path: "/login/username"}).String(), form))
}

// deliver sends the final redirect to the tool's listener, as the browser
// would. The tool may close its listener as soon as it has the code, so a
// failed read of the answer is not an error.
func deliver(t *testing.T, loopbackURL string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(loopbackURL)
	if err != nil {
		t.Logf("loopback %s: %v (the tool may already have closed it)", loopbackURL, err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the tool's loopback listener answered %s", resp.Status)
	}
}
