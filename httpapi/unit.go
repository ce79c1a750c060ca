package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeUnits() {
	s.handle(http.MethodPost, "/v1/units", surfaceV1, s.createUnit)
	s.handle(http.MethodGet, "/v1/units", surfaceV1, s.listUnits)
	s.handle(http.MethodGet, "/v1/units/:id", surfaceV1, s.getUnit)
	s.handle(http.MethodDelete, "/v1/units/:id", surfaceV1, s.deleteUnit)
	s.handle(http.MethodGet, "/v1/units/:id/download", surfaceV1, s.downloadUnit)
	s.handle(http.MethodPost, "/v1/units/:id/upload", surfaceV1, s.uploadUnit)
}

// UnitList is the answer of GET /v1/units.
type UnitList struct {
	Units []*store.Unit `json:"units"`
	Count int           `json:"count"`
}

// unitID decodes the {id} route parameter (a__b or a%2Fb form).
func unitID(p httprouter.Params) (string, error) {
	return store.DecodeID(p.ByName("id"))
}

func (s *Server) createUnit(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var body struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	raw := body.ID
	if raw == "" {
		raw = body.Name
	}
	id, err := store.ParseID(raw)
	if err != nil {
		return err
	} else if err := s.authorize(r, store.ActionWrite, id); err != nil {
		return store.Errorf(store.EFORBIDDEN, "you may not create unit %q", id)
	}
	u, err := s.db(r).CreateUnit(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Server) listUnits(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	readable, err := s.Readable(r)
	if err != nil {
		return err
	}
	units, err := s.store.ListUnits(r.URL.Query().Get("prefix"))
	if err != nil {
		return err
	}
	visible := units[:0]
	for _, u := range units {
		if readable(u.ID) {
			visible = append(visible, u)
		}
	}
	writeJSON(w, http.StatusOK, UnitList{Units: visible, Count: len(visible)})
	return nil
}

func (s *Server) getUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, store.ActionRead, id); err != nil {
		return err
	}
	u, err := s.store.GetUnit(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) deleteUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	} else if err := s.authorize(r, store.ActionDelete, id); err != nil {
		return err
	} else if force {
		if err := s.authorize(r, store.ActionForceUnlock, id); err != nil {
			return err
		}
	}
	if err := s.db(r).DeleteUnit(id, force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) downloadUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	var n int64
	if v := r.URL.Query().Get("version"); v != "" {
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			return store.Errorf(store.EINVALID, "version %q is not a positive integer", v)
		}
	}
	if err := s.authorize(r, store.ActionRead, id); err != nil {
		return err
	}
	data, ver, err := s.store.ReadState(id, n)
	if err != nil {
		return err
	} else if ver == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeState(w, r, data, ver)
	return nil
}

// writeState answers with raw state bytes and their digest as ETag.
func writeState(w http.ResponseWriter, r *http.Request, data []byte, ver *store.Version) {
	etag := `"` + ver.SHA256 + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-OpenTaco-Version", strconv.FormatInt(ver.Version, 10))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
	releaseLarge(len(data))
}

func (s *Server) uploadUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := unitID(p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, store.ActionWrite, id); err != nil {
		return err
	}
	data, err := readBody(r, s.maxStateSize)
	if err != nil {
		return err
	}
	defer releaseLarge(len(data))
	ver, err := s.db(r).WriteState(id, data, store.WriteOptions{
		LockID: r.URL.Query().Get("if_locked_by"), Who: who(r), Source: store.SourceAPI,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ver)
	return nil
}

// boolParam reads an optional boolean query parameter. Returns EINVALID.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, store.Errorf(store.EINVALID, "query parameter %s=%q is not a boolean", name, v)
	}
	return b, nil
}

// flexInt decodes a JSON number or a numeric string.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		b = []byte(s)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return store.Errorf(store.EINVALID, "%s is not an integer", b)
	}
	*n = flexInt(v)
	return nil
}
