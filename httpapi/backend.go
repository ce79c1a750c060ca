package httpapi

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

// Terraform's http backend verbs.
const (
	methodLock   = "LOCK"
	methodUnlock = "UNLOCK"
)

// routeBackend mounts Terraform's http backend. The address is
// /v1/backend/<id with real slashes>; the lock address may be the same URL
// or <address>/lock (a unit ID never ends in a "lock" segment).
func (s *Server) routeBackend() {
	const pattern = "/v1/backend/*path"
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, methodLock, methodUnlock, http.MethodDelete} {
		s.router.Handle(m, pattern, s.backendHandler(pattern))
	}
}

func (s *Server) backendHandler(pattern string) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		requestInfoFrom(r.Context()).route = pattern
		sf, err := s.serveBackend(w, r, p.ByName("path"))
		if err != nil {
			s.writeError(w, r, err, sf)
		}
	}
}

// serveBackend dispatches on the method and on whether the path is the
// lock address, and returns the surface the error must be rendered for.
func (s *Server) serveBackend(w http.ResponseWriter, r *http.Request, raw string) (surface, error) {
	raw, isLock := strings.CutSuffix(raw, "/lock")
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return surfaceBackend, store.Errorf(store.EINVALID, "unit ID %q is not valid percent-encoding", raw)
	}
	id, err := store.ParseID(dec)
	if err != nil {
		return surfaceBackend, err
	}
	if err := s.authorize(r, backendAction(r.Method, isLock), id); err != nil {
		return surfaceBackend, err
	}
	switch {
	case r.Method == methodLock, r.Method == http.MethodPost && isLock:
		return surfaceBackendLock, s.backendLock(w, r, id)
	case r.Method == methodUnlock, r.Method == http.MethodDelete && isLock:
		return surfaceBackend, s.backendUnlock(w, r, id)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && isLock:
		return surfaceBackend, s.backendGetLock(w, id)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return surfaceBackend, s.backendGet(w, r, id)
	case (r.Method == http.MethodPost || r.Method == http.MethodPut) && !isLock:
		return surfaceBackend, s.backendPut(w, r, id)
	}
	return surfaceBackend, store.Errorf(store.EINVALID, "method %s is not supported on %s", r.Method, r.URL.Path)
}

func (s *Server) backendGet(w http.ResponseWriter, r *http.Request, id string) error {
	data, ver, err := s.store.ReadState(id, 0)
	if store.ErrorCode(err) == store.ENOTFOUND || err == nil && ver == nil {
		w.WriteHeader(http.StatusNotFound) // Terraform: no state yet
		return nil
	} else if err != nil {
		return err
	}
	writeState(w, r, data, ver)
	return nil
}

func (s *Server) backendPut(w http.ResponseWriter, r *http.Request, id string) error {
	data, err := readBody(r, s.maxStateSize)
	if err != nil {
		return err
	}
	defer releaseLarge(len(data))
	q := r.URL.Query()
	lockID := r.Header.Get("X-Terraform-Lock-ID")
	for _, k := range []string{"ID", "id"} {
		if lockID == "" {
			lockID = q.Get(k)
		}
	}
	_, err = s.db(r).WriteState(id, data, store.WriteOptions{LockID: lockID, Who: who(r), Source: store.SourceBackend, Create: true})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) backendLock(w http.ResponseWriter, r *http.Request, id string) error {
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	l, err := store.ParseLock(b)
	if err != nil {
		return err
	}
	held, err := s.db(r).LockUnit(id, *l, who(r), true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, held.Terraform())
	return nil
}

// backendUnlock releases a lock by the ID in the body. An empty body is
// what `terraform force-unlock` sends: a force-unlock, for principals
// allowed to break locks.
func (s *Server) backendUnlock(w http.ResponseWriter, r *http.Request, id string) error {
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	force := len(bytes.TrimSpace(b)) == 0
	l, err := store.ParseLock(b)
	if err != nil {
		return err
	}
	if !force && l.ID == "" {
		return store.Errorf(store.EINVALID, "unlock body has no lock ID")
	} else if force {
		if err := s.authorize(r, store.ActionForceUnlock, id); err != nil {
			return err
		}
	}
	released, err := s.db(r).UnlockUnit(id, l.ID, force)
	if err != nil && store.ErrorCode(err) != store.ENOTFOUND { // unknown unit: nothing to unlock
		return err
	}
	if force && released != nil {
		s.auditForceUnlock(r, id, released)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) backendGetLock(w http.ResponseWriter, id string) error {
	l, err := s.store.GetLock(id)
	if err != nil {
		return err
	} else if l == nil {
		return store.Errorf(store.ENOTFOUND, "unit %q is not locked", id)
	}
	writeJSON(w, http.StatusOK, l.Terraform())
	return nil
}

// backendAction is the RBAC action of an http backend request: GET reads,
// POST/PUT to the address writes, LOCK/UNLOCK (and their POST/DELETE
// forms on <address>/lock) lock. An empty-body UNLOCK is also checked for
// unit.force_unlock in backendUnlock.
func backendAction(method string, isLock bool) string {
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return store.ActionRead
	case method == methodLock || method == methodUnlock || isLock:
		return store.ActionLock
	}
	return store.ActionWrite
}
