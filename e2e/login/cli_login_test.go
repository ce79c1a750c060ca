package login

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/cli"
	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// opEmail is the e-mail address the example OP keeps for opSubject. The OP
// serves it from UserInfo only, not in the ID token, so this checks that
// OpenTaco asks there.
const opEmail = "test-user@zitadel.ch"

// TestLogin_OpentacoCLI: `opentaco login --no-browser` (cli.Run, in
// process) through the real OpenID provider; the stored session then
// drives whoami and unit commands, survives a renewal, and `opentaco
// logout` removes it and Terraform's entry.
//
// Not parallel: it sets HOME (where the CLI writes Terraform's
// credentials file) and SSL_CERT_FILE (how the CLI, which uses the
// default transport, trusts the server's self-signed CA) for the whole
// process. Parallel tests of the package are paused while it runs.
func TestLogin_OpentacoCLI(t *testing.T) {
	// Before HOME changes: the provider binary is found under ~/.cache.
	srv, op := startServer(t, true)
	// The provider's user needs a role to create and write units.
	if _, err := srv.DB.Assign(store.Assignment{Subject: opSubject, Role: "writer"}); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cfgDir := filepath.Join(t.TempDir(), "opentaco")
	t.Setenv("HOME", home)
	t.Setenv("APPDATA", home)
	for _, k := range []string{"OPENTACO_TOKEN", "OPENTACO_SERVER", "OPENTACO_CONFIG_DIR"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	trustServerCA(t, srv)

	// Log in: read the URL the CLI prints, play the browser, deliver the
	// redirect to the CLI's loopback listener.
	res := cliLogin(t, func(authURL string) string {
		checkCLIAuthURL(t, srv, authURL)
		return newBrowser(t, srv).loginAtProvider(t, authURL, op.Username)
	}, "login", srv.URL, "--no-browser", "--config-dir", cfgDir, "--timeout", "90s")
	if !strings.Contains(res.Stderr, "Logged in to "+srv.URL+" as "+opSubject) {
		t.Errorf("login did not say who logged in:\n%s", res.Stderr)
	}
	if !strings.Contains(res.Stderr, "Created API token") {
		t.Errorf("login did not report Terraform's API token:\n%s", res.Stderr)
	}

	// whoami with the stored session.
	sv := []string{"--config-dir", cfgDir, "--server", srv.URL}
	who := whoami(t, sv)
	if who.Subject != opSubject || who.Kind != authn.KindAccess {
		t.Fatalf("whoami: %+v, want subject %s with an access token", who, opSubject)
	}
	if who.Email != opEmail { // from UserInfo: the OP leaves it out of the ID token
		t.Errorf("whoami: email %q, want %q", who.Email, opEmail)
	}
	if who.Email != "" && !strings.Contains(res.Stderr, "as "+opSubject+" ("+who.Email+")") {
		t.Errorf("login did not name the e-mail %s:\n%s", who.Email, res.Stderr)
	}
	t.Logf("whoami: subject=%s email=%q roles=%v kind=%s", who.Subject, who.Email, who.Roles, who.Kind)

	// The stored credential: a session, 0600, and the Terraform token it made.
	credPath := filepath.Join(cfgDir, "credentials.json")
	cred := storedCLICred(t, credPath, srv.URL)
	if cred == nil || cred.AccessToken == "" || !strings.HasPrefix(cred.RefreshToken, "otr_") || cred.APIToken != "" ||
		!cred.ExpiresAt.After(time.Now()) || cred.TerraformTokenID == "" || cred.TerraformHost != srv.Host {
		t.Fatalf("stored credential: %+v", cred)
	}
	checkMode(t, credPath, 0o600)
	if p := srv.me(t, cred.AccessToken); p.Subject != opSubject || p.Kind != authn.KindAccess || p.Email != who.Email {
		t.Fatalf("/v1/auth/me with the stored access token: %+v", p)
	}

	// Terraform's credentials file holds an API token for the host, which works.
	tfPath := filepath.Join(home, ".terraform.d", "credentials.tfrc.json")
	tfTok := terraformToken(t, tfPath, srv.Host)
	if !strings.HasPrefix(tfTok, authn.APITokenPrefix) {
		t.Fatalf("%s: token %.8s… for %s is not an API token", tfPath, tfTok, srv.Host)
	}
	checkMode(t, tfPath, 0o600)
	if p := srv.me(t, tfTok); p.Subject != opSubject || p.Kind != authn.KindAPIToken || p.TokenID != cred.TerraformTokenID {
		t.Fatalf("/v1/auth/me with Terraform's token: %+v, want subject %s, token %s", p, opSubject, cred.TerraformTokenID)
	}

	// Unit commands with the stored session; the server records the subject.
	const unit = "cli-login/app"
	mustCLI(t, append([]string{"unit", "create", unit}, sv...)...)
	statePath := filepath.Join(t.TempDir(), "state.json")
	e2etest.WriteFile(t, statePath, []byte(`{"version":4,"terraform_version":"1.9.0","serial":1,"lineage":"cli-login","outputs":{},"resources":[]}`+"\n"))
	mustCLI(t, append([]string{"unit", "push", unit, "-f", statePath}, sv...)...)
	var versions httpapi.VersionList
	decodeJSON(t, "unit versions", mustCLI(t, append([]string{"unit", "versions", unit, "-o", "json"}, sv...)...), &versions)
	if len(versions.Versions) != 1 || versions.Versions[0].Who != opSubject {
		t.Fatalf("unit versions: %+v, want one version written by %s", versions, opSubject)
	}

	// An expired access token is renewed with the refresh token, and the
	// rotated pair is saved.
	expireStoredAccess(t, credPath, srv.URL)
	if again := whoami(t, sv); again.Subject != opSubject || again.Email != who.Email {
		t.Fatalf("whoami after renewal: %+v, want %+v", again, who)
	}
	renewed := storedCLICred(t, credPath, srv.URL)
	if renewed == nil || renewed.RefreshToken == cred.RefreshToken || !strings.HasPrefix(renewed.RefreshToken, "otr_") ||
		renewed.AccessToken == cred.AccessToken || !renewed.ExpiresAt.After(time.Now()) || renewed.TerraformTokenID != cred.TerraformTokenID {
		t.Fatalf("credential after renewal: %+v (was %+v)", renewed, cred)
	}
	checkMode(t, credPath, 0o600)

	// Logout forgets both, revokes both server-side, and whoami fails.
	mustCLI(t, "logout", srv.URL, "--config-dir", cfgDir)
	if c := storedCLICred(t, credPath, srv.URL); c != nil {
		t.Errorf("credential still stored after logout: %+v", c)
	}
	if b, err := os.ReadFile(tfPath); err != nil {
		t.Errorf("after logout: %v", err)
	} else if strings.Contains(string(b), srv.Host) {
		t.Errorf("%s still names %s after logout:\n%s", tfPath, srv.Host, b)
	}
	if status := meStatus(t, srv, tfTok); status != http.StatusUnauthorized {
		t.Errorf("Terraform's token after logout: /v1/auth/me answered %d, want 401", status)
	}
	if _, err := srv.Auth.Refresh(renewed.RefreshToken); store.ErrorCode(err) != store.EUNAUTHORIZED {
		t.Errorf("refresh after logout: %v, want EUNAUTHORIZED", err)
	}
	if r := runCLI(t, append([]string{"whoami", "-o", "json"}, sv...)...); r.Code != 3 || !strings.Contains(r.Stderr, "opentaco login") {
		t.Errorf("whoami after logout: exit %d, want 3 with a login hint\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
}

// trustServerCA makes the default transport trust the server's CA through
// SSL_CERT_FILE, as a user would. Go reads the system roots once per
// process; when they were read before (another run of the test in the
// same process: -count), the default transport is swapped instead.
func trustServerCA(t *testing.T, srv *server) {
	t.Helper()
	t.Setenv("SSL_CERT_FILE", srv.CAPath)
	t.Setenv("SSL_CERT_DIR", filepath.Join(t.TempDir(), "none"))
	b, err := os.ReadFile(srv.CAPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", srv.CAPath)
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if roots, err := x509.SystemCertPool(); err == nil {
		if _, err := ca.Verify(x509.VerifyOptions{Roots: roots}); err == nil {
			return
		}
	}
	t.Logf("the system roots were loaded before SSL_CERT_FILE was set; trusting %s through http.DefaultTransport", srv.CAPath)
	old := http.DefaultTransport
	tr := old.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: srv.Pool}
	http.DefaultTransport = tr
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		http.DefaultTransport = old
	})
}

// checkCLIAuthURL checks what `opentaco login` asked for.
func checkCLIAuthURL(t *testing.T, srv *server, authURL string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil || u.Scheme != "https" || u.Host != srv.Host || u.Path != "/oauth/authorization" {
		t.Fatalf("opentaco login printed %s", authURL)
	}
	q := u.Query()
	r, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("client_id") != "opentaco-cli" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || err != nil || r.Hostname() != "127.0.0.1" || !loopbackLogin(r.String()) {
		t.Fatalf("opentaco login asked for %v", q)
	}
	t.Logf("opentaco login asked for client_id=%s redirect_uri=%s", q.Get("client_id"), q.Get("redirect_uri"))
}

// cliLogin runs cli.Run(args) in a goroutine, waits for the login URL it
// prints on stderr, passes it to browse (which returns the loopback
// redirect) and delivers that redirect; it fails the test unless the run
// then exits 0.
func cliLogin(t *testing.T, browse func(authURL string) string, args ...string) e2etest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr e2etest.SyncBuffer
	pr, pw := io.Pipe()
	found := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := urlRE.FindString(sc.Text()); m != "" {
				select {
				case found <- m:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	exited := make(chan int, 1)
	start := time.Now()
	go func() {
		code := cli.Run(ctx, args, strings.NewReader(""), &stdout, io.MultiWriter(&stderr, pw))
		pw.Close()
		exited <- code
	}()
	res := e2etest.Result{Code: -1}
	select {
	case authURL := <-found:
		deliver(t, browse(authURL))
		select {
		case res.Code = <-exited:
		case <-ctx.Done():
			t.Errorf("opentaco login did not return after the redirect")
		}
	case res.Code = <-exited:
		t.Errorf("opentaco login exited before printing a login URL")
	case <-ctx.Done():
		t.Errorf("opentaco login printed no login URL in time")
	}
	if res.Code == -1 {
		cancel() // ends the run, which closes the pipe
		res.Code = <-exited
	}
	<-drained
	res.Stdout, res.Stderr, res.Dur = stdout.String(), stderr.String(), time.Since(start)
	t.Logf("opentaco %s → exit %d in %s", strings.Join(args, " "), res.Code, res.Dur.Round(time.Millisecond))
	if res.Code != 0 || t.Failed() {
		t.Fatalf("opentaco login: exit %d:\n%s", res.Code, e2etest.Tail(res.Out(), 3000))
	}
	return res
}

// runCLI runs `opentaco args...` in process.
func runCLI(t *testing.T, args ...string) e2etest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr e2etest.SyncBuffer
	start := time.Now()
	code := cli.Run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	res := e2etest.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code, Dur: time.Since(start)}
	t.Logf("opentaco %s → exit %d in %s", strings.Join(args, " "), code, res.Dur.Round(time.Millisecond))
	return res
}

