package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// badInputServer starts the real server wiring on 127.0.0.1:0 with a small
// state-size cap and returns its base URL and store.
func badInputServer(t testing.TB, maxState int64) (string, *store.DB) {
	t.Helper()
	db, err := store.Open(t.TempDir()+"/opentaco.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.Nop(), MaxStateSize: maxState, AuthDisabled: true})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); db.Close() })
	return "http://" + ln.Addr().String(), db
}

type rawResp struct {
	status int
	header http.Header
	body   []byte
}

func doRaw(t *testing.T, method, url string, body io.Reader, hdr ...string) rawResp {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResp{resp.StatusCode, resp.Header, b}
}

// wantError checks status, the JSON error body and the request ID header.
func wantError(t *testing.T, r rawResp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	var e httpapi.ErrorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %q", r.body)
	} else if e.Code != code || e.Error == "" {
		t.Fatalf("error body = %+v, want code %q and a message", e, code)
	}
	if r.header.Get("X-Request-ID") == "" {
		t.Fatal("no X-Request-ID on the error response")
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q", ct)
	}
}

// versionsOf returns the version count of unit id, or -1 if it is unknown.
func versionsOf(t *testing.T, db *store.DB, id string) int {
	u, err := db.GetUnit(id)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return -1
	} else if err != nil {
		t.Fatal(err)
	}
	return u.VersionCount
}

