package tfe

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// Login: the OAuth 2 authorization-code flow with PKCE (S256) of
// `terraform login`, `tofu login` and `opentaco login` (TFE.md §1.3).
//
// GET /oauth/authorization checks the client's request and then, without
// an OIDC provider, shows a page asking for an API token (POSTed back to
// the same path); with one, it sends the browser to the provider under the
// server's own client ID, state and PKCE, and GET /oauth/callback finishes
// that. Either way the browser ends at the client's loopback redirect_uri
// with a code, which POST /oauth/token turns into an API token (or, for
// opentaco-cli, an access and refresh token pair).
//
// Codes and logins waiting for the provider live in memory: a restart
// during a login only means logging in again.

// CLIClientID is the client_id of `opentaco login`, which gets an access
// and refresh token pair instead of an API token.
const CLIClientID = "opentaco-cli"

const (
	codeTTL     = 5 * time.Minute  // an authorization code
	pendingTTL  = 10 * time.Minute // a login waiting for the provider
	maxPending  = 10000            // logins kept waiting at once
	maxParamLen = 1024             // any one OAuth parameter
	maxFormBody = 64 << 10
	cookiePath  = "/oauth/callback"
)

//go:embed login.html
var loginHTML string

var pages = template.Must(template.New("login.html").Parse(loginHTML))

func (a *API) routeLogin() {
	l := &loginServer{api: a, codes: map[string]*grant{}, pending: map[string]*pendingLogin{}}
	a.mountOAuth(http.MethodGet, "/oauth/authorization", l.authorize, renderPage)
	a.mountOAuth(http.MethodPost, "/oauth/authorization", l.authorizeForm, renderPage)
	a.mountOAuth(http.MethodGet, "/oauth/callback", l.callback, renderPage)
	a.mountOAuth(http.MethodPost, "/oauth/token", l.token, renderOAuthError)
}

// oauthError is a refusal that the OAuth flow itself defines: an error
// code of RFC 6749 with a fixed status (400 for all of them, §4.1.2.1 and
// §5.2), rendered as an OAuth JSON error or an error page. Other errors
// take their status from the httpapi table.
type oauthError struct {
	status int
	code   string // invalid_request, invalid_grant, unsupported_grant_type, ...
	msg    string
}

func (e *oauthError) Error() string { return e.code + ": " + e.msg }

func badRequest(code, format string, args ...any) error {
	return &oauthError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

// mountOAuth mounts h with no-store caching; an *oauthError it returns is
// rendered with its own status, anything else goes through the server's
// error path (logged once when internal).
func (a *API) mountOAuth(method, pattern string, h httpapi.Handler, render httpapi.ErrorRenderer) {
	a.srv.Mount(method, pattern, httpapi.SurfaceTFE, func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		err := h(w, r, p)
		var oe *oauthError
		if errors.As(err, &oe) {
			render(w, r, oe.status, oe.code, oe.msg)
			return nil
		}
		return err
	}, render)
}

// renderOAuthError writes {"error","error_description"} (RFC 6749 §5.2).
// Errors from outside the OAuth checks arrive with a store code: internal
// ones become server_error, the rest invalid_request.
func renderOAuthError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	switch {
	case status >= 500:
		code = "server_error"
	case !oauthCodes[code]:
		code = "invalid_request"
	}
	if status == http.StatusUnprocessableEntity { // the TFE column's "invalid"
		status = http.StatusBadRequest
	}
	writeOAuthJSON(w, status, map[string]string{"error": code, "error_description": message})
}

var oauthCodes = map[string]bool{"invalid_request": true, "invalid_grant": true, "unsupported_grant_type": true}

func writeOAuthJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// pageData fills the templates of login.html.
type pageData struct {
	Title  string
	Error  string
	Host   string
	Client string
	Fields []field // the client's request, carried through the form
}

type field struct{ Name, Value string }

// renderPage writes the error page.
func renderPage(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	if status == http.StatusUnprocessableEntity { // the TFE column's "invalid"; a page says 400
		status = http.StatusBadRequest
	}
	title := "Login failed"
	if status == http.StatusBadRequest {
		title = "Invalid login request"
	}
	writePage(w, status, "error", pageData{Title: title, Error: message})
}

