package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

// AuthConfig returns what a client needs to log in (GET /v1/auth/config,
// open).
func (c *Client) AuthConfig(ctx context.Context) (*AuthConfig, error) {
	return call[AuthConfig](ctx, c, http.MethodGet, "/v1/auth/config", nil, nil)
}

// Exchange trades an ID token of the server's OIDC provider for a token
// pair. Returns EINVALID (no provider configured), EUNAUTHORIZED.
func (c *Client) Exchange(ctx context.Context, idToken string) (*authn.TokenPair, error) {
	return call[authn.TokenPair](ctx, c, http.MethodPost, "/v1/auth/exchange", nil, map[string]string{"id_token": idToken})
}

// Refresh spends a refresh token and returns the rotated pair. Returns
// EUNAUTHORIZED (unknown, expired, spent or revoked refresh token).
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*authn.TokenPair, error) {
	return call[authn.TokenPair](ctx, c, http.MethodPost, "/v1/auth/token", nil, map[string]string{"refresh_token": refreshToken})
}

// Me returns the principal of the client's credential. Returns
// EUNAUTHORIZED.
func (c *Client) Me(ctx context.Context) (*authn.Principal, error) {
	return call[authn.Principal](ctx, c, http.MethodGet, "/v1/auth/me", nil, nil)
}

// Logout revokes the refresh-token family of refreshToken; an unknown
// token is not an error. Returns EINVALID (authentication disabled).
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	return c.doJSON(ctx, http.MethodPost, "/v1/auth/logout", nil, map[string]string{"refresh_token": refreshToken}, nil)
}

// CreateToken makes an API token acting as the caller; expiresIn 0 means
// no expiry (it is sent in whole seconds, rounded up). The secret is in
// the answer only. Returns EINVALID, EUNAUTHORIZED.
func (c *Client) CreateToken(ctx context.Context, name string, expiresIn time.Duration) (*CreatedToken, error) {
	body := struct {
		Name      string `json:"name"`
		ExpiresIn int64  `json:"expires_in,omitempty"`
	}{Name: name, ExpiresIn: int64((expiresIn + time.Second - 1) / time.Second)}
	return call[CreatedToken](ctx, c, http.MethodPost, "/v1/tokens", nil, &body)
}

// ListTokens lists the caller's API tokens, or everyone's when all is set.
// Returns EUNAUTHORIZED, EFORBIDDEN (all without the admin role).
func (c *Client) ListTokens(ctx context.Context, all bool) (*TokenList, error) {
	var q url.Values
	if all {
		q = url.Values{"all": {"true"}}
	}
	return call[TokenList](ctx, c, http.MethodGet, "/v1/tokens", q, nil)
}

// RevokeToken revokes an API token by ID. Returns EUNAUTHORIZED,
// ENOTFOUND (unknown, or another's token for a non-admin).
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
}

// IssueS3Creds returns short-lived credentials for the S3 endpoint, in the
// AWS credential_process shape. Returns EUNAUTHORIZED, EINVALID
// (authentication disabled).
func (c *Client) IssueS3Creds(ctx context.Context) (*authn.S3Credentials, error) {
	return call[authn.S3Credentials](ctx, c, http.MethodPost, "/v1/auth/issue-s3-creds", nil, nil)
}

// ExchangeCode redeems an OAuth authorization code at POST /oauth/token
// (grant_type authorization_code with the PKCE verifier; no client
// secret). OAuth error answers ({"error": "invalid_grant", ...}) become
// EUNAUTHORIZED, or EINVALID for a malformed request. Returns
// EUNAUTHORIZED, EINVALID.
func (c *Client) ExchangeCode(ctx context.Context, clientID, code, verifier, redirectURI string) (*authn.TokenPair, error) {
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {clientID}, "redirect_uri": {redirectURI},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, oauthError(resp.StatusCode, resp.Status, b)
	}
	var pair authn.TokenPair
	if err := decodeBody(resp, &pair); err != nil {
		return nil, err
	} else if pair.AccessToken == "" {
		return nil, store.Errorf(store.EINTERNAL, "the token endpoint answered without an access_token")
	}
	return &pair, nil
}

// oauthError turns an RFC 6749 error answer into a *store.Error; other
// bodies go through responseError.
func oauthError(status int, statusText string, body []byte) error {
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Code        string `json:"code"`
	}
	if json.Unmarshal(body, &oe) != nil || oe.Error == "" || oe.Code != "" {
		return responseError(status, statusText, body)
	}
	msg := "login failed: " + oe.Error
	if oe.Description != "" {
		msg += ": " + oe.Description
	}
	code := store.EUNAUTHORIZED
	switch oe.Error {
	case "invalid_request", "unsupported_grant_type", "invalid_scope":
		code = store.EINVALID
	case "server_error", "temporarily_unavailable":
		code = store.EINTERNAL
	}
	return &store.Error{Code: code, Message: msg}
}
