package tfe

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// APIVersion is sent as TFP-API-Version; the cloud block needs ≥ 2.5.
const APIVersion = "2.5"

// Roots under which the API is served; discovery advertises the first.
var roots = []string{"/tfe/api/v2", "/api/v2"}

const jsonAPI = "application/vnd.api+json"

// API is the Terraform Cloud surface of one server.
type API struct {
	srv   *httpapi.Server
	store *store.DB
	now   func() time.Time
}

// Register mounts the Terraform Cloud API, discovery and the signed upload
// routes on srv.
func Register(srv *httpapi.Server) *API {
	a := &API{srv: srv, store: srv.Store(), now: time.Now}
	for _, root := range roots {
		srv.SetErrorRenderer(root+"/", renderError)
	}
	a.routeDiscovery()
	a.routeWorkspaces()
	a.routeTags()
	a.routeLocks()
	a.routeStateVersions()
	a.routeLogin()
	return a
}

// handle mounts h under every API root with the TFP-API-Version header.
func (a *API) handle(method, path string, h httpapi.Handler) {
	for _, root := range roots {
		a.mount(method, root+path, h)
	}
}

func (a *API) mount(method, pattern string, h httpapi.Handler) {
	a.srv.Mount(method, pattern, httpapi.SurfaceTFE, func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
		w.Header().Set("TFP-API-Version", APIVersion)
		w.Header().Set("TFP-AppName", "Terraform Enterprise")
		return h(w, r, p)
	}, renderError)
}

// renderError writes a JSON:API error document.
func renderError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	w.Header().Set("TFP-API-Version", APIVersion)
	writeDoc(w, status, map[string]any{"errors": []map[string]string{{
		"status": strconv.Itoa(status), "title": strings.ReplaceAll(code, "_", " "), "detail": message,
	}}})
}

// resource is one JSON:API resource object.
type resource struct {
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	Attributes    map[string]any `json:"attributes"`
	Relationships map[string]any `json:"relationships,omitempty"`
	Links         map[string]any `json:"links,omitempty"`
}

func writeDoc(w http.ResponseWriter, status int, doc any) {
	w.Header().Set("Content-Type", jsonAPI)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(doc)
}

func writeOne(w http.ResponseWriter, status int, res resource) {
	writeDoc(w, status, map[string]any{"data": res})
}

// page is the pagination of a list request: page[number], page[size].
type page struct{ number, size int }

func pageOf(r *http.Request) page {
	q := r.URL.Query()
	p := page{number: 1, size: 20}
	if n, err := strconv.Atoi(q.Get("page[number]")); err == nil && n > 0 {
		p.number = n
	}
	if n, err := strconv.Atoi(q.Get("page[size]")); err == nil && n > 0 {
		p.size = min(n, 100)
	}
	return p
}

// writeList writes the items of page p out of all, with meta.pagination.
func writeList(w http.ResponseWriter, p page, all []resource) {
	total := len(all)
	pages := max((total+p.size-1)/p.size, 1)
	start := min((p.number-1)*p.size, total)
	end := min(start+p.size, total)
	var next, prev any
	if p.number < pages {
		next = p.number + 1
	}
	if p.number > 1 {
		prev = p.number - 1
	}
	writeDoc(w, http.StatusOK, map[string]any{
		"data": all[start:end],
		"meta": map[string]any{"pagination": map[string]any{
			"current-page": p.number, "next-page": next, "prev-page": prev,
			"total-pages": pages, "total-count": total, "page-size": p.size,
		}},
	})
}

// timestamp formats t the way go-tfe's decoder needs: UTC, ending in Z.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// decodeDoc reads a JSON:API request body into v. Returns EINVALID.
func (a *API) decodeDoc(r *http.Request, v any) error {
	b, err := httpapi.ReadBody(r, a.srv.MaxStateSize())
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return store.Errorf(store.EINVALID, "request body is not a valid JSON:API document: %v", err)
	}
	return nil
}

// baseURL is the scheme and host the client used to reach the server, for
// absolute URLs in answers.
func baseURL(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

// apiRoot returns the root (of roots) that the request came in on.
func apiRoot(r *http.Request) string {
	for _, root := range roots {
		if strings.HasPrefix(r.URL.Path, root+"/") {
			return root
		}
	}
	return roots[0]
}