func writePage(w http.ResponseWriter, status int, name string, data pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// form-action also governs the redirect after the POST (Chrome), so the
	// loopback callbacks are listed.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "+
		"form-action 'self' http://localhost:* http://127.0.0.1:*")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data)
}

// authRequest is what a client asked for at /oauth/authorization.
type authRequest struct {
	ClientID, RedirectURI, State, Challenge, Scope string
}

// fields returns the request as the hidden fields of the login form.
func (q authRequest) fields() []field {
	f := []field{
		{"client_id", q.ClientID}, {"redirect_uri", q.RedirectURI}, {"response_type", "code"},
		{"state", q.State}, {"code_challenge", q.Challenge}, {"code_challenge_method", "S256"},
	}
	if q.Scope != "" {
		f = append(f, field{"scope", q.Scope})
	}
	return f
}

// parseAuthRequest checks an authorization request. The redirect_uri is
// checked first and every failure is a page, never a redirect, so the
// endpoint cannot be used as an open redirector.
func parseAuthRequest(v url.Values) (authRequest, error) {
	q := authRequest{ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), State: v.Get("state"), Challenge: v.Get("code_challenge"), Scope: v.Get("scope")}
	for _, s := range []string{q.ClientID, q.RedirectURI, q.State, q.Challenge, q.Scope} {
		if len(s) > maxParamLen {
			return q, badRequest("invalid_request", "a parameter is longer than %d bytes", maxParamLen)
		}
	}
	if err := checkRedirectURI(q.RedirectURI); err != nil {
		return q, err
	}
	switch {
	case q.ClientID == "":
		return q, badRequest("invalid_request", "client_id is required")
	case v.Get("response_type") != "code":
		return q, badRequest("unsupported_response_type", "response_type must be code")
	case q.Challenge == "":
		return q, badRequest("invalid_request", "code_challenge is required (PKCE)")
	case v.Get("code_challenge_method") != "S256":
		return q, badRequest("invalid_request", "code_challenge_method must be S256")
	case len(q.Challenge) != 43 || !isBase64URL(q.Challenge):
		return q, badRequest("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	}
	return q, nil
}

// checkRedirectURI accepts exactly http://localhost:<port>/login and
// http://127.0.0.1:<port>/login with the port within LoginPorts.
func checkRedirectURI(raw string) error {
	bad := badRequest("invalid_request", "redirect_uri must be http://localhost:<port>/login or http://127.0.0.1:<port>/login with a port from %d to %d", LoginPorts[0], LoginPorts[1])
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Opaque != "" || u.Path != "/login" || u.RawPath != "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || (u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1") {
		return bad
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || strconv.Itoa(port) != u.Port() || port < LoginPorts[0] || port > LoginPorts[1] {
		return bad
	}
	return nil
}

func isBase64URL(s string) bool {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// authorize is GET /oauth/authorization.
func (l *loginServer) authorize(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q, err := parseAuthRequest(r.URL.Query())
	if err != nil {
		return err
	}
	auth := l.api.srv.Auth()
	switch {
	case auth == nil: // --auth-disable: everyone is an anonymous admin
		return l.redirectWithCode(w, r, q, &authn.Principal{Subject: "anonymous", Kind: authn.KindAnonymous})
	case auth.OIDC() == nil:
		writePage(w, http.StatusOK, "login", pageData{Title: "Log in", Host: r.Host, Client: q.ClientID, Fields: q.fields()})
		return nil
	}
	return l.startOIDC(w, r, q)
}

// authorizeForm is POST /oauth/authorization: the login page's form.
func (l *loginServer) authorizeForm(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return badRequest("invalid_request", "the form could not be read: %v", err)
	}
	q, err := parseAuthRequest(r.PostForm)
	if err != nil {
		return err
	}
	auth := l.api.srv.Auth()
	if auth == nil {
		return l.redirectWithCode(w, r, q, &authn.Principal{Subject: "anonymous", Kind: authn.KindAnonymous})
	}
	p, err := auth.Authenticate(r.Context(), r.PostForm.Get("token"))
	if store.ErrorCode(err) == store.EUNAUTHORIZED {
		writePage(w, http.StatusUnauthorized, "login", pageData{
			Title: "Log in", Host: r.Host, Client: q.ClientID, Fields: q.fields(),
			Error: "That token was not accepted: " + store.ErrorMessage(err),
		})
		return nil
	} else if err != nil {
		return err
	}
	return l.redirectWithCode(w, r, q, p)
}

// redirectWithCode issues a code for p and sends the browser to the
// client's redirect_uri with it and the unchanged state.
func (l *loginServer) redirectWithCode(w http.ResponseWriter, r *http.Request, q authRequest, p *authn.Principal) error {
	code := l.issue(q, p, l.now())
	u, err := url.Parse(q.RedirectURI) // checked by parseAuthRequest
	if err != nil {
		return err
	}
	v := url.Values{"code": {code}}
	if q.State != "" {
		v.Set("state", q.State)
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
	return nil
}

// startOIDC sends the browser to the provider under the server's own
// client, remembering the client's request under a fresh state. A cookie
// named after that state ties the callback to this browser.
func (l *loginServer) startOIDC(w http.ResponseWriter, r *http.Request, q authRequest) error {
	state, verifier := randomToken(), randomToken()
	callback := baseURL(r) + "/oauth/callback"
	target, err := l.api.srv.Auth().AuthCodeURL(r.Context(), state, authn.PKCEChallenge(verifier), callback)
	if err != nil {
		return err
	}
	l.wait(state, &pendingLogin{req: q, verifier: verifier, callback: callback, expires: l.now().Add(pendingTTL)}, l.now())
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie(state), Value: "1", Path: cookiePath, MaxAge: int(pendingTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

func loginCookie(state string) string { return "opentaco_login_" + state }

// callback is GET /oauth/callback: the provider's answer.
func (l *loginServer) callback(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	v := r.URL.Query()
	state := v.Get("state")
	if e := v.Get("error"); e != "" {
		l.takePending(state, l.now())
		return &oauthError{status: http.StatusBadRequest, code: "access_denied", msg: "The identity provider refused the login: " + truncate(e+": "+v.Get("error_description"), 300)}
	}
	if c, err := r.Cookie(loginCookie(state)); err != nil || c.Value != "1" || state == "" {
		return badRequest("invalid_request", "This login was not started in this browser, or it has expired.")
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie(state), Value: "", Path: cookiePath, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil})
	pl := l.takePending(state, l.now())
	switch {
	case pl == nil:
		return badRequest("invalid_request", "This login is unknown or has expired (logins last %d minutes).", int(pendingTTL.Minutes()))
	case v.Get("code") == "":
		return badRequest("invalid_request", "The identity provider sent no code.")
	}
	p, err := l.api.srv.Auth().ExchangeCode(r.Context(), v.Get("code"), pl.verifier, pl.callback)
	if err != nil {
		return err
	}
	return l.redirectWithCode(w, r, pl.req, p)
}

// tokenAnswer is the token endpoint's success body.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int    `json:"expires_in,omitempty"`
	TokenType    string `json:"token_type"`
}

// token is POST /oauth/token: a code and its PKCE verifier for a token.
func (l *loginServer) token(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return badRequest("invalid_request", "the form could not be read: %v", err)
	}
	f := r.PostForm
	switch gt := f.Get("grant_type"); {
	case gt == "":
		return badRequest("invalid_request", "grant_type is required")
	case gt != "authorization_code":
		return badRequest("unsupported_grant_type", "only grant_type=authorization_code is supported")
	}
	for _, k := range []string{"code", "code_verifier", "client_id", "redirect_uri"} {
		if f.Get(k) == "" {
			return badRequest("invalid_request", "%s is required", k)
		}
	}
	g := l.redeem(f.Get("code"), l.now())
	switch {
	case g == nil:
		return badRequest("invalid_grant", "the code is unknown, already used or expired")
	case g.req.ClientID != f.Get("client_id"):
		return badRequest("invalid_grant", "the code was issued to another client_id")
	case g.req.RedirectURI != f.Get("redirect_uri"):
		return badRequest("invalid_grant", "redirect_uri differs from the authorization request")
	case subtle.ConstantTimeCompare([]byte(authn.PKCEChallenge(f.Get("code_verifier"))), []byte(g.req.Challenge)) != 1:
		return badRequest("invalid_grant", "code_verifier does not match code_challenge")
	}
	ans, err := l.issueToken(g)
	if err != nil {
		return err
	}
	writeOAuthJSON(w, http.StatusOK, ans)
	return nil
}

// issueToken makes the credential a redeemed code stands for: a token pair
// for opentaco-cli, a long-lived API token for everyone else (Terraform
// stores only the access token and uses it until revoked).
func (l *loginServer) issueToken(g *grant) (*tokenAnswer, error) {
	auth := l.api.srv.Auth()
	switch {
	case auth == nil: // --auth-disable: any token works; each is its own principal
		return &tokenAnswer{AccessToken: randomToken(), TokenType: "bearer"}, nil
	case g.req.ClientID == CLIClientID:
		pair, err := auth.IssuePair(g.principal)
		if err != nil {
			return nil, err
		}
		return &tokenAnswer{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresIn: pair.ExpiresIn, TokenType: "bearer"}, nil
	}
	secret, _, err := auth.CreateAPIToken(g.principal, g.req.ClientID+" (terraform login)", 0)
	if err != nil {
		return nil, err
	}
	return &tokenAnswer{AccessToken: secret, TokenType: "bearer"}, nil
}

// ---------------------------------------------------------------------------
// Codes and waiting logins

// grant is what an authorization code stands for.
type grant struct {
	req       authRequest
	principal *authn.Principal
	expires   time.Time
}

// pendingLogin is a client's request waiting for the provider's answer.
type pendingLogin struct {
	req      authRequest
	verifier string // PKCE verifier of the server's own request
	callback string // redirect_uri of the server's own request
	expires  time.Time
}

// loginServer serves the login routes. It holds codes (by the hash of the
// code) and logins waiting for the provider (by the state sent to it);
// expired entries are pruned on every change.
type loginServer struct {
	api *API

	mu      sync.Mutex
	codes   map[string]*grant
	pending map[string]*pendingLogin
}

func (l *loginServer) now() time.Time { return l.api.now() }

// issue stores a new single-use code for q and p and returns it.
func (l *loginServer) issue(q authRequest, p *authn.Principal, now time.Time) string {
	code := randomToken()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	l.codes[codeKey(code)] = &grant{req: q, principal: p, expires: now.Add(codeTTL)}
	return code
}

// redeem removes code and returns its grant, or nil when it is unknown,
// used or expired. A code is spent by any attempt, right or wrong.
func (l *loginServer) redeem(code string, now time.Time) *grant {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	k := codeKey(code)
	g := l.codes[k]
	delete(l.codes, k)
	return g
}

// wait remembers pl under state. When too many logins wait, an arbitrary
// one is dropped (it fails as expired).
func (l *loginServer) wait(state string, pl *pendingLogin, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	for k := range l.pending {
		if len(l.pending) < maxPending {
			break
		}
		delete(l.pending, k)
	}
	l.pending[state] = pl
}

// takePending removes and returns the login waiting under state, or nil.
func (l *loginServer) takePending(state string, now time.Time) *pendingLogin {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	pl := l.pending[state]
	delete(l.pending, state)
	return pl
}

func (l *loginServer) prune(now time.Time) {
	for k, g := range l.codes {
		if !now.Before(g.expires) {
			delete(l.codes, k)
		}
	}
	for k, pl := range l.pending {
		if !now.Before(pl.expires) {
			delete(l.pending, k)
		}
	}
}

func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// randomToken returns 32 random bytes, base64url: codes, states and PKCE
// verifiers (43 characters, as RFC 7636 asks).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
