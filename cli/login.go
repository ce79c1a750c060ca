package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// Browser login (OAuth 2 authorization code with PKCE, served by the
// server's /oauth routes): the client ID, and the loopback ports and path
// the server accepts in redirect_uri.
const (
	cliClientID   = "opentaco-cli"
	loginPortMin  = 10000
	loginPortMax  = 10010
	loginCallback = "/login"
)

// LoginCmd logs in to a server.
type LoginCmd struct {
	URL         string        `arg:"" optional:"" name:"server" help:"Server URL (default: --server)."`
	TokenFile   string        `name:"token-file" placeholder:"PATH" help:"Log in with the token in this file (e.g. the server's <data-dir>/admin.token) instead of the browser. --token - reads it from stdin."`
	NoBrowser   bool          `name:"no-browser" help:"Do not open a browser; only print the login URL."`
	NoTerraform bool          `name:"no-terraform" help:"Do not create an API token for Terraform nor write Terraform's credentials file."`
	Timeout     time.Duration `default:"5m" help:"How long to wait for the browser login."`
}

// Run obtains a credential (a given token, or the browser flow), checks it
// with /v1/auth/me, stores it, and sets up Terraform's credentials.
func (c *LoginCmd) Run(g *Globals) error {
	server, err := loginServer(c.URL, g.Server)
	if err != nil {
		return err
	}
	f, err := g.credFile()
	if err != nil {
		return err
	}
	old, err := f.get(server)
	if err != nil {
		return err
	}
	if cfg, err := httpapi.NewClient(server, "").AuthConfig(g.ctx); err == nil && !cfg.AuthEnabled {
		return store.Errorf(store.EINVALID, "authentication is disabled on %s: there is nothing to log in to", server)
	}
	cred, err := c.credential(g, server)
	if err != nil {
		return err
	}
	me, err := httpapi.NewClient(server, cred.bearer()).Me(g.ctx)
	if store.ErrorCode(err) == store.EUNAUTHORIZED {
		return store.Errorf(store.EUNAUTHORIZED, "%s refused the credential: %s", server, store.ErrorMessage(err))
	} else if err != nil {
		return err
	}
	if old != nil {
		cred.TerraformTokenID, cred.TerraformHost = old.TerraformTokenID, old.TerraformHost
	}
	if err := f.put(server, cred); err != nil {
		return err
	}
	if old != nil && old.refreshable() && old.RefreshToken != cred.RefreshToken {
		// End the session this login replaces; it is gone locally anyway.
		_ = httpapi.NewClient(server, cred.bearer()).Logout(g.ctx, old.RefreshToken)
	}
	g.notef("Logged in to %s as %s.", server, principalName(me))
	if serverKey(g.Server) != server {
		g.notef("Other commands use it with --server %s (or OPENTACO_SERVER).", server)
	}
	if c.NoTerraform {
		return nil
	}
	return setupTerraform(g, f, server, cred)
}

// loginServer is the server to log in to: arg, else --server, as an URL
// without a trailing slash; "host[:port]" means https.
func loginServer(arg, global string) (string, error) {
	s := arg
	if s == "" {
		s = global
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return "", store.Errorf(store.EINVALID, "server %q is not an http(s) URL", s)
	}
	return serverKey(s), nil
}

func principalName(p *authn.Principal) string {
	if p.Email != "" && p.Email != p.Subject {
		return fmt.Sprintf("%s (%s)", p.Subject, p.Email)
	}
	return p.Subject
}

// credential returns the token given with --token/--token-file, or the
// session of a browser login.
func (c *LoginCmd) credential(g *Globals, server string) (*credential, error) {
	switch {
	case c.TokenFile != "" && g.Token != "":
		return nil, store.Errorf(store.EINVALID, "give either --token or --token-file, not both")
	case c.TokenFile != "":
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, err
		}
		return tokenCredential(string(b))
	case g.Token == "-":
		b, err := io.ReadAll(io.LimitReader(g.stdin, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("read the token from stdin: %w", err)
		}
		return tokenCredential(string(b))
	case g.Token != "":
		return tokenCredential(g.Token)
	}
	return c.browserLogin(g, server)
}

// tokenCredential keeps the first line of a token file or stdin, which is
// sent as is from then on (it is never renewed).
func tokenCredential(s string) (*credential, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, store.Errorf(store.EINVALID, "the token is empty")
	}
	return &credential{APIToken: line}, nil
}

