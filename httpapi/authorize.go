package httpapi

import (
	"net/http"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

// policy returns the caller's RBAC policy, compiled once per request.
func (s *Server) policy(r *http.Request) (*authn.Policy, error) {
	info := requestInfoFrom(r.Context())
	if info.policy != nil {
		return info.policy, nil
	}
	p := authn.PrincipalFrom(r.Context())
	if p == nil {
		return nil, store.Errorf(store.EUNAUTHORIZED, "a credential is required")
	}
	pol, err := authn.PolicyFor(s.store, p)
	if err != nil {
		return nil, err
	}
	info.policy = pol
	return pol, nil
}

// authorize is the one place where access to a unit is decided, always on
// the decoded, normalised unit ID. A unit the caller may not read does not
// exist for it (ENOTFOUND); one it may read but not change is EFORBIDDEN.
func (s *Server) authorize(r *http.Request, action, id string) error {
	pol, err := s.policy(r)
	if err != nil {
		return err
	}
	if pol.Decide(action, id).Allowed {
		return nil
	} else if action != store.ActionRead && pol.Decide(store.ActionRead, id).Allowed {
		return store.Errorf(store.EFORBIDDEN, "you may not %s unit %q", action, id)
	}
	return store.Errorf(store.ENOTFOUND, "unit %q not found", id)
}

// Authorize checks action on unit id for other surfaces (TFE).
// Returns ENOTFOUND, EFORBIDDEN, EUNAUTHORIZED.
func (s *Server) Authorize(r *http.Request, action, id string) error {
	return s.authorize(r, action, id)
}

// allowed checks an action that is not about a unit (rbac.manage,
// token.manage). Returns EFORBIDDEN.
func (s *Server) allowed(r *http.Request, action string) error {
	pol, err := s.policy(r)
	if err != nil {
		return err
	} else if d := pol.Decide(action, ""); !d.Allowed {
		return store.Errorf(store.EFORBIDDEN, "you may not %s (%s)", action, d.Reason)
	}
	return nil
}

// Readable returns a filter of the unit IDs the caller may read, for
// lists on every surface.
func (s *Server) Readable(r *http.Request) (func(id string) bool, error) {
	pol, err := s.policy(r)
	if err != nil {
		return nil, err
	}
	return func(id string) bool { return pol.Decide(store.ActionRead, id).Allowed }, nil
}
