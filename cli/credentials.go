package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// credential is what `opentaco login` keeps for one server: a login
// session (an access token with its expiry and a refresh token) or an API
// token, plus the ID of the API token it made for Terraform.
type credential struct {
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	APIToken     string    `json:"api_token,omitempty"`
	// TerraformTokenID is the API token written to Terraform's credentials
	// file for TerraformHost; logout revokes it.
	TerraformTokenID string `json:"terraform_token_id,omitempty"`
	TerraformHost    string `json:"terraform_host,omitempty"`
}

// bearer is the token to send: the API token, else the access token.
func (c *credential) bearer() string {
	if c.APIToken != "" {
		return c.APIToken
	}
	return c.AccessToken
}

// refreshable reports whether c is a session that can be renewed.
func (c *credential) refreshable() bool { return c.APIToken == "" && c.RefreshToken != "" }

// expiresSoon reports whether the access token is expired at now or will
// be within a short margin (so a request does not race its expiry).
func (c *credential) expiresSoon(now time.Time) bool {
	return c.refreshable() && (c.AccessToken == "" || !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt.Add(-30*time.Second)))
}

// credFile keeps the credentials of every server the user logged in to,
// at <config dir>/credentials.json (file 0600, dir 0700), keyed by server
// URL. Writes replace the file atomically; like the lock file, two CLIs
// writing at the same moment may lose one update, which at worst means
// logging in again.
type credFile struct {
	path string
}

type credFileData struct {
	Credentials map[string]*credential `json:"credentials"`
}

// credFile returns the credential file of the configured config dir.
func (g *Globals) credFile() (*credFile, error) {
	lf, err := g.lockFile()
	if err != nil {
		return nil, err
	}
	return &credFile{path: filepath.Join(filepath.Dir(lf.path), "credentials.json")}, nil
}

// get returns the stored credential of server, or nil.
func (f *credFile) get(server string) (*credential, error) {
	d, err := f.read()
	if err != nil {
		return nil, err
	}
	return d.Credentials[serverKey(server)], nil
}

// put stores c for server; nil forgets the server.
func (f *credFile) put(server string, c *credential) error {
	d, err := f.read()
	if err != nil {
		return err
	}
	key := serverKey(server)
	if c == nil {
		if d.Credentials[key] == nil {
			return nil
		}
		delete(d.Credentials, key)
	} else {
		d.Credentials[key] = c
	}
	return writeJSONFile(f.path, d)
}

func (f *credFile) read() (*credFileData, error) {
	d := &credFileData{}
	if err := readJSONFile(f.path, d, "delete it and log in again"); err != nil {
		return nil, err
	}
	if d.Credentials == nil {
		d.Credentials = map[string]*credential{}
	}
	return d, nil
}

// writeSecretFile writes data atomically with mode 0600, tightening the
// mode of an existing file first.
func writeSecretFile(path string, data []byte) error {
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}

// terraformHost is the name Terraform gives the server's host in its
// credentials file: host[:port], lower case, without the default :443.
func terraformHost(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server URL %q has no host", server)
	}
	return strings.TrimSuffix(strings.ToLower(u.Host), ":443"), nil
}

// terraformCredsPath is Terraform's credentials file, the one `terraform
// login` writes: ~/.terraform.d/credentials.tfrc.json
// (%APPDATA%\terraform.d on Windows).
func terraformCredsPath() (string, error) {
	if runtime.GOOS == "windows" {
		if dir := os.Getenv("APPDATA"); dir != "" {
			return filepath.Join(dir, "terraform.d", "credentials.tfrc.json"), nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find Terraform's credentials file: %w", err)
	}
	return filepath.Join(home, ".terraform.d", "credentials.tfrc.json"), nil
}

// setTerraformToken sets (token != "") or removes (token == "") the entry
// of host in Terraform's credentials file, keeping every other entry and
// key. It reports whether the file changed.
func setTerraformToken(host, token string) (path string, changed bool, err error) {
	if path, err = terraformCredsPath(); err != nil {
		return "", false, err
	}
	doc := map[string]json.RawMessage{}
	creds := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && token == "":
		return path, false, nil
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return path, false, err
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return path, false, fmt.Errorf("%s is not valid JSON; fix or remove it: %w", path, err)
		}
		if raw, ok := doc["credentials"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &creds); err != nil {
				return path, false, fmt.Errorf("%s: \"credentials\" is not an object: %w", path, err)
			}
		}
	}
	if token == "" {
		if _, ok := creds[host]; !ok {
			return path, false, nil
		}
		delete(creds, host)
	} else {
		entry, _ := json.Marshal(map[string]string{"token": token})
		creds[host] = entry
	}
	if doc["credentials"], err = json.Marshal(creds); err != nil {
		return path, false, err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return path, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return path, false, err
	}
	return path, true, writeSecretFile(path, append(out, '\n'))
}

