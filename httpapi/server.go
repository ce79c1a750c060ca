package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

// DefaultMaxStateSize is the default cap on a state body (decoded).
const DefaultMaxStateSize = 512 << 20

// maxSmallBody caps JSON bodies that are not states (locks, restore, ...).
const maxSmallBody = 1 << 20

// Config configures a Server.
type Config struct {
	Store        *store.DB
	Logger       zerolog.Logger
	MaxStateSize int64 // 0 = DefaultMaxStateSize
	// AuthDisabled makes every caller an anonymous admin.
	AuthDisabled bool
	// Auth checks credentials; required unless AuthDisabled.
	Auth *authn.Authenticator
}

// Server holds the handlers of /v1, the http backend and the health routes.
type Server struct {
	store        *store.DB
	log          zerolog.Logger
	maxStateSize int64
	authDisabled bool
	auth         *authn.Authenticator
	router       *httprouter.Router
	seq          atomic.Uint64
	renderers    map[string]ErrorRenderer // path prefix → error shape of that surface
	metrics      *metrics
}

// NewServer builds the router with every route.
func NewServer(cfg Config) *Server {
	s := &Server{store: cfg.Store, log: cfg.Logger, maxStateSize: cfg.MaxStateSize, authDisabled: cfg.AuthDisabled, auth: cfg.Auth, renderers: map[string]ErrorRenderer{}, metrics: newMetrics()}
	if s.maxStateSize <= 0 {
		s.maxStateSize = DefaultMaxStateSize
	}
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, store.Errorf(store.ENOTFOUND, "no route for %s %s", req.Method, req.URL.Path), surfaceV1)
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: "method " + req.Method + " is not allowed here", Code: store.EINVALID})
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.writeError(w, req, fmt.Errorf("panic: %v", v), surfaceV1)
	}
	s.router = r
	s.routeHealth()
	s.routeUnits()
	s.routeLocks()
	s.routeVersions()
	s.routeDependencies()
	s.routeStatus()
	s.routeBackend()
	s.routeAuth()
	s.routeTokens()
	s.routeRBAC()
	s.routeAudit()
	s.routeMetrics()
	s.routeBackup()
	return s
}

// Router exposes the router so other surfaces (TFE) can mount on it.
func (s *Server) Router() *httprouter.Router { return s.router }

// handler is the shape of every handler: it returns an error instead of
// writing one.
type handler func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error

// handle registers h on the router, with the error adapter and the route
// pattern recorded for the request log.
func (s *Server) handle(method, pattern string, sf surface, h handler) {
	s.router.Handle(method, pattern, func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		requestInfoFrom(r.Context()).route = pattern
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err, sf)
		}
	})
}

// ServeHTTP adds the request ID, routes on the escaped path (so an
// encoded slash never splits a segment) and logs one line per request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &requestInfo{id: s.requestID(r)}
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	rec.Header().Set("X-Request-ID", info.id)
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
	r.URL.RawPath = r.URL.EscapedPath()
	r.URL.Path = r.URL.RawPath
	r, ok := s.authenticate(rec, r) // r now carries the principal, for the log line too
	if ok {
		s.router.ServeHTTP(rec, r)
	}
	route := info.route
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(r.Method, route, rec.status, time.Since(start))
	s.log.Info().
		Str("method", r.Method).
		Str("route", route).
		Int("status", rec.status).
		Int64("bytes", rec.bytes).
		Dur("duration", time.Since(start)).
		Str("request_id", info.id).
		Str("principal", who(r)).
		Msg("request")
}

type requestInfoKey struct{}

// requestInfo is filled in while a request passes through the server.
type requestInfo struct {
	id     string
	route  string
	policy *authn.Policy // the caller's RBAC policy, once compiled
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// requestID keeps a sane incoming X-Request-ID or makes a new one.
func (s *Server) requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-ID"); id != "" && len(id) <= 128 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == "" {
		return id
	}
	return fmt.Sprintf("%x-%d", time.Now().UnixNano(), s.seq.Add(1))
}

// who names the principal of a request.
func who(r *http.Request) string {
	if p := authn.PrincipalFrom(r.Context()); p != nil {
		return p.Subject
	}
	return "anonymous"
}

// Who names the principal of a request (for other surfaces).
func Who(r *http.Request) string { return who(r) }

// Auth returns the authenticator, or nil with --auth-disable.
func (s *Server) Auth() *authn.Authenticator { return s.auth }

// SetErrorRenderer makes errors on paths under prefix (before routing,
// e.g. a refused credential) render in that surface's body shape.
func (s *Server) SetErrorRenderer(prefix string, render ErrorRenderer) { s.renderers[prefix] = render }

// db returns the store handle that audits changes as made by the
// request's principal, with its request ID.
func (s *Server) db(r *http.Request) *store.DB {
	return s.store.As(store.Actor{Principal: who(r), RequestID: requestInfoFrom(r.Context()).id})
}

// RequestID returns the ID of the request (X-Request-ID).
func RequestID(r *http.Request) string { return requestInfoFrom(r.Context()).id }

// StoreFor is db for other surfaces: changes through it are audited as
// the request's.
func (s *Server) StoreFor(r *http.Request) *store.DB { return s.db(r) }

// Store returns the store the server serves.
func (s *Server) Store() *store.DB { return s.store }

// Logger returns the server's logger.
func (s *Server) Logger() zerolog.Logger { return s.log }

// MaxStateSize returns the largest accepted state body.
func (s *Server) MaxStateSize() int64 { return s.maxStateSize }

// Handler is the shape of handlers other surfaces mount with Mount.
type Handler = handler

// ErrorRenderer writes an error in a surface's own body shape, with the
// status already chosen from the one table.
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, status int, code, message string)

// Mount registers a handler of another surface (TFE). Errors it returns
// get their status from the status table (surface sf), internal errors are
// logged once and reach render as a generic message.
func (s *Server) Mount(method, pattern string, sf Surface, h Handler, render ErrorRenderer) {
	s.router.Handle(method, pattern, func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		requestInfoFrom(r.Context()).route = pattern
		if err := h(w, r, p); err != nil {
			code, msg := s.logError(r, err)
			challenge(w, Status(code, sf))
			render(w, r, Status(code, sf), code, msg)
		}
	})
}

// recorder captures the status and size of a response for the log line.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wrote {
		rec.status, rec.wrote = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.wrote = true
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
