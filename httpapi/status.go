package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeStatus() {
	s.handle(http.MethodGet, "/v1/units/:id/status", surfaceV1, s.unitStatus)
	s.handle(http.MethodGet, "/v1/status", surfaceV1, s.listStatus)
}

// StatusList is the answer of GET /v1/status.
type StatusList struct {
	Units []*store.Status `json:"units"`
	Count int             `json:"count"`
}

// unitStatus answers the status of one unit (SPEC §5). Its colour
// reflects every edge; incoming edges from units the caller may not read
// are left out and counted in summary.incoming_hidden.
func (s *Server) unitStatus(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	} else if err := s.authorize(r, store.ActionRead, id); err != nil {
		return err
	}
	st, err := s.store.UnitStatus(id)
	if err != nil {
		return err
	}
	readable, err := s.Readable(r)
	if err != nil {
		return err
	}
	st.Hide(readable)
	writeJSON(w, http.StatusOK, st)
	return nil
}

// listStatus answers the status of every unit whose ID starts with
// ?prefix= and that the caller may read, sorted by ID, computed in one
// pass.
func (s *Server) listStatus(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	readable, err := s.Readable(r)
	if err != nil {
		return err
	}
	all, err := s.store.Statuses(r.URL.Query().Get("prefix"))
	if err != nil {
		return err
	}
	list := StatusList{Units: []*store.Status{}}
	for _, st := range all {
		if readable(st.UnitID) {
			st.Hide(readable)
			list.Units = append(list.Units, st)
		}
	}
	list.Count = len(list.Units)
	writeJSON(w, http.StatusOK, list)
	return nil
}
