package httpapi

import (
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeVersions() {
	s.handle(http.MethodGet, "/v1/units/:id/versions", surfaceV1, s.listVersions)
	s.handle(http.MethodPost, "/v1/units/:id/restore", surfaceV1, s.restoreUnit)
}

// VersionList is the answer of GET /v1/units/{id}/versions.
type VersionList struct {
	UnitID   string           `json:"unit_id"`
	Versions []*store.Version `json:"versions"`
	Count    int              `json:"count"`
}

// RestoreRequest is the body of POST /v1/units/{id}/restore.
type RestoreRequest struct {
	Version   int64  `json:"version,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
	LockID    string `json:"lock_id,omitempty"`
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, store.ActionRead, id); err != nil {
		return err
	}
	vs, err := s.store.ListVersions(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, VersionList{UnitID: id, Versions: vs, Count: len(vs)})
	return nil
}

func (s *Server) restoreUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	var body struct {
		Version   *flexInt `json:"version"`
		Timestamp string   `json:"timestamp"`
		LockID    string   `json:"lock_id"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	req := store.RestoreRequest{LockID: body.LockID, Who: who(r)}
	switch {
	case body.Version != nil && *body.Version > 0:
		req.Version = int64(*body.Version)
	case body.Version != nil:
		return store.Errorf(store.EINVALID, "version must be a positive integer")
	case body.Timestamp != "":
		if req.Timestamp, err = time.Parse(time.RFC3339Nano, body.Timestamp); err != nil {
			return store.Errorf(store.EINVALID, "timestamp %q is not RFC 3339", body.Timestamp)
		}
	default:
		return store.Errorf(store.EINVALID, "restore needs {\"version\": N} or {\"timestamp\": \"...\"}")
	}
	if err := s.authorize(r, store.ActionWrite, id); err != nil {
		return err
	}
	res, err := s.db(r).Restore(id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
