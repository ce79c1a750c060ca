package e2etest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// ---------------------------------------------------------------------------
// Raw HTTP

// Response is a raw HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r Response) String() string {
	return fmt.Sprintf("%d %s", r.Status, Tail(string(r.Body), 600))
}

// Do sends one request with hc to the absolute URL u. token "" sends no
// Authorization header, else it is the bearer token. A nil body sends no
// body and no Content-Length (what terraform force-unlock does). hdr holds
// header name/value pairs.
func Do(t testing.TB, hc *http.Client, method, u, token string, body []byte, hdr ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Do is Do with s.HTTP; p is a server path or an absolute URL.
func (s *Server) Do(t testing.TB, method, p, token string, body []byte, hdr ...string) Response {
	t.Helper()
	if !strings.HasPrefix(p, "https://") && !strings.HasPrefix(p, "http://") {
		p = s.URL + p
	}
	return Do(t, s.HTTP, method, p, token, body, hdr...)
}

// Expect fails the test unless r has status want.
func Expect(t testing.TB, what string, r Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want, Tail(string(r.Body), 600))
	}
}

// MustJSON decodes b into v, or fails the test.
func MustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, Tail(string(b), 300), err)
	}
}

// ---------------------------------------------------------------------------
// The management API, with s.Token

// BackendURL is the http backend address of id, percent-encoded
// (team/app → team%2Fapp).
func (s *Server) BackendURL(id string) string {
	return s.URL + "/v1/backend/" + url.PathEscape(id)
}

// UnitURL is /v1/units/<id percent-encoded><suffix>.
func (s *Server) UnitURL(id, suffix string) string {
	return s.URL + "/v1/units/" + url.PathEscape(id) + suffix
}

// getJSON decodes the answer to GET u (with s.Token) into a new T, or
// returns nil on 404; any other status fails the test.
func getJSON[T any](t testing.TB, s *Server, what, u string) *T {
	t.Helper()
	r := s.Do(t, http.MethodGet, u, s.Token, nil)
	if r.Status == http.StatusNotFound {
		return nil
	}
	Expect(t, what, r, http.StatusOK)
	var v T
	MustJSON(t, r.Body, &v)
	return &v
}

// Unit fetches GET /v1/units/<id>; nil when it is 404.
func (s *Server) Unit(t testing.TB, id string) *store.Unit {
	t.Helper()
	return getJSON[store.Unit](t, s, "GET unit "+id, s.UnitURL(id, ""))
}

// Versions lists the versions of id, newest first; none when the unit
// does not exist.
func (s *Server) Versions(t testing.TB, id string) []*store.Version {
	t.Helper()
	vl := getJSON[httpapi.VersionList](t, s, "GET versions of "+id, s.UnitURL(id, "/versions"))
	if vl == nil {
		return nil
	}
	if vl.Count != len(vl.Versions) {
		t.Errorf("versions of %s: count %d but %d entries", id, vl.Count, len(vl.Versions))
	}
	return vl.Versions
}

// Download returns the current state bytes of id.
func (s *Server) Download(t testing.TB, id string) []byte {
	t.Helper()
	r := s.Do(t, http.MethodGet, s.UnitURL(id, "/download"), s.Token, nil)
	Expect(t, "download "+id, r, http.StatusOK)
	return r.Body
}

// LockOf returns the lock of id from GET /v1/units/<id>/lock, nil on 404.
func (s *Server) LockOf(t testing.TB, id string) *store.Lock {
	t.Helper()
	return getJSON[store.Lock](t, s, "GET lock of "+id, s.UnitURL(id, "/lock"))
}

// ---------------------------------------------------------------------------
// What the tools are given

// HTTPBackend is HB: the backend "http" block at addr, with LOCK and
// UNLOCK on addr itself, or with postDelete lock_method POST and
// unlock_method DELETE on <addr>/lock (the GitLab style).
func HTTPBackend(addr string, postDelete bool) string {
	if !postDelete {
		return fmt.Sprintf(`terraform {
  backend "http" {
    address        = %q
    lock_address   = %q
    unlock_address = %q
  }
}
`, addr, addr, addr)
	}
	return fmt.Sprintf(`terraform {
  backend "http" {
    address        = %q
    lock_address   = %q
    unlock_address = %q
    lock_method    = "POST"
    unlock_method  = "DELETE"
  }
}
`, addr, addr+"/lock", addr+"/lock")
}

// CloudBlock is the cloud block for workspace ws of org on host (the name
// strategy).
func CloudBlock(host, org, ws string) string {
	return cloudBlock(host, org, fmt.Sprintf("name = %q", ws))
}

// CloudBlockTags is the cloud block selecting the workspaces of org on
// host that carry tags (the tags strategy).
func CloudBlockTags(host, org string, tags ...string) string {
	q, _ := json.Marshal(tags)
	return cloudBlock(host, org, "tags = "+string(q))
}

func cloudBlock(host, org, workspaces string) string {
	return fmt.Sprintf(`terraform {
  cloud {
    hostname     = %q
    organization = %q
    workspaces {
      %s
    }
  }
}
`, host, org, workspaces)
}

// LockInfo is LB(id, who): a lock-info body as Terraform sends it.
func LockInfo(id, who string) string {
	return fmt.Sprintf(`{"ID":%q,"Operation":"OperationTypeApply","Info":"","Who":%q,"Version":"1.11.4","Created":"2025-01-01T00:00:00Z","Path":""}`, id, who)
}

// StateDoc is the part of a state file the tests look at.
type StateDoc struct {
	Version int64  `json:"version"`
	Serial  int64  `json:"serial"`
	Lineage string `json:"lineage"`
	Outputs map[string]struct {
		Value any `json:"value"`
	} `json:"outputs"`
}

// ParseState decodes a state file, or fails the test.
func ParseState(t testing.TB, b []byte) StateDoc {
	t.Helper()
	var s StateDoc
	MustJSON(t, b, &s)
	return s
}
