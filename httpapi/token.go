package httpapi

import (
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeTokens() {
	s.handle(http.MethodPost, "/v1/tokens", surfaceV1, s.createToken)
	s.handle(http.MethodGet, "/v1/tokens", surfaceV1, s.listTokens)
	s.handle(http.MethodDelete, "/v1/tokens/:tid", surfaceV1, s.revokeToken)
}

// CreatedToken is the answer of POST /v1/tokens: the secret, shown once.
type CreatedToken struct {
	Token string `json:"token"`
	*store.APIToken
}

// TokenList is the answer of GET /v1/tokens.
type TokenList struct {
	Tokens []*store.APIToken `json:"tokens"`
	Count  int               `json:"count"`
}

func (s *Server) principal(r *http.Request) (*authn.Authenticator, *authn.Principal, error) {
	auth, err := s.needAuth()
	if err != nil {
		return nil, nil, err
	}
	p := authn.PrincipalFrom(r.Context())
	if p == nil {
		return nil, nil, store.Errorf(store.EUNAUTHORIZED, "a credential is required")
	}
	return auth, p, nil
}

// createToken makes an API token acting as the caller, or, for admins, as
// another subject with the given groups (service accounts). Body: {"name", "expires_in" (seconds, optional), "owner",
// "groups"}.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	auth, p, err := s.principal(r)
	if err != nil {
		return err
	}
	var body struct {
		Name      string   `json:"name"`
		ExpiresIn int64    `json:"expires_in"`
		Owner     string   `json:"owner"`  // another subject (a service account): needs token.manage
		Groups    []string `json:"groups"` // with owner: the groups the token acts with
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	} else if body.ExpiresIn < 0 {
		return store.Errorf(store.EINVALID, "expires_in must not be negative")
	}
	if body.Owner != "" && body.Owner != p.Subject {
		// Minting a credential for another subject and groups is
		// impersonation: admins only (token.manage covers listing and
		// revoking others' tokens).
		if err := s.allowed(r, store.ActionAll); err != nil {
			return err
		}
		p = &authn.Principal{Subject: body.Owner, Groups: body.Groups}
	}
	secret, rec, err := auth.NewAPIToken(p, body.Name, time.Duration(body.ExpiresIn)*time.Second)
	if err != nil {
		return err
	}
	t, err := s.db(r).CreateAPIToken(rec)
	if err != nil {
		return err
	}
	writeTokens(w, http.StatusCreated, CreatedToken{Token: secret, APIToken: t})
	return nil
}

// listTokens lists the caller's tokens; ?all=true lists everyone's, for
// principals with token.manage.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	_, p, err := s.principal(r)
	if err != nil {
		return err
	}
	owner := p.Subject
	if all, err := boolParam(r, "all"); err != nil {
		return err
	} else if all {
		if err := s.allowed(r, store.ActionTokenManage); err != nil {
			return err
		}
		owner = ""
	}
	ts, err := s.store.ListAPITokens(owner)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TokenList{Tokens: ts, Count: len(ts)})
	return nil
}

// revokeToken revokes one of the caller's tokens (any token with
// token.manage; others' tokens are not found for everyone else).
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	_, caller, err := s.principal(r)
	if err != nil {
		return err
	}
	t, err := s.store.GetAPIToken(p.ByName("tid"))
	if err != nil {
		return err
	} else if t.Owner != caller.Subject && s.allowed(r, store.ActionTokenManage) != nil {
		return store.Errorf(store.ENOTFOUND, "API token %q not found", p.ByName("tid"))
	}
	if err := s.db(r).RevokeAPIToken(t.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
