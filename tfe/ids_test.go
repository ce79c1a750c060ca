package tfe

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/store"
)

func TestSVID(t *testing.T) {
	for _, id := range []string{"a", "myapp/prod", "app.v3", "a.v1/b.v2", "x-y_z/w"} {
		for _, n := range []int64{1, 7, 123456} {
			sv := svID(id, n)
			if strings.ContainsAny(sv, "/ \t") {
				t.Fatalf("svID(%q, %d) = %q has a slash or space", id, n, sv)
			}
			gotID, gotN, err := parseSVID(sv)
			if err != nil || gotID != id || gotN != n {
				t.Fatalf("parseSVID(%q) = %q, %d, %v; want %q, %d", sv, gotID, gotN, err, id, n)
			}
		}
	}
	if id, n, err := parseSVID("sv-a.v1__b.p0a1b"); err != nil || id != "a.v1/b" || n != 0 {
		t.Fatalf("parseSVID of a pending ID = %q, %d, %v", id, n, err)
	}
	for _, bad := range []string{"", "sv-", "sv-a", "sv-a.v", "sv-a.v0", "sv-a.vx", "ws-a.v1", "sv-..v1", "sv-_a.v1", "sv-a.p", "sv-a.pxyz", "sv-a.q1", "sv-a."} {
		if _, _, err := parseSVID(bad); err == nil {
			t.Errorf("parseSVID(%q) succeeded", bad)
		}
	}
}

func TestOutputID(t *testing.T) {
	id := outputID("team/app.prod", 12, "db_url")
	if strings.ContainsAny(id, "/ ") || !strings.HasPrefix(id, "wsout-") {
		t.Fatalf("outputID = %q", id)
	}
	u, n, name, err := parseOutputID(id)
	if err != nil || u != "team/app.prod" || n != 12 || name != "db_url" {
		t.Fatalf("parseOutputID(%q) = %q %d %q %v", id, u, n, name, err)
	}
	if _, _, _, err := parseOutputID("wsout-!!"); err == nil {
		t.Fatal("bad output ID accepted")
	}
}

func TestSigner(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := &signer{key: []byte("k"), now: func() time.Time { return now }}
	signed := s.sign("/tfe/api/v2/state-versions/svp-1/upload")
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		if err := s.verify(u.Path, u.Query()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrOtherPath", func(t *testing.T) {
		if err := s.verify("/tfe/api/v2/state-versions/svp-2/upload", u.Query()); err == nil {
			t.Fatal("signature accepted for another path")
		}
	})
	t.Run("ErrTampered", func(t *testing.T) {
		q := u.Query()
		sig := []byte(q.Get("sig"))
		sig[0] ^= 1
		q.Set("sig", string(sig))
		if err := s.verify(u.Path, q); err == nil {
			t.Fatal("tampered signature accepted")
		}
		q = u.Query()
		q.Set("expires", "99999999999")
		if err := s.verify(u.Path, q); err == nil {
			t.Fatal("extended expiry accepted")
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		now = now.Add(UploadURLTTL + time.Second)
		if err := s.verify(u.Path, u.Query()); err == nil {
			t.Fatal("expired URL accepted")
		}
	})
	t.Run("ErrUnsigned", func(t *testing.T) {
		if err := s.verify(u.Path, url.Values{}); err == nil {
			t.Fatal("unsigned URL accepted")
		}
	})
}

func TestWildcardMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"app*", "app-prod", true}, {"*prod", "app-prod", true}, {"*pp-p*", "app-prod", true},
		{"app", "app", true}, {"app", "app2", false}, {"*x*", "app", false}, {"a*b*c", "abc", true}, {"a*b*c", "acb", false},
	} {
		if got := store.GlobMatch(c.pattern, c.name); got != c.want {
			t.Errorf("GlobMatch(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
}

func TestCoarseType(t *testing.T) {
	for in, want := range map[string]string{
		`"string"`: "string", `"number"`: "number", `"bool"`: "boolean",
		`["object",{"a":"number"}]`: "object", `["map","string"]`: "object",
		`["list","string"]`: "array", `["tuple",["string"]]`: "array", `["set","number"]`: "array",
	} {
		if got := coarseType(json.RawMessage(in)); got != want {
			t.Errorf("coarseType(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestTimestamp(t *testing.T) {
	ts := timestamp(time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.FixedZone("x", 3600)))
	if ts != "2026-01-02T02:04:05.006Z" {
		t.Fatalf("timestamp = %q", ts)
	}
}
