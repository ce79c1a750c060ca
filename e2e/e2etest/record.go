package e2etest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opentaco/opentaco/authn"
)

// Request is one request as RequestLog saw it.
type Request struct {
	At     time.Time // when it arrived
	Method string
	Path   string
	Cred   string // bearer token or basic-auth password (authn.Credential); "" for none
	Status int
}

// RequestLog keeps every request of the handler it wraps with the status
// it got, so tests can say what the server answered without depending on
// how it names its routes. Safe for concurrent use.
type RequestLog struct {
	mu   sync.Mutex
	reqs []Request
}

// Wrap returns h recording into l.
func (l *RequestLog) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := Request{At: time.Now(), Method: r.Method, Path: r.URL.Path, Cred: authn.Credential(r)}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		req.Status = rec.status
		l.mu.Lock()
		l.reqs = append(l.reqs, req)
		l.mu.Unlock()
	})
}

// All returns the requests so far, in the order they were answered.
func (l *RequestLog) All() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.reqs...)
}

// Mark returns the current length of the log, for Since.
func (l *RequestLog) Mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// Since returns the requests logged after mark m whose path ends in
// suffix, of method (any when "").
func (l *RequestLog) Since(m int, method, suffix string) []Request {
	var out []Request
	for _, r := range l.All()[m:] {
		if (method == "" || r.Method == method) && strings.HasSuffix(r.Path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// With returns the requests that carried cred.
func (l *RequestLog) With(cred string) []Request {
	var out []Request
	for _, r := range l.All() {
		if r.Cred == cred {
			out = append(out, r)
		}
	}
	return out
}

// String lists the requests, one a line, with the first characters of
// their credential.
func (l *RequestLog) String() string {
	var b strings.Builder
	for _, r := range l.All() {
		c := r.Cred
		if len(c) > 10 {
			c = c[:10] + "…"
		}
		fmt.Fprintf(&b, "%s %s %s [%s] → %d\n", r.At.Format("15:04:05.000"), r.Method, r.Path, c, r.Status)
	}
	return b.String()
}

// statusRecorder keeps the status a handler answers with.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (rec *statusRecorder) WriteHeader(code int) {
	if !rec.wrote {
		rec.status, rec.wrote = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *statusRecorder) Write(b []byte) (int, error) {
	rec.wrote = true
	return rec.ResponseWriter.Write(b)
}

func (rec *statusRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