// setupTerraform creates the API token "terraform (<host>)" and writes it
// to Terraform's credentials file, replacing (and revoking) the one an
// earlier login made.
func setupTerraform(g *Globals, f *credFile, server string, cred *credential) error {
	host, err := terraformHost(server)
	if err != nil {
		return err
	}
	c := httpapi.NewClient(server, cred.bearer())
	if cred.TerraformTokenID != "" {
		if err := c.RevokeToken(g.ctx, cred.TerraformTokenID); err != nil && store.ErrorCode(err) != store.ENOTFOUND {
			g.notef("Warning: could not revoke Terraform's previous API token %s: %s", cred.TerraformTokenID, store.ErrorMessage(err))
		}
		cred.TerraformTokenID, cred.TerraformHost = "", ""
	}
	created, err := c.CreateToken(g.ctx, "terraform ("+host+")", 0)
	if err != nil {
		_ = f.put(server, cred)
		return fmt.Errorf("logged in, but could not create an API token for Terraform: %w", err)
	}
	path, _, err := setTerraformToken(host, created.Token)
	if err != nil {
		if rerr := c.RevokeToken(g.ctx, created.ID); rerr != nil {
			g.notef("Warning: could not revoke the unused API token %s: %s", created.ID, store.ErrorMessage(rerr))
		}
		_ = f.put(server, cred)
		return fmt.Errorf("logged in, but could not write Terraform's credentials: %w", err)
	}
	cred.TerraformTokenID, cred.TerraformHost = created.ID, host
	if err := f.put(server, cred); err != nil {
		return err
	}
	g.notef("Created API token %s %q and wrote it to %s for host %s.", created.ID, created.Name, path, host)
	return nil
}

