package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// newServer starts the real server wiring on 127.0.0.1:0 with a fresh
// database and returns a client for it.
func newServer(t *testing.T, cfg httpapi.Config) *httpapi.Client {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Logger, cfg.AuthDisabled = db, zerolog.Nop(), true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(httpapi.NewServer(cfg))
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return httpapi.NewClient(ts.URL, "")
}

func state(serial int) []byte {
	return fmt.Appendf(nil, `{"version":4,"terraform_version":"1.9.0","serial":%d,"lineage":"l-1","outputs":{},"resources":[]}`, serial)
}

// wantCode fails unless err is a *store.Error with code.
func wantCode(t *testing.T, err error, code string) *store.Error {
	t.Helper()
	var e *store.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *store.Error with code %s", err, err, code)
	} else if e.Code != code {
		t.Fatalf("code = %q (%v), want %q", e.Code, err, code)
	}
	return e
}

// must(f())(t) returns the value of f and fails t on its error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestClient_Health(t *testing.T) {
	c := newServer(t, httpapi.Config{})
	ctx := context.Background()
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClient_Unit(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		u := must(c.CreateUnit(ctx, "team/app.prod"))(t)
		if u.ID != "team/app.prod" || u.VersionCount != 0 || u.Locked {
			t.Fatalf("created %+v", u)
		}
		must(c.CreateUnit(ctx, "app.json"))(t)
		must(c.CreateUnit(ctx, "team/db"))(t)
		got := must(c.GetUnit(ctx, "team/app.prod"))(t)
		if got.ID != "team/app.prod" {
			t.Fatalf("get %+v", got)
		}
		if got := must(c.GetUnit(ctx, "app.json"))(t); got.ID != "app.json" {
			t.Fatalf("dotted ID: got %+v", got)
		}
		list := must(c.ListUnits(ctx, ""))(t)
		if list.Count != 3 || list.Units[0].ID != "app.json" || list.Units[2].ID != "team/db" {
			t.Fatalf("list %+v", list)
		}
		list = must(c.ListUnits(ctx, "team/"))(t)
		if list.Count != 2 || list.Units[0].ID != "team/app.prod" {
			t.Fatalf("prefix list %+v", list)
		}
		if list := must(c.ListUnits(ctx, "nope"))(t); list.Count != 0 || list.Units == nil {
			t.Fatalf("empty list %+v", list)
		}
		if err := c.DeleteUnit(ctx, "team/app.prod", false); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetUnit(ctx, "team/app.prod")
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("ErrConflict", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a/b"))(t)
		_, err := c.CreateUnit(ctx, "/a//b/")
		wantCode(t, err, store.ECONFLICT)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		for _, id := range []string{"a/lock", "a/../b", "_a", "a b", ""} {
			_, err := c.CreateUnit(ctx, id)
			wantCode(t, err, store.EINVALID)
		}
		_, err := c.GetUnit(ctx, "a%zz")
		wantCode(t, err, store.EINVALID)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		_, err := c.GetUnit(ctx, "nope")
		wantCode(t, err, store.ENOTFOUND)
		wantCode(t, c.DeleteUnit(ctx, "nope", false), store.ENOTFOUND)
		_, err = c.Versions(ctx, "nope")
		wantCode(t, err, store.ENOTFOUND)
		_, err = c.Download(ctx, "nope", 0)
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("DeleteLocked", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a"))(t)
		must(c.Lock(ctx, "a", store.Lock{ID: "L1"}))(t)
		e := wantCode(t, c.DeleteUnit(ctx, "a", false), store.ELOCKED)
		if e.Lock == nil || e.Lock.ID != "L1" {
			t.Fatalf("lock in error = %+v", e.Lock)
		}
		if err := c.DeleteUnit(ctx, "a", true); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClient_State(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "team/app.prod"))(t)
		data, err := c.Download(ctx, "team/app.prod", 0)
		if err != nil || data != nil {
			t.Fatalf("download of empty unit = %q, %v; want nil, nil", data, err)
		}
		v1 := must(c.Upload(ctx, "team/app.prod", bytes.NewReader(state(1)), ""))(t)
		v2 := must(c.Upload(ctx, "team/app.prod", bytes.NewReader(state(2)), ""))(t)
		if v1.Version != 1 || v2.Version != 2 || !v2.Current || v2.Serial != 2 || v2.Source != store.SourceAPI {
			t.Fatalf("versions %+v %+v", v1, v2)
		}
		st := must(c.DownloadState(ctx, "team/app.prod", 0))(t)
		sum := sha256.Sum256(state(2))
		if !bytes.Equal(st.Data, state(2)) || st.ETag != `"`+hex.EncodeToString(sum[:])+`"` || st.Version != 2 {
			t.Fatalf("download = %q etag %s version %d", st.Data, st.ETag, st.Version)
		}
		old := must(c.Download(ctx, "team/app.prod", 1))(t)
		if !bytes.Equal(old, state(1)) {
			t.Fatalf("version 1 = %q", old)
		}
		_, err = c.Download(ctx, "team/app.prod", 9)
		wantCode(t, err, store.ENOTFOUND)
		_, err = c.Download(ctx, "team/app.prod", -1)
		wantCode(t, err, store.EINVALID)
	})
	t.Run("PercentEncodedID", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "team/app.json"))(t)
		must(c.Upload(ctx, "team/app.json", bytes.NewReader(state(1)), ""))(t)
		for _, form := range []string{"team%2Fapp.json", "team%2fapp.json", "team__app.json"} {
			resp, err := http.Get(c.BaseURL + "/v1/units/" + form + "/download")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Equal(b, state(1)) {
				t.Fatalf("%s: %d %q", form, resp.StatusCode, b)
			}
		}
	})
	t.Run("ETag", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a"))(t)
		must(c.Upload(ctx, "a", bytes.NewReader(state(1)), ""))(t)
		st := must(c.DownloadState(ctx, "a", 0))(t)
		req, _ := http.NewRequest(http.MethodGet, c.BaseURL+"/v1/units/a/download", nil)
		req.Header.Set("If-None-Match", st.ETag)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match: status %d, want 304", resp.StatusCode)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a"))(t)
		for _, body := range []string{"", "[]", "not json", `"x"`} {
			_, err := c.Upload(ctx, "a", strings.NewReader(body), "")
			wantCode(t, err, store.EINVALID)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		_, err := c.Upload(ctx, "nope", bytes.NewReader(state(1)), "")
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		c := newServer(t, httpapi.Config{MaxStateSize: 64})
		must(c.CreateUnit(ctx, "a"))(t)
		big := fmt.Appendf(nil, `{"serial":1,"pad":%q}`, strings.Repeat("x", 4096))
		_, err := c.Upload(ctx, "a", bytes.NewReader(big), "")
		wantCode(t, err, store.ETOOLARGE)
		// Unknown length (chunked) is caught while reading.
		_, err = c.Upload(ctx, "a", io.MultiReader(bytes.NewReader(big)), "")
		wantCode(t, err, store.ETOOLARGE)
		wantCode(t, c.BackendPut(ctx, "a", big, ""), store.ETOOLARGE)
		if u := must(c.GetUnit(ctx, "a"))(t); u.VersionCount != 0 {
			t.Fatalf("too-large bodies were stored: %+v", u)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a"))(t)
		must(c.Lock(ctx, "a", store.Lock{ID: "L1", Who: "alice"}))(t)
		for _, lockID := range []string{"", "L2"} {
			_, err := c.Upload(ctx, "a", bytes.NewReader(state(1)), lockID)
			e := wantCode(t, err, store.ELOCKED)
			if e.Lock == nil || e.Lock.ID != "L1" || e.Lock.Who != "alice" {
				t.Fatalf("lock in error = %+v", e.Lock)
			}
		}
		must(c.Upload(ctx, "a", bytes.NewReader(state(1)), "L1"))(t)
	})
}