func TestServer_BadInput(t *testing.T) {
	base, db := badInputServer(t, 1<<20)
	if _, err := db.CreateUnit("a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteState("a/b", []byte(`{"serial":1,"lineage":"l"}`), store.WriteOptions{Source: "api"}); err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if n := versionsOf(t, db, "a/b"); n != 1 {
			t.Fatalf("a/b has %d versions, want 1", n)
		}
		data, _, _ := db.ReadState("a/b", 0)
		if string(data) != `{"serial":1,"lineage":"l"}` {
			t.Fatalf("state changed: %s", data)
		}
		units, _ := db.ListUnits("")
		if len(units) != 1 {
			t.Fatalf("%d units exist, want 1", len(units))
		}
	}

	t.Run("MalformedJSON", func(t *testing.T) {
		wantError(t, doRaw(t, "POST", base+"/v1/units", strings.NewReader(`{"id":`)), 400, "invalid")
		wantError(t, doRaw(t, "POST", base+"/v1/units", strings.NewReader(``)), 400, "invalid")
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/restore", strings.NewReader(`{"version":`)), 400, "invalid")
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/lock", strings.NewReader(`[1,2`)), 400, "invalid")
		wantError(t, doRaw(t, "LOCK", base+"/v1/backend/a/b", strings.NewReader(`{"ID":`)), 400, "invalid")
		unchanged(t)
	})
	t.Run("StateNotObject", func(t *testing.T) {
		for _, body := range []string{`[1,2]`, `"s"`, `null`, `42`, `{"a":`, ``, `{} {}`} {
			wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/upload", strings.NewReader(body)), 400, "invalid")
			wantError(t, doRaw(t, "POST", base+"/v1/backend/a/b", strings.NewReader(body)), 400, "invalid")
		}
		unchanged(t)
	})
	t.Run("Oversize", func(t *testing.T) {
		big := `{"x":"` + strings.Repeat("a", 1<<20) + `"}`
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/upload", strings.NewReader(big)), 413, "too_large")
		wantError(t, doRaw(t, "PUT", base+"/v1/backend/a/b", strings.NewReader(big)), 413, "too_large")
		wantError(t, doRaw(t, "POST", base+"/v1/backend/new/unit", strings.NewReader(big)), 413, "too_large")
		// Small on the wire, too large once decoded.
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write([]byte(big))
		zw.Close()
		wantError(t, doRaw(t, "POST", base+"/v1/backend/a/b", &zb, "Content-Encoding", "gzip"), 413, "too_large")
		unchanged(t)
	})
	t.Run("BadIDs", func(t *testing.T) {
		for _, id := range []string{"..", "", "a__b", strings.Repeat("x", 300), "ünï", "a/_b", "a/lock"} {
			body, _ := json.Marshal(map[string]string{"id": id})
			wantError(t, doRaw(t, "POST", base+"/v1/units", bytes.NewReader(body)), 400, "invalid")
		}
		for _, seg := range []string{"..", "a___b", strings.Repeat("x", 300), "%C3%BC", "a%2F..%2Fb"} {
			wantError(t, doRaw(t, "GET", base+"/v1/units/"+seg, nil), 400, "invalid")
			wantError(t, doRaw(t, "POST", base+"/v1/units/"+seg+"/upload", strings.NewReader(`{}`)), 400, "invalid")
		}
		for _, path := range []string{"a/../b", "%C3%BC", "a/_b", strings.Repeat("x", 300)} {
			wantError(t, doRaw(t, "POST", base+"/v1/backend/"+path, strings.NewReader(`{}`)), 400, "invalid")
			wantError(t, doRaw(t, "LOCK", base+"/v1/backend/"+path, strings.NewReader(`{"ID":"x"}`)), 400, "invalid")
		}
		unchanged(t)
	})
	t.Run("RestoreUnknownVersion", func(t *testing.T) {
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/restore", strings.NewReader(`{"version":99}`)), 404, "not_found")
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/restore", strings.NewReader(`{"version":"7"}`)), 404, "not_found")
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/restore", strings.NewReader(`{"timestamp":"2001-01-01T00:00:00Z"}`)), 404, "not_found")
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/restore", strings.NewReader(`{"version":-1}`)), 400, "invalid")
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/restore", strings.NewReader(`{"version":"x"}`)), 400, "invalid")
		wantError(t, doRaw(t, "POST", base+"/v1/units/a__b/restore", strings.NewReader(`{}`)), 400, "invalid")
		wantError(t, doRaw(t, "GET", base+"/v1/units/a__b/download?version=99", nil), 404, "not_found")
		wantError(t, doRaw(t, "GET", base+"/v1/units/a__b/download?version=x", nil), 400, "invalid")
		unchanged(t)
	})
	t.Run("UnlockUnlocked", func(t *testing.T) {
		r := doRaw(t, "DELETE", base+"/v1/units/a__b/unlock", strings.NewReader(`{"id":"nope"}`))
		if r.status != 200 {
			t.Fatalf("unlock of an unlocked unit: %d %s", r.status, r.body)
		}
		var res httpapi.UnlockResult
		if err := json.Unmarshal(r.body, &res); err != nil || res.Unlocked {
			t.Fatalf("unlock answer %s (%v), want unlocked=false", r.body, err)
		}
		unchanged(t)
	})
	t.Run("UnknownUnit", func(t *testing.T) {
		wantError(t, doRaw(t, "GET", base+"/v1/units/no__such", nil), 404, "not_found")
		wantError(t, doRaw(t, "POST", base+"/v1/units/no__such/upload", strings.NewReader(`{}`)), 404, "not_found")
		wantError(t, doRaw(t, "POST", base+"/v1/units/no__such/lock", strings.NewReader(`{}`)), 404, "not_found")
		wantError(t, doRaw(t, "GET", base+"/v1/nothing/here", nil), 404, "not_found")
		unchanged(t)
	})
	t.Run("Conflict", func(t *testing.T) {
		wantError(t, doRaw(t, "POST", base+"/v1/units", strings.NewReader(`{"id":"a/b"}`)), 409, "conflict")
		wantError(t, doRaw(t, "POST", base+"/v1/units", strings.NewReader(`{"name":"//a//b/"}`)), 409, "conflict")
		unchanged(t)
	})
	t.Run("RequestID", func(t *testing.T) {
		r := doRaw(t, "GET", base+"/healthz", nil, "X-Request-ID", "abc-123")
		if r.header.Get("X-Request-ID") != "abc-123" {
			t.Fatalf("sane request ID not kept: %q", r.header.Get("X-Request-ID"))
		}
		r = doRaw(t, "GET", base+"/healthz", nil, "X-Request-ID", "bad id\twith junk")
		if got := r.header.Get("X-Request-ID"); got == "" || strings.Contains(got, " ") {
			t.Fatalf("insane request ID kept or missing: %q", got)
		}
	})
}