// mustCLI runs `opentaco args...` and returns its stdout; it fails the
// test unless the run exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	if r.Code != 0 {
		t.Fatalf("opentaco %s: exit %d:\n%s", strings.Join(args, " "), r.Code, e2etest.Tail(r.Out(), 3000))
	}
	return r.Stdout
}

func whoami(t *testing.T, sv []string) *authn.Principal {
	t.Helper()
	var p authn.Principal
	decodeJSON(t, "whoami", mustCLI(t, append([]string{"whoami", "-o", "json"}, sv...)...), &p)
	return &p
}

func decodeJSON(t *testing.T, what, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s printed no JSON (%v):\n%s", what, err, s)
	}
}

// cliCred mirrors one entry of the CLI's credentials.json.
type cliCred struct {
	AccessToken      string    `json:"access_token"`
	RefreshToken     string    `json:"refresh_token"`
	ExpiresAt        time.Time `json:"expires_at"`
	APIToken         string    `json:"api_token"`
	TerraformTokenID string    `json:"terraform_token_id"`
	TerraformHost    string    `json:"terraform_host"`
}

// storedCLICred reads the credential stored for server, or nil.
func storedCLICred(t *testing.T, path, server string) *cliCred {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stored credentials: %v", err)
	}
	var doc struct {
		Credentials map[string]*cliCred `json:"credentials"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return doc.Credentials[server]
}

// expireStoredAccess moves the expiry of the stored access token into the
// past, keeping every other field as is.
func expireStoredAccess(t *testing.T, path, server string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || doc["credentials"][server] == nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	doc["credentials"][server]["expires_at"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	e2etest.WriteFile(t, path, out)
}

// terraformToken reads the token for host from Terraform's credentials file.
func terraformToken(t *testing.T, path, host string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Terraform's credentials: %v", err)
	}
	var doc struct {
		Credentials map[string]struct {
			Token string `json:"token"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Credentials[host].Token == "" {
		t.Fatalf("%s holds no token for %s: %s (%v)", path, host, b, err)
	}
	return doc.Credentials[host].Token
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %#o, want %#o", path, got, want)
	}
}

// meStatus is the status of /v1/auth/me with token.
func meStatus(t *testing.T, srv *server, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
