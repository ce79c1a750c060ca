package httpapi

import (
	"io"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeBackup() {
	s.handle(http.MethodGet, "/v1/backup", surfaceV1, s.backup)
}

// backup streams a consistent snapshot of the whole database (admins). The
// file is a bbolt database: stop the server, put it in place as
// <data-dir>/opentaco.db, start again.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.allowed(r, store.ActionAll); err != nil {
		return err
	}
	return s.store.Backup(func(size int64) (io.Writer, error) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="opentaco.db"`)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return w, nil
	})
}
