package httpapi

import (
	"fmt"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeAuth() {
	s.handle(http.MethodGet, "/v1/auth/config", surfaceV1, s.authConfig)
	s.handle(http.MethodPost, "/v1/auth/exchange", surfaceV1, s.authExchange)
	s.handle(http.MethodPost, "/v1/auth/token", surfaceV1, s.authRefresh)
	s.handle(http.MethodGet, "/v1/auth/me", surfaceV1, s.authMe)
	s.handle(http.MethodPost, "/v1/auth/logout", surfaceV1, s.authLogout)
	s.handle(http.MethodPost, "/v1/auth/issue-s3-creds", surfaceV1, s.issueS3Creds)
	s.handle(http.MethodGet, "/oidc/jwks.json", surfaceV1, s.jwks)
}

// AuthConfig is the answer of GET /v1/auth/config: what a client needs to
// log in.
type AuthConfig struct {
	AuthEnabled  bool        `json:"auth_enabled"`
	BuiltinAdmin bool        `json:"builtin_admin"` // no OIDC: log in with the bootstrap token
	OIDC         *OIDCConfig `json:"oidc,omitempty"`
}

// OIDCConfig is the provider part of AuthConfig.
type OIDCConfig struct {
	Issuer                string   `json:"issuer"`
	ClientID              string   `json:"client_id"`
	AuthorizationEndpoint string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string   `json:"token_endpoint,omitempty"`
	Scopes                []string `json:"scopes"`
	GroupsClaim           string   `json:"groups_claim"`
	RedirectURIs          []string `json:"redirect_uris"`
}

// loginRedirectURIs are the loopback callbacks a browser login may return
// to (`opentaco login` and `terraform login`): /login on a port in
// 10000–10010, as advertised in login.v1.
func loginRedirectURIs() []string {
	var out []string
	for port := 10000; port <= 10010; port++ {
		out = append(out, fmt.Sprintf("http://127.0.0.1:%d/login", port))
	}
	return out
}

func (s *Server) needAuth() (*authn.Authenticator, error) {
	if s.auth == nil {
		return nil, store.Errorf(store.EINVALID, "authentication is disabled on this server (--auth-disable)")
	}
	return s.auth, nil
}

func (s *Server) authConfig(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	cfg := AuthConfig{AuthEnabled: s.auth != nil}
	if s.auth != nil && s.auth.OIDC() == nil {
		cfg.BuiltinAdmin = true
	} else if s.auth != nil {
		o := s.auth.OIDC()
		cfg.OIDC = &OIDCConfig{Issuer: o.Issuer, ClientID: o.ClientID, Scopes: o.Scopes, GroupsClaim: o.GroupsClaim, RedirectURIs: loginRedirectURIs()}
		if meta, err := s.auth.Metadata(r.Context()); err == nil {
			cfg.OIDC.AuthorizationEndpoint, cfg.OIDC.TokenEndpoint = meta.AuthorizationEndpoint, meta.TokenEndpoint
		}
	}
	writeJSON(w, http.StatusOK, cfg)
	return nil
}

// credentialField reads the one required string field of an auth body
// ({"id_token": ...}, {"refresh_token": ...}). Returns EINVALID.
func (s *Server) credentialField(r *http.Request, field string) (*authn.Authenticator, string, error) {
	auth, err := s.needAuth()
	if err != nil {
		return nil, "", err
	}
	var body map[string]any
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, "", err
	}
	v, _ := body[field].(string)
	if v == "" {
		return nil, "", store.Errorf(store.EINVALID, "%s is required", field)
	}
	return auth, v, nil
}

// writeTokens answers with credentials, which no cache may keep.
func writeTokens(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, v)
}

func (s *Server) authExchange(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	auth, idToken, err := s.credentialField(r, "id_token")
	if err != nil {
		return err
	}
	pair, _, err := auth.Exchange(r.Context(), idToken)
	if err != nil {
		return err
	}
	writeTokens(w, http.StatusOK, pair)
	return nil
}

func (s *Server) authRefresh(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	auth, refresh, err := s.credentialField(r, "refresh_token")
	if err != nil {
		return err
	}
	pair, err := auth.Refresh(refresh)
	if err != nil {
		return err
	}
	writeTokens(w, http.StatusOK, pair)
	return nil
}

func (s *Server) authMe(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	p := authn.PrincipalFrom(r.Context())
	if p == nil {
		return store.Errorf(store.EUNAUTHORIZED, "a credential is required")
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) issueS3Creds(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	auth, err := s.needAuth()
	if err != nil {
		return err
	}
	p := authn.PrincipalFrom(r.Context())
	if p == nil {
		return store.Errorf(store.EUNAUTHORIZED, "a credential is required")
	}
	creds, err := auth.IssueS3Credentials(p)
	if err != nil {
		return err
	}
	writeTokens(w, http.StatusOK, creds)
	return nil
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	auth, err := s.needAuth()
	if err != nil {
		return err
	}
	b, err := auth.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err = w.Write(b)
	return err
}

// authLogout revokes the refresh-token family of the given refresh token
// (every session that descends from one login). Unknown tokens are fine:
// the caller is logged out either way.
func (s *Server) authLogout(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	auth, refresh, err := s.credentialField(r, "refresh_token")
	if err != nil {
		return err
	}
	if err := auth.Logout(refresh); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