func TestClient_Lock(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "team/app.prod"))(t)
		l := must(c.Lock(ctx, "team/app.prod", store.Lock{Operation: "apply", Info: "ci"}))(t)
		if l.ID == "" || l.Who != "anonymous" || l.Operation != "apply" || l.Created == "" {
			t.Fatalf("lock %+v", l)
		}
		again := must(c.Lock(ctx, "team/app.prod", store.Lock{ID: l.ID}))(t)
		if *again != *l {
			t.Fatalf("relock = %+v, want %+v", again, l)
		}
		if got := must(c.GetLock(ctx, "team/app.prod"))(t); *got != *l {
			t.Fatalf("get lock = %+v", got)
		}
		if u := must(c.GetUnit(ctx, "team/app.prod"))(t); !u.Locked || u.Lock.ID != l.ID {
			t.Fatalf("unit %+v", u)
		}
		res := must(c.Unlock(ctx, "team/app.prod", l.ID, false))(t)
		if !res.Unlocked || res.Lock == nil || res.Lock.ID != l.ID || res.UnitID != "team/app.prod" {
			t.Fatalf("unlock %+v", res)
		}
		res = must(c.Unlock(ctx, "team/app.prod", l.ID, false))(t)
		if res.Unlocked {
			t.Fatalf("second unlock %+v", res)
		}
		_, err := c.GetLock(ctx, "team/app.prod")
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("ErrLocked", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a"))(t)
		must(c.Lock(ctx, "a", store.Lock{ID: "L1", Who: "alice", Operation: "plan"}))(t)
		_, err := c.Lock(ctx, "a", store.Lock{ID: "L2"})
		e := wantCode(t, err, store.ELOCKED)
		if e.Lock == nil || e.Lock.ID != "L1" || e.Lock.Who != "alice" || e.Lock.Operation != "plan" {
			t.Fatalf("lock in error = %+v", e.Lock)
		}
		_, err = c.Unlock(ctx, "a", "L2", false)
		if e := wantCode(t, err, store.ELOCKED); e.Lock == nil || e.Lock.ID != "L1" {
			t.Fatalf("lock in unlock error = %+v", e.Lock)
		}
	})
	t.Run("Force", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a"))(t)
		must(c.Lock(ctx, "a", store.Lock{ID: "L1"}))(t)
		res := must(c.Unlock(ctx, "a", "", true))(t)
		if !res.Unlocked || res.Lock.ID != "L1" {
			t.Fatalf("force unlock %+v", res)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "a"))(t)
		_, err := c.Unlock(ctx, "a", "", false)
		wantCode(t, err, store.EINVALID)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		_, err := c.Lock(ctx, "nope", store.Lock{})
		wantCode(t, err, store.ENOTFOUND)
		_, err = c.Unlock(ctx, "nope", "L", false)
		wantCode(t, err, store.ENOTFOUND)
		_, err = c.GetLock(ctx, "nope")
		wantCode(t, err, store.ENOTFOUND)
	})
}