// browserLogin runs the authorization code flow with PKCE: it listens on a
// loopback port, sends the user's browser to the server's authorization
// page and redeems the code that comes back.
func (c *LoginCmd) browserLogin(g *Globals, server string) (*credential, error) {
	ln, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	verifier, state := randomToken(32), randomToken(16)
	sum := sha256.Sum256([]byte(verifier))
	redirect := fmt.Sprintf("http://%s%s", ln.Addr(), loginCallback)
	authURL := server + "/oauth/authorization?" + url.Values{
		"client_id": {cliClientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
	g.notef("To log in to %s, open this URL in a browser:\n\n    %s\n", server, authURL)
	if !c.NoBrowser {
		if err := openBrowser(authURL); err != nil {
			g.notef("(Could not start a browser: %v)", err)
		}
	}
	g.notef("Waiting for the login to finish (up to %s)...", c.Timeout)
	code, err := waitForCode(g.ctx, ln, state, c.Timeout)
	if err != nil {
		return nil, err
	}
	pair, err := httpapi.NewClient(server, "").ExchangeCode(g.ctx, cliClientID, code, verifier, redirect)
	if err != nil {
		return nil, err
	}
	if pair.RefreshToken == "" && pair.ExpiresIn <= 0 {
		return &credential{APIToken: pair.AccessToken}, nil // a long-lived token
	}
	return &credential{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresAt: expiresAt(pair.ExpiresIn)}, nil
}

// listenLoopback listens on the first free port of the login range on
// 127.0.0.1.
func listenLoopback() (net.Listener, error) {
	var last error
	for p := loginPortMin; p <= loginPortMax; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			return ln, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no free port in %d-%d on 127.0.0.1 for the login callback: %w", loginPortMin, loginPortMax, last)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// openBrowser starts the desktop's browser on u without waiting for it.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() //nolint:errcheck // only reaps the opener, which exits at once
	return nil
}

type callbackResult struct {
	code string
	err  error
}

// waitForCode serves the loopback callback until a request with the right
// state arrives, the timeout passes or ctx ends. Requests with another
// state (or no code) are answered 400 and ignored, so a stray request
// cannot end the login; an OAuth error with the right state does.
func waitForCode(ctx context.Context, ln net.Listener, state string, timeout time.Duration) (string, error) {
	results := make(chan callbackResult, 1)
	mux := http.NewServeMux()
	mux.HandleFunc(loginCallback, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		res := callbackResult{code: q.Get("code")}
		switch {
		case q.Get("state") != state:
			loginPage(w, http.StatusBadRequest, "Login failed", "The answer does not belong to this login (state mismatch). Start again with <code>opentaco login</code>.")
			return
		case q.Get("error") != "":
			msg := q.Get("error")
			if d := q.Get("error_description"); d != "" {
				msg += ": " + d
			}
			res.err = store.Errorf(store.EUNAUTHORIZED, "login failed: %s", msg)
			loginPage(w, http.StatusOK, "Login failed", html.EscapeString(msg)+". You can close this tab.")
		case res.code == "":
			loginPage(w, http.StatusBadRequest, "Login failed", "The answer carries no authorization code.")
			return
		default:
			loginPage(w, http.StatusOK, "Logged in", "OpenTaco is logged in. You can close this tab and return to the terminal.")
		}
		select {
		case results <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // lets the final page reach the browser
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case res := <-results:
		return res.code, res.err
	case <-timer.C:
		return "", fmt.Errorf("gave up waiting for the browser login after %s", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// loginPage writes the small page the browser shows at the end; body is
// HTML.
func loginPage(w http.ResponseWriter, status int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><title>OpenTaco: %[1]s</title></head>`+
		`<body style="font-family:sans-serif;margin:3em"><h1>%[1]s</h1><p>%[2]s</p></body></html>`, title, body)
}

// LogoutCmd logs out of a server.
type LogoutCmd struct {
	URL string `arg:"" optional:"" name:"server" help:"Server URL (default: --server)."`
}

// Run revokes Terraform's API token and the session's refresh-token
// family on the server, then forgets the stored credential and removes
// the host from Terraform's credentials file. Logging out twice is fine.
// When the server cannot be reached the local state is removed anyway and
// the failure is reported.
func (c *LogoutCmd) Run(g *Globals) error {
	server, err := loginServer(c.URL, g.Server)
	if err != nil {
		return err
	}
	f, err := g.credFile()
	if err != nil {
		return err
	}
	cred, err := f.get(server)
	if err != nil {
		return err
	}
	var failed []error
	host, _ := terraformHost(server)
	if cred != nil {
		if cred.TerraformHost != "" {
			host = cred.TerraformHost
		}
		failed = revokeServerSide(g, f, server, cred)
		if err := f.put(server, nil); err != nil {
			return err
		}
	}
	if host != "" {
		if path, changed, err := setTerraformToken(host, ""); err != nil {
			failed = append(failed, err)
		} else if changed {
			g.notef("Removed %s from %s.", host, path)
		}
	}
	if cred == nil {
		g.notef("Not logged in to %s.", server)
	} else {
		g.notef("Logged out of %s.", server)
	}
	if len(failed) > 0 {
		return fmt.Errorf("the local credentials are gone, but: %w", errors.Join(failed...))
	}
	return nil
}

// revokeServerSide revokes Terraform's API token and the session's
// refresh-token family. Tokens the server no longer knows are fine.
func revokeServerSide(g *Globals, f *credFile, server string, cred *credential) []error {
	s := &session{server: server, file: f, base: http.DefaultTransport, loaded: true, cred: cred, bearer: cred.bearer()}
	c := httpapi.NewClient(server, "")
	c.HTTP = &http.Client{Transport: s}
	var failed []error
	if id := cred.TerraformTokenID; id != "" {
		switch err := c.RevokeToken(g.ctx, id); store.ErrorCode(err) {
		case "":
			g.notef("Revoked Terraform's API token %s.", id)
		case store.ENOTFOUND:
		default:
			failed = append(failed, fmt.Errorf("could not revoke Terraform's API token %s (revoke it with `opentaco token revoke %s`): %s", id, id, errorText(err)))
		}
	}
	if cred.refreshable() {
		if _, err := s.current(g.ctx, ""); err != nil && store.ErrorCode(err) != store.EUNAUTHORIZED {
			return append(failed, err)
		} else if err != nil {
			return failed // the session is already dead
		}
		s.mu.Lock()
		refresh := s.cred.RefreshToken
		s.mu.Unlock()
		switch err := c.Logout(g.ctx, refresh); store.ErrorCode(err) {
		case "", store.EUNAUTHORIZED:
		default:
			failed = append(failed, fmt.Errorf("could not end the login session on the server: %s", errorText(err)))
		}
	}
	return failed
}

// WhoamiCmd shows the caller's principal.
type WhoamiCmd struct{}

func (c *WhoamiCmd) Run(g *Globals) error {
	p, err := g.client().Me(g.ctx)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(p)
	}
	return g.printFields([][2]string{
		{"Subject", p.Subject},
		{"Email", dash(p.Email)},
		{"Roles", dash(strings.Join(p.Roles, ", "))},
		{"Groups", dash(strings.Join(p.Groups, ", "))},
		{"Credential", dash(p.Kind)},
	})
}
