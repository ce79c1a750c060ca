package store_test

import (
	"strings"
	"testing"

	"github.com/opentaco/opentaco/store"
)

func TestParseID(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for in, want := range map[string]string{
			"myapp/prod":             "myapp/prod",
			"///a//b/":               "a/b",
			"app.json":               "app.json",
			"v1.2.3":                 "v1.2.3",
			"a_b/c-d/E.f":            "a_b/c-d/E.f",
			"lock/x":                 "lock/x",
			"x.lock":                 "x.lock",
			strings.Repeat("a", 256): strings.Repeat("a", 256),
		} {
			got, err := store.ParseID(in)
			if err != nil || got != want {
				t.Errorf("ParseID(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{
			"", "/", "..", "a/../b", "a/./b", "_a", "a_", "a/_b", "a__b", "a___b",
			"a b", "ü", "a/lock", "lock", "a%2Fb", "a\x00b",
			strings.Repeat("a", 257), "a?b", "a*b",
		} {
			if id, err := store.ParseID(in); store.ErrorCode(err) != store.EINVALID {
				t.Errorf("ParseID(%q) = %q, %v; want invalid", in, id, err)
			}
		}
	})
}

func TestDecodeID(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for in, want := range map[string]string{
			"myapp__prod":     "myapp/prod",
			"myapp%2Fprod":    "myapp/prod",
			"myapp%2fprod":    "myapp/prod",
			"team%2Fapp.prod": "team/app.prod",
			"app.json":        "app.json",
			"a__b__c":         "a/b/c",
		} {
			got, err := store.DecodeID(in)
			if err != nil || got != want {
				t.Errorf("DecodeID(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{"", "a___b", "%zz", "a%2Flock", "a__lock", "..", "_a"} {
			if id, err := store.DecodeID(in); store.ErrorCode(err) != store.EINVALID {
				t.Errorf("DecodeID(%q) = %q, %v; want invalid", in, id, err)
			}
		}
	})
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"a/b", "a__b", "a%2Fb", "///a//b/", "..", "a.b/c", "_x", "ü/ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (string, error){store.ParseID, store.DecodeID} {
			id, err := parse(s)
			if err != nil {
				if store.ErrorCode(err) != store.EINVALID {
					t.Fatalf("parse(%q): error code %q, want invalid", s, store.ErrorCode(err))
				}
				continue
			}
			if back, err := store.ParseID(id); err != nil || back != id {
				t.Fatalf("ParseID(%q) = %q, %v; canonical IDs must be fixed points", id, back, err)
			}
			enc := store.EncodeID(id)
			if strings.Contains(enc, "/") {
				t.Fatalf("EncodeID(%q) = %q contains a slash", id, enc)
			}
			if back, err := store.DecodeID(enc); err != nil || back != id {
				t.Fatalf("DecodeID(EncodeID(%q)) = %q, %v", id, back, err)
			}
		}
	})
}
