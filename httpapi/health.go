package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeHealth() {
	s.handle(http.MethodGet, "/healthz", surfaceV1, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	s.handle(http.MethodGet, "/readyz", surfaceV1, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		if err := s.store.Ping(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "database is not ready", Code: store.EINTERNAL})
			return nil
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	})
}