// session supplies the credential of one run to every request of the
// client commands: --token (OPENTACO_TOKEN) when given, else the stored
// credential of the server. A stored login session is renewed with its
// refresh token when the access token has expired, or once when the
// server answers 401; the rotated pair is saved at once. A request whose
// body cannot be replayed (a streamed upload) is not retried after a 401,
// but the proactive renewal makes that rare.
type session struct {
	server string
	token  string    // --token, or "" to use the stored credential
	file   *credFile // nil: no config dir
	base   http.RoundTripper

	mu     sync.Mutex
	loaded bool
	cred   *credential // the stored credential in use; nil when none or --token
	bearer string      // what is sent
}

var _ http.RoundTripper = (*session)(nil)

// session returns the credential session of the run, made on first use.
func (g *Globals) session() *session {
	if g.sess == nil {
		g.sess = &session{server: g.Server, token: g.Token, base: http.DefaultTransport}
		g.sess.file, _ = g.credFile() // an error surfaces on use
	}
	return g.sess
}

// authClient returns an API client for --server that authenticates
// through the run's session.
func (g *Globals) authClient() *httpapi.Client {
	c := httpapi.NewClient(g.Server, "")
	c.HTTP = &http.Client{Transport: g.session()}
	return c
}

// authHint returns advice for an EUNAUTHORIZED failure of a run that sent
// no credential at all, or "".
func (g *Globals) authHint(err error) string {
	if store.ErrorCode(err) != store.EUNAUTHORIZED || g.sess == nil {
		return ""
	}
	g.sess.mu.Lock()
	defer g.sess.mu.Unlock()
	if !g.sess.loaded || g.sess.bearer != "" {
		return ""
	}
	return fmt.Sprintf("not logged in to %s: run `opentaco login %s` or pass --token", g.sess.server, g.sess.server)
}

// RoundTrip sends req with the current credential and, for a login
// session answered 401, renews the session and sends it once more.
func (s *session) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tok, err := s.current(ctx, "")
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := s.send(req, req.Body, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !s.renewable() ||
		req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	next, err := s.current(ctx, tok)
	if err != nil {
		return nil, err // says the session is over and how to log in
	}
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return s.send(req, body, next)
}

// send sends a copy of req with body and the bearer token tok.
func (s *session) send(req *http.Request, body io.ReadCloser, tok string) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = body
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return s.base.RoundTrip(r)
}

func (s *session) renewable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cred != nil && s.cred.refreshable()
}

// current returns the token to send. It loads the credential on first
// use and renews a login session whose access token has expired, or, when
// stale is not empty, whose access token stale was refused (unless it was
// renewed meanwhile). Returns EUNAUTHORIZED when the session cannot be
// renewed.
func (s *session) current(ctx context.Context, stale string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		if err := s.load(); err != nil {
			return "", err
		}
	}
	switch {
	case s.cred == nil || !s.cred.refreshable():
		return s.bearer, nil
	case stale == "" && !s.cred.expiresSoon(time.Now()):
		return s.bearer, nil
	case stale != "" && stale != s.bearer:
		return s.bearer, nil // renewed by a concurrent request
	}
	if err := s.renew(ctx); err != nil {
		return "", err
	}
	return s.bearer, nil
}

func (s *session) load() error {
	s.loaded = true
	if s.token != "" {
		s.bearer = s.token
		return nil
	}
	if s.file == nil {
		return nil
	}
	c, err := s.file.get(s.server)
	if err != nil {
		return err
	}
	if c != nil {
		s.cred, s.bearer = c, c.bearer()
	}
	return nil
}

// renew replaces the session's pair with a rotated one and saves it.
// Another CLI may have rotated the stored pair since it was read; that
// newer pair is used when it is still fresh, so a spent refresh token is
// not presented again.
func (s *session) renew(ctx context.Context) error {
	if cur, err := s.file.get(s.server); err == nil && cur != nil && cur.refreshable() &&
		cur.RefreshToken != s.cred.RefreshToken && !cur.expiresSoon(time.Now()) {
		s.cred, s.bearer = cur, cur.bearer()
		return nil
	}
	c := httpapi.NewClient(s.server, "")
	c.HTTP = &http.Client{Transport: s.base}
	pair, err := c.Refresh(ctx, s.cred.RefreshToken)
	if code := store.ErrorCode(err); code == store.EUNAUTHORIZED || code == store.EINVALID {
		return store.Errorf(store.EUNAUTHORIZED, "the login session for %s has expired or was revoked: run `opentaco login %s`", s.server, s.server)
	} else if err != nil {
		return err
	}
	next := *s.cred
	next.AccessToken, next.RefreshToken, next.ExpiresAt = pair.AccessToken, pair.RefreshToken, expiresAt(pair.ExpiresIn)
	s.cred, s.bearer = &next, next.AccessToken
	if err := s.file.put(s.server, &next); err != nil {
		return fmt.Errorf("save the renewed login session: %w", err)
	}
	return nil
}

// expiresAt is the expiry of a token that lives n seconds from now; zero
// for n <= 0 (unknown).
func expiresAt(n int) time.Time {
	if n <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(n) * time.Second).UTC().Truncate(time.Second)
}
