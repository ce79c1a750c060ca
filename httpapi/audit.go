package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeAudit() {
	s.handle(http.MethodGet, "/v1/audit", surfaceV1, s.listAudit)
}

// AuditList is the answer of GET /v1/audit.
type AuditList struct {
	Records []*store.AuditRecord `json:"records"`
	Count   int                  `json:"count"`
}

// listAudit returns audit records, newest first, for admins.
// Query: unit (any spelling of the ID), principal, since (RFC 3339), limit.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.allowed(r, store.ActionAll); err != nil {
		return err
	}
	q := r.URL.Query()
	aq := store.AuditQuery{Principal: q.Get("principal")}
	if u := q.Get("unit"); u != "" {
		id, err := store.DecodeID(u) // a/b, a__b and a%2Fb all name a/b
		if err != nil {
			return err
		}
		aq.Unit = id
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return store.Errorf(store.EINVALID, "since %q is not RFC 3339", v)
		}
		aq.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return store.Errorf(store.EINVALID, "limit %q is not a positive integer", v)
		}
		aq.Limit = n
	}
	recs, err := s.store.Audit(aq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, AuditList{Records: recs, Count: len(recs)})
	return nil
}