func TestClient_Versions(t *testing.T) {
	ctx := context.Background()
	c := newServer(t, httpapi.Config{})
	must(c.CreateUnit(ctx, "app.json"))(t)
	if vl := must(c.Versions(ctx, "app.json"))(t); vl.Count != 0 || vl.Versions == nil || vl.UnitID != "app.json" {
		t.Fatalf("empty versions %+v", vl)
	}
	for i := 1; i <= 3; i++ {
		must(c.Upload(ctx, "app.json", bytes.NewReader(state(i)), ""))(t)
	}
	vl := must(c.Versions(ctx, "app.json"))(t)
	if vl.Count != 3 || vl.Versions[0].Version != 3 || !vl.Versions[0].Current || vl.Versions[2].Current {
		t.Fatalf("versions %+v", vl)
	}
	sum := sha256.Sum256(state(1))
	if v := vl.Versions[2]; v.SHA256 != hex.EncodeToString(sum[:]) || v.Hash != v.SHA256[:8] || v.Size != int64(len(state(1))) {
		t.Fatalf("version 1 = %+v", v)
	}
}

func TestClient_Restore(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*httpapi.Client, *httpapi.VersionList) {
		c := newServer(t, httpapi.Config{})
		must(c.CreateUnit(ctx, "team/app.prod"))(t)
		for i := 1; i <= 3; i++ {
			must(c.Upload(ctx, "team/app.prod", bytes.NewReader(state(i)), ""))(t)
		}
		return c, must(c.Versions(ctx, "team/app.prod"))(t)
	}
	t.Run("Version", func(t *testing.T) {
		c, _ := setup(t)
		res := must(c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{Version: 1}))(t)
		if res.RestoredVersion != 1 || res.NewVersion != 4 || !res.SerialRewritten || res.Serial != 4 || res.UnitID != "team/app.prod" {
			t.Fatalf("restore %+v", res)
		}
		got := must(c.Download(ctx, "team/app.prod", 0))(t)
		if want := bytes.Replace(state(1), []byte(`"serial":1`), []byte(`"serial":4`), 1); !bytes.Equal(got, want) {
			t.Fatalf("restored state = %s, want %s", got, want)
		}
	})
	t.Run("Timestamp", func(t *testing.T) {
		c, vl := setup(t)
		v2 := vl.Versions[1]
		res := must(c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{Timestamp: v2.Timestamp.Format("2006-01-02T15:04:05.999999999Z07:00")}))(t)
		if res.RestoredVersion != 2 || !res.RestoredTimestamp.Equal(v2.Timestamp) {
			t.Fatalf("restore %+v", res)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		c, _ := setup(t)
		_, err := c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{Version: 99})
		wantCode(t, err, store.ENOTFOUND)
		_, err = c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{Timestamp: "2001-01-01T00:00:00Z"})
		wantCode(t, err, store.ENOTFOUND)
		_, err = c.Restore(ctx, "nope", httpapi.RestoreRequest{Version: 1})
		wantCode(t, err, store.ENOTFOUND)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		c, _ := setup(t)
		_, err := c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{})
		wantCode(t, err, store.EINVALID)
		_, err = c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{Timestamp: "yesterday"})
		wantCode(t, err, store.EINVALID)
	})
	t.Run("ErrLocked", func(t *testing.T) {
		c, _ := setup(t)
		must(c.Lock(ctx, "team/app.prod", store.Lock{ID: "L1"}))(t)
		_, err := c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{Version: 1})
		if e := wantCode(t, err, store.ELOCKED); e.Lock == nil || e.Lock.ID != "L1" {
			t.Fatalf("lock in error = %+v", e.Lock)
		}
		must(c.Restore(ctx, "team/app.prod", httpapi.RestoreRequest{Version: 1, LockID: "L1"}))(t)
	})
}

