package tfe

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

func (a *API) routeLocks() {
	a.handle(http.MethodPost, "/workspaces/:wsid/actions/lock", a.lockWorkspace)
	a.handle(http.MethodPost, "/workspaces/:wsid/actions/unlock", a.unlockWorkspace)
	a.handle(http.MethodPost, "/workspaces/:wsid/actions/force-unlock", a.forceUnlockWorkspace)
}

// lockID is the unit lock ID of a principal's Terraform Cloud lock.
func lockID(r *http.Request) string { return "tfe:" + httpapi.Who(r) }

// lockWorkspace takes the unit lock for the caller. Any existing lock, the
// caller's own included, is a conflict (409), as in Terraform Cloud.
func (a *API) lockWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionLock)
	if err != nil {
		return err
	}
	var body struct {
		Data struct {
			Attributes struct {
				Reason string `json:"reason"`
			} `json:"attributes"`
		} `json:"data"`
		Reason string `json:"reason"` // the plain form used in the cases
	}
	if err := a.decodeDoc(r, &body); err != nil {
		return err
	}
	reason := body.Data.Attributes.Reason
	if reason == "" {
		reason = body.Reason
	}
	l := store.Lock{ID: lockID(r), Operation: "tfe", Info: reason, Who: httpapi.Who(r), Path: workspaceName(u.ID)}
	if _, err := a.srv.StoreFor(r).LockUnitExclusive(u.ID, l, httpapi.Who(r)); err != nil {
		return lockConflict(err, workspaceName(u.ID), "already locked")
	}
	return a.answerWorkspace(w, r, p, u.ID)
}

// unlockWorkspace releases the caller's lock. Someone else's lock is 409
// with a detail "is locked by User <who>" that go-tfe turns into a clear
// message; an unlocked workspace is 409 "already unlocked".
func (a *API) unlockWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionLock)
	if err != nil {
		return err
	} else if u.Lock == nil {
		return store.Errorf(store.ECONFLICT, "workspace %q is already unlocked", workspaceName(u.ID))
	}
	if _, err := a.srv.StoreFor(r).UnlockUnit(u.ID, lockID(r), false); err != nil {
		return lockConflict(err, workspaceName(u.ID), "locked by someone else")
	}
	if err := a.srv.StoreFor(r).DiscardPending(u.ID); err != nil {
		return err
	}
	return a.answerWorkspace(w, r, p, u.ID)
}

// forceUnlockWorkspace breaks any lock, for principals allowed to.
func (a *API) forceUnlockWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionForceUnlock)
	if err != nil {
		return err
	}
	released, err := a.srv.StoreFor(r).UnlockUnit(u.ID, "", true)
	if err != nil {
		return err
	} else if released == nil {
		return store.Errorf(store.ECONFLICT, "workspace %q is already unlocked", workspaceName(u.ID))
	}
	log := a.srv.Logger()
	log.Warn().Str("event", "force_unlock").Str("unit", u.ID).Str("lock_id", released.ID).
		Str("lock_who", released.Who).Str("principal", httpapi.Who(r)).Msg("lock broken by force-unlock")
	if err := a.srv.StoreFor(r).DiscardPending(u.ID); err != nil {
		return err
	}
	return a.answerWorkspace(w, r, p, u.ID)
}

// lockConflict turns a store lock error into a 409 whose detail names the
// holder the way go-tfe recognises ("is locked by User ...").
func lockConflict(err error, name, what string) error {
	l := store.ErrorLock(err)
	if l == nil {
		return err
	}
	who := l.Who
	if who == "" {
		who = "unknown"
	}
	e := store.Errorf(store.ELOCKED, "workspace %q is %s: it is locked by User %s (lock %s)", name, what, who, l.ID)
	e.Lock = l
	return e
}

func (a *API) answerWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params, id string) error {
	u, err := a.store.GetUnit(id)
	if err != nil {
		return err
	}
	a.writeWorkspace(w, r, http.StatusOK, u, p.ByName("org"), "")
	return nil
}
