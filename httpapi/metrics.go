package httpapi

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
)

// metrics counts requests for /metrics (Prometheus text format). Labels
// are the route pattern, never the path, so unit IDs do not leak and the
// series stay few.
type metrics struct {
	mu       sync.Mutex
	requests map[metricKey]uint64
	seconds  map[string]float64 // route → total duration
	counts   map[string]uint64  // route → requests
}

type metricKey struct {
	method, route string
	status        int
}

func newMetrics() *metrics {
	return &metrics{requests: map[metricKey]uint64{}, seconds: map[string]float64{}, counts: map[string]uint64{}}
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[metricKey{method, route, status}]++
	m.seconds[route] += d.Seconds()
	m.counts[route]++
}

func (s *Server) routeMetrics() {
	s.handle(http.MethodGet, "/metrics", surfaceV1, s.serveMetrics)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	units, err := s.store.CountUnits()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# HELP opentaco_units Units (state files) stored.")
	fmt.Fprintln(w, "# TYPE opentaco_units gauge")
	fmt.Fprintf(w, "opentaco_units %d\n", units)
	m := s.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]metricKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.route != b.route {
			return a.route < b.route
		} else if a.method != b.method {
			return a.method < b.method
		}
		return a.status < b.status
	})
	fmt.Fprintln(w, "# HELP opentaco_http_requests_total HTTP requests by method, route pattern and status.")
	fmt.Fprintln(w, "# TYPE opentaco_http_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "opentaco_http_requests_total{method=%q,route=%q,status=\"%s\"} %d\n", k.method, k.route, strconv.Itoa(k.status), m.requests[k])
	}
	routes := make([]string, 0, len(m.counts))
	for r := range m.counts {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	fmt.Fprintln(w, "# HELP opentaco_http_request_duration_seconds Time spent answering requests, by route pattern.")
	fmt.Fprintln(w, "# TYPE opentaco_http_request_duration_seconds summary")
	for _, r := range routes {
		fmt.Fprintf(w, "opentaco_http_request_duration_seconds_sum{route=%q} %g\n", r, m.seconds[r])
		fmt.Fprintf(w, "opentaco_http_request_duration_seconds_count{route=%q} %d\n", r, m.counts[r])
	}
	return nil
}