func TestClient_Backend(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		if data, err := c.BackendGet(ctx, "team/app.prod"); err != nil || data != nil {
			t.Fatalf("get of unknown unit = %q, %v; want nil, nil", data, err)
		}
		l := must(c.BackendLock(ctx, "team/app.prod", store.Lock{ID: "tf-1", Operation: "OperationTypeApply", Who: "bob@host"}))(t)
		if l.ID != "tf-1" || l.Who != "bob@host" || l.Created == "" {
			t.Fatalf("lock %+v", l)
		}
		if got := must(c.BackendGetLock(ctx, "team/app.prod"))(t); *got != *l {
			t.Fatalf("get lock = %+v, want %+v", got, l)
		}
		if err := c.BackendPut(ctx, "team/app.prod", state(1), "tf-1"); err != nil {
			t.Fatal(err)
		}
		if got := must(c.BackendGet(ctx, "team/app.prod"))(t); !bytes.Equal(got, state(1)) {
			t.Fatalf("get = %q", got)
		}
		if err := c.BackendUnlock(ctx, "team/app.prod", "tf-1"); err != nil {
			t.Fatal(err)
		}
		_, err := c.BackendGetLock(ctx, "team/app.prod")
		wantCode(t, err, store.ENOTFOUND)
		// The backend and /v1 see the same unit.
		vl := must(c.Versions(ctx, "team/app.prod"))(t)
		if vl.Count != 1 || vl.Versions[0].Source != store.SourceBackend {
			t.Fatalf("versions %+v", vl)
		}
	})
	t.Run("CreatesOnWrite", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		if err := c.BackendPut(ctx, "app.json", state(1), ""); err != nil {
			t.Fatal(err)
		}
		if u := must(c.GetUnit(ctx, "app.json"))(t); u.VersionCount != 1 || u.Serial != 1 {
			t.Fatalf("unit %+v", u)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		must(c.BackendLock(ctx, "a/b", store.Lock{ID: "tf-1", Who: "alice"}))(t)
		_, err := c.BackendLock(ctx, "a/b", store.Lock{ID: "tf-2"})
		if e := wantCode(t, err, store.ELOCKED); e.Lock == nil || e.Lock.ID != "tf-1" || e.Lock.Who != "alice" {
			t.Fatalf("423 lock = %+v", e.Lock)
		}
		err = c.BackendPut(ctx, "a/b", state(1), "tf-2")
		if e := wantCode(t, err, store.ELOCKED); e.Lock == nil || e.Lock.ID != "tf-1" {
			t.Fatalf("409 lock = %+v", e.Lock)
		}
		err = c.BackendUnlock(ctx, "a/b", "tf-2")
		if e := wantCode(t, err, store.ELOCKED); e.Lock == nil || e.Lock.ID != "tf-1" {
			t.Fatalf("unlock lock = %+v", e.Lock)
		}
		// An empty body is terraform force-unlock.
		if err := c.BackendUnlock(ctx, "a/b", ""); err != nil {
			t.Fatal(err)
		}
		if u := must(c.GetUnit(ctx, "a/b"))(t); u.Locked {
			t.Fatalf("still locked after force-unlock: %+v", u)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		wantCode(t, c.BackendPut(ctx, "a", []byte("[1]"), ""), store.EINVALID)
		_, err := c.BackendGet(ctx, "a/../b")
		wantCode(t, err, store.EINVALID)
	})
	t.Run("Gzip", func(t *testing.T) {
		c := newServer(t, httpapi.Config{})
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(state(7))
		zw.Close()
		req, _ := http.NewRequest(http.MethodPost, c.BaseURL+"/v1/backend/team/app.prod", &buf)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("gzip upload: status %d", resp.StatusCode)
		}
		if got := must(c.Download(ctx, "team/app.prod", 0))(t); !bytes.Equal(got, state(7)) {
			t.Fatalf("stored %q, want the decoded state", got)
		}
	})
}

