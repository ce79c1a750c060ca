package authn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opentaco/opentaco/store"
)

// The server-side OIDC client: the authorization-code flow with PKCE
// (S256) that `terraform login` and the login page run against the
// configured provider, with the server's own client ID and secret.
//
// The nonce of the request is the PKCE challenge. The verifier stays on
// the server, so an ID token whose nonce is S256(verifier) answers this
// very request; ExchangeCode checks it when the provider returns a nonce.

// PKCEChallenge returns the S256 challenge of a PKCE verifier:
// base64url(sha256(verifier)) without padding.
func PKCEChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AuthCodeURL returns the provider's authorization URL for the server's
// own client: response_type=code, the configured scopes, redirectURI,
// state and the S256 challenge. Returns EINVALID (no provider) or an
// internal error when the provider's discovery document cannot be read.
func (a *Authenticator) AuthCodeURL(ctx context.Context, state, challenge, redirectURI string) (string, error) {
	if a.oidc == nil {
		return "", store.Errorf(store.EINVALID, "no OIDC provider is configured")
	}
	meta, err := a.oidc.metadata(ctx)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(meta.AuthorizationEndpoint)
	if err != nil || meta.AuthorizationEndpoint == "" {
		return "", fmt.Errorf("OIDC provider: bad authorization_endpoint %q", meta.AuthorizationEndpoint)
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", a.oidc.cfg.ClientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("scope", strings.Join(a.oidc.cfg.Scopes, " "))
	q.Set("state", state)
	q.Set("nonce", challenge)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// tokenAnswer is the part of the provider's token response used here.
type tokenAnswer struct {
	IDToken          string `json:"id_token"`
	AccessToken      string `json:"access_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// ExchangeCode redeems an authorization code at the provider's token
// endpoint (with the PKCE verifier, and the client secret when one is
// configured), verifies the returned ID token (signature, iss, aud, exp,
// and the nonce) and returns its principal. Roles are not filled in: they
// are looked up whenever a credential issued for the principal is used.
// Returns EINVALID (no provider), EUNAUTHORIZED (the provider refused the
// code, or the ID token is missing or invalid), or an internal error when
// the provider cannot be reached.
func (a *Authenticator) ExchangeCode(ctx context.Context, code, verifier, redirectURI string) (*Principal, error) {
	if a.oidc == nil {
		return nil, store.Errorf(store.EINVALID, "no OIDC provider is configured")
	}
	meta, err := a.oidc.metadata(ctx)
	if err != nil {
		return nil, err
	}
	ans, err := a.oidc.redeem(ctx, meta, code, verifier, redirectURI)
	if err != nil {
		return nil, err
	}
	p, err := a.oidc.verify(ctx, ans.IDToken)
	if err != nil {
		return nil, err
	}
	if err := checkNonce(ans.IDToken, PKCEChallenge(verifier)); err != nil {
		return nil, err
	}
	if p.Email == "" || len(p.Groups) == 0 {
		a.oidc.fillFromUserInfo(ctx, meta, ans.AccessToken, p)
	}
	p.Roles = []string{}
	return p, nil
}

// fillFromUserInfo completes a principal from the provider's UserInfo
// endpoint: providers that also issue an access token may serve scope
// claims (email, groups) only there (OIDC Core §5.4). The subject must
// match the ID token's; a failure leaves the principal as it is.
func (v *oidcVerifier) fillFromUserInfo(ctx context.Context, meta *ProviderMetadata, accessToken string, p *Principal) {
	if meta.UserInfoEndpoint == "" || accessToken == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, meta.UserInfoEndpoint, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := v.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var claims map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&claims) != nil || claims["sub"] != p.Subject {
		return
	}
	if email, ok := claims["email"].(string); ok && p.Email == "" {
		p.Email = email
	}
	if len(p.Groups) == 0 {
		switch g := claims[v.cfg.GroupsClaim].(type) {
		case []any:
			for _, x := range g {
				if s, ok := x.(string); ok {
					p.Groups = append(p.Groups, s)
				}
			}
		case string:
			p.Groups = append(p.Groups, g)
		}
	}
}

// redeem posts the code to the token endpoint. A client with a secret
// authenticates with client_secret_basic unless the provider lists only
// client_secret_post; a public client sends its client_id in the form.
func (v *oidcVerifier) redeem(ctx context.Context, meta *ProviderMetadata, code, verifier, redirectURI string) (*tokenAnswer, error) {
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {redirectURI},
	}
	basic := v.cfg.ClientSecret != "" && usesBasic(meta.TokenEndpointAuthMethods)
	if !basic {
		form.Set("client_id", v.cfg.ClientID)
		if v.cfg.ClientSecret != "" {
			form.Set("client_secret", v.cfg.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("OIDC provider: bad token_endpoint %q: %w", meta.TokenEndpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 §2.3.1: both parts are form-encoded before basic auth.
		req.SetBasicAuth(url.QueryEscape(v.cfg.ClientID), url.QueryEscape(v.cfg.ClientSecret))
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("OIDC provider: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("OIDC provider: token response: %w", err)
	}
	var ans tokenAnswer
	jsonErr := json.Unmarshal(body, &ans)
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("OIDC provider: POST %s: %s", meta.TokenEndpoint, resp.Status)
	case resp.StatusCode != http.StatusOK && ans.Error != "":
		return nil, store.Errorf(store.EUNAUTHORIZED, "the OIDC provider refused the code: %s %s", ans.Error, ans.ErrorDescription)
	case resp.StatusCode != http.StatusOK:
		return nil, store.Errorf(store.EUNAUTHORIZED, "the OIDC provider refused the code: %s", resp.Status)
	case jsonErr != nil:
		return nil, fmt.Errorf("OIDC provider: token response is not JSON: %w", jsonErr)
	case ans.IDToken == "":
		return nil, store.Errorf(store.EUNAUTHORIZED, "the OIDC provider returned no id_token (is the openid scope requested?)")
	}
	return &ans, nil
}

// usesBasic reports whether to authenticate with client_secret_basic: the
// default of OpenID Connect Discovery, unless the provider lists methods
// without it but with client_secret_post.
func usesBasic(methods []string) bool {
	return len(methods) == 0 || slices.Contains(methods, "client_secret_basic") || !slices.Contains(methods, "client_secret_post")
}

// checkNonce compares the nonce of an (already verified) ID token with
// want. A token without a nonce passes: the code was redeemed directly,
// with the PKCE verifier, so it cannot have been swapped in transit.
func checkNonce(idToken, want string) error {
	t, err := jwt.ParseInsecure([]byte(idToken))
	if err != nil {
		return store.Errorf(store.EUNAUTHORIZED, "invalid ID token: %v", err)
	}
	if nonce, ok := t.Get("nonce"); ok && nonce != want {
		return store.Errorf(store.EUNAUTHORIZED, "invalid ID token: nonce does not match the login request")
	}
	return nil
}
