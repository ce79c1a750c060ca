package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeLocks() {
	s.handle(http.MethodPost, "/v1/units/:id/lock", surfaceV1, s.lockUnit)
	s.handle(http.MethodGet, "/v1/units/:id/lock", surfaceV1, s.getLock)
	s.handle(http.MethodDelete, "/v1/units/:id/unlock", surfaceV1, s.unlockUnit)
}

// UnlockResult is the answer of a successful unlock.
type UnlockResult struct {
	UnitID   string      `json:"unit_id"`
	Unlocked bool        `json:"unlocked"`       // false when the unit was not locked
	Lock     *store.Lock `json:"lock,omitempty"` // the lock that was released
}

func (s *Server) lockUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	l, err := store.ParseLock(b)
	if err != nil {
		return err
	} else if err := s.authorize(r, store.ActionLock, id); err != nil {
		return err
	}
	held, err := s.db(r).LockUnit(id, *l, who(r), false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, held)
	return nil
}

func (s *Server) getLock(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, store.ActionRead, id); err != nil {
		return err
	}
	l, err := s.store.GetLock(id)
	if err != nil {
		return err
	} else if l == nil {
		return store.Errorf(store.ENOTFOUND, "unit %q is not locked", id)
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) unlockUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	l, err := store.ParseLock(b)
	if err != nil {
		return err
	}
	if l.ID == "" {
		l.ID = r.URL.Query().Get("id")
	}
	force, err := boolParam(r, "force")
	action := store.ActionLock
	if force {
		action = store.ActionForceUnlock
	}
	if err != nil {
		return err
	} else if err := s.authorize(r, action, id); err != nil {
		return err
	} else if !force && l.ID == "" {
		return store.Errorf(store.EINVALID, "unlock needs the lock ID (body {\"id\": ...} or ?id=), or ?force=true")
	}
	released, err := s.db(r).UnlockUnit(id, l.ID, force)
	if err != nil {
		return err
	} else if force && released != nil {
		s.auditForceUnlock(r, id, released)
	}
	writeJSON(w, http.StatusOK, UnlockResult{UnitID: id, Unlocked: released != nil, Lock: released})
	return nil
}

// auditForceUnlock records a broken lock with the caller's identity.
func (s *Server) auditForceUnlock(r *http.Request, id string, l *store.Lock) {
	s.log.Warn().Str("event", "force_unlock").Str("unit", id).Str("lock_id", l.ID).
		Str("lock_who", l.Who).Str("principal", who(r)).
		Str("request_id", requestInfoFrom(r.Context()).id).Msg("lock broken by force-unlock")
}