func TestClient_ErrorBody(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		status int
		body   string
		code   string
	}{
		{http.StatusBadRequest, "bad", store.EINVALID},
		{http.StatusUnauthorized, "", store.EUNAUTHORIZED},
		{http.StatusForbidden, "<html>no</html>", store.EFORBIDDEN},
		{http.StatusNotFound, "", store.ENOTFOUND},
		{http.StatusConflict, "{}", store.ECONFLICT},
		{http.StatusRequestEntityTooLarge, "", store.ETOOLARGE},
		{http.StatusLocked, "", store.ELOCKED},
		{http.StatusBadGateway, "upstream down", store.EINTERNAL},
		{http.StatusTeapot, `{"error":"custom","code":"forbidden"}`, store.EFORBIDDEN},
		{http.StatusConflict, `{"ID":"L9","Who":"x"}`, store.ELOCKED},
	} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("Authorization"); got != "Bearer tok" {
					t.Errorf("Authorization = %q", got)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			_, err := httpapi.NewClient(ts.URL+"/", "tok").GetUnit(ctx, "a")
			e := wantCode(t, err, tt.code)
			if e.Message == "" {
				t.Fatal("empty message")
			}
			if tt.body == `{"ID":"L9","Who":"x"}` && (e.Lock == nil || e.Lock.ID != "L9") {
				t.Fatalf("lock = %+v", e.Lock)
			}
		})
	}
}
