package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/opentaco/opentaco/store"
)

// Surface selects the column of the status table.
type Surface int

type surface = Surface

const (
	surfaceV1          Surface = iota // management API
	surfaceBackend                    // http backend state reads/writes/unlock
	surfaceBackendLock                // http backend LOCK
	// SurfaceTFE is the Terraform Cloud API: validation failures are 422,
	// as go-tfe expects.
	SurfaceTFE
)

// statusTable is the one place where error codes become HTTP statuses.
var statusTable = map[string]int{
	store.EINVALID:      http.StatusBadRequest,
	store.EUNAUTHORIZED: http.StatusUnauthorized,
	store.EFORBIDDEN:    http.StatusForbidden,
	store.ENOTFOUND:     http.StatusNotFound,
	store.ECONFLICT:     http.StatusConflict,
	store.ELOCKED:       http.StatusConflict,
	store.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	store.EINTERNAL:     http.StatusInternalServerError,
}

// Status returns the HTTP status of an error code on a surface: the http
// backend answers a refused LOCK with 423, as Terraform expects.
func Status(code string, s surface) int {
	if code == store.ELOCKED && s == surfaceBackendLock {
		return http.StatusLocked
	} else if code == store.EINVALID && s == SurfaceTFE {
		return http.StatusUnprocessableEntity
	}
	if st, ok := statusTable[code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON shape of every /v1 error.
type ErrorBody struct {
	Error     string      `json:"error"`
	Code      string      `json:"code"`
	Lock      *store.Lock `json:"lock,omitempty"`
	RequestID string      `json:"request_id,omitempty"`
}

// writeError is the one function that writes an error response. Internal
// errors are logged once with the request ID and reach the client only as
// a generic message. On the http backend a lock conflict answers with the
// holder's lock info (Terraform's key spelling) as the whole body.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error, sf surface) {
	code, msg := s.logError(r, err)
	status := Status(code, sf)
	challenge(w, status)
	if l := store.ErrorLock(err); l != nil && sf != surfaceV1 {
		writeJSON(w, status, l.Terraform())
		return
	}
	body := ErrorBody{Error: msg, Code: code, Lock: store.ErrorLock(err)}
	if code == store.EINTERNAL {
		body.RequestID = requestInfoFrom(r.Context()).id
	}
	writeJSON(w, status, body)
}

// logError returns the code and client-safe message of err, logging
// internal errors once with the request ID.
func (s *Server) logError(r *http.Request, err error) (code, message string) {
	code = store.ErrorCode(err)
	info := requestInfoFrom(r.Context())
	if code != store.EINTERNAL {
		return code, store.ErrorMessage(err)
	}
	s.log.Error().Err(err).Str("request_id", info.id).Str("route", info.route).Msg("internal error")
	return code, "internal error; see the server log for request " + info.id
}

// challenge sets WWW-Authenticate on a 401, which RFC 9110 requires.
func challenge(w http.ResponseWriter, status int) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="opentaco"`)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
