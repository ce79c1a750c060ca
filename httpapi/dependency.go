package httpapi

import (
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeDependencies() {
	s.handle(http.MethodGet, "/v1/units/:id/dependencies", surfaceV1, s.listDependencies)
	s.handle(http.MethodPut, "/v1/units/:id/dependencies", surfaceV1, s.putDependency)
	s.handle(http.MethodDelete, "/v1/units/:id/dependencies/:edge_id", surfaceV1, s.deleteDependency)
}

// listDependencies answers {"unit_id", "incoming", "outgoing"}; edges
// whose other end the caller may not read are left out.
func (s *Server) listDependencies(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	} else if err := s.authorize(r, store.ActionRead, id); err != nil {
		return err
	}
	d, err := s.store.Dependencies(id)
	if err != nil {
		return err
	}
	readable, err := s.Readable(r)
	if err != nil {
		return err
	}
	d.Incoming = visibleEdges(d.Incoming, func(e store.EdgeInfo) bool { return readable(e.FromUnitID) })
	d.Outgoing = visibleEdges(d.Outgoing, func(e store.EdgeInfo) bool { return readable(e.ToUnitID) })
	writeJSON(w, http.StatusOK, d)
	return nil
}

func visibleEdges(edges []store.EdgeInfo, keep func(store.EdgeInfo) bool) []store.EdgeInfo {
	out := edges[:0]
	for _, e := range edges {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// putDependency declares an edge into the unit: 201 with the edge when it
// is new, 200 when it existed. Needs unit.write on the target and
// unit.read on the source; a cycle is 409.
func (s *Server) putDependency(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	to, err := unitID(p)
	if err != nil {
		return err
	}
	var req store.DependencyRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	} else if err := s.authorize(r, store.ActionWrite, to); err != nil {
		return err
	}
	if from, err := store.ParseID(req.FromUnitID); err != nil {
		return err
	} else if err := s.authorize(r, store.ActionRead, from); err != nil {
		return err
	}
	e, created, err := s.db(r).PutDependency(to, req)
	var serr *store.Error
	if errors.As(err, &serr) && len(serr.Cycle) > 0 {
		return s.hideCycle(r, serr)
	} else if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, e)
	return nil
}

// deleteDependency removes an edge of the unit (204). Needs unit.write.
func (s *Server) deleteDependency(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	to, err := unitID(p)
	if err != nil {
		return err
	} else if err := s.authorize(r, store.ActionWrite, to); err != nil {
		return err
	}
	if err := s.db(r).DeleteDependency(to, p.ByName("edge_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// hideCycle keeps a cycle refusal from naming units the caller may not
// read: then it only says that a cycle would close.
func (s *Server) hideCycle(r *http.Request, err *store.Error) error {
	readable, rerr := s.Readable(r)
	if rerr != nil {
		return rerr
	}
	for _, id := range err.Cycle {
		if !readable(id) {
			return store.Errorf(store.ECONFLICT, "the dependency would close a cycle through units you cannot see")
		}
	}
	return err
}
