package store_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/store"
)

func TestParseState(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			in      string
			serial  int64
			lineage string
		}{
			{`{"version":4,"serial":12,"lineage":"abc-def"}`, 12, "abc-def"},
			{` { "lineage" : "L" , "serial" : 3 } `, 3, "L"},
			{`{}`, 0, ""},
			{`{"serial":0}`, 0, ""},
			{`{"serial":-4,"lineage":""}`, -4, ""},
			{`{"serial":9223372036854775807}`, 9223372036854775807, ""},
			{`{"serial":5.0}`, 5, ""},
			{`{"serial":1e2}`, 100, ""},
			{`{"serial":"7"}`, 0, ""},
			{`{"serial":null,"lineage":null}`, 0, ""},
			{`{"lineage":42}`, 0, ""},
			{`{"lineage":"\u004c\u00e9\ud83d\ude00"}`, 0, "Lé😀"},
			{`{"s\u0065rial":8,"lin\u0065age":"esc"}`, 8, "esc"},
			{`{"serial":1,"serial":2}`, 2, ""},
			{`{"lineage":"a","lineage":"b"}`, 0, "b"},
			{`{"lineage":"a","lineage":5}`, 0, ""},
			{`{"Serial":5,"LINEAGE":"x"}`, 0, ""},
			{`{"a":{"serial":99,"lineage":"nested"},"b":[{"serial":98}],"serial":1,"lineage":"top"}`, 1, "top"},
			{`{"s":"\"serial\":5,","serial":6}`, 6, ""},
			{`{"k\"ey":"}{","serial":2}`, 2, ""},
			{"\t\r\n{\"serial\"\n:\n3\n}\n", 3, ""},
		} {
			info, err := store.ParseState([]byte(tc.in))
			if err != nil {
				t.Errorf("ParseState(%s): %v", tc.in, err)
				continue
			}
			if info.Serial != tc.serial || info.Lineage != tc.lineage || info.Encrypted {
				t.Errorf("ParseState(%s) = serial %d lineage %q encrypted %v; want %d %q false",
					tc.in, info.Serial, info.Lineage, info.Encrypted, tc.serial, tc.lineage)
			}
		}
	})
	t.Run("Encrypted", func(t *testing.T) {
		for _, in := range []string{
			`{"serial":3,"lineage":"x","meta":{"key_provider.pbkdf2.k":"e30="},"encrypted_data":"AAAA","encryption_version":"v0"}`,
			`{"encrypted_data":"AAAA","serial":3,"lineage":"x"}`,
			` {"encryption_version":"v0","encrypted_data":"AAAA","meta":{"serial":99},"lineage":"x","serial":3}`,
		} {
			info, err := store.ParseState([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if !info.Encrypted || info.Serial != 3 || info.Lineage != "x" {
				t.Errorf("ParseState(%s) = %+v; want encrypted, serial 3, lineage x", in, info)
			}
		}
	})
	t.Run("NotEncrypted", func(t *testing.T) {
		for _, in := range []string{
			// A normal state with one extra key.
			`{"serial":3,"lineage":"x","meta":{},"encrypted_data":"AAAA","encryption_version":"v0","resources":[]}`,
			`{"version":4,"serial":3,"lineage":"x","encrypted_data":"AAAA"}`,
			// The envelope keys without encrypted_data.
			`{"serial":3,"lineage":"x","meta":{},"encryption_version":"v0"}`,
			`{"serial":3,"lineage":"x","resources":[{"encrypted_data":"AAAA"}]}`,
			`{}`,
		} {
			info, err := store.ParseState([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if info.Encrypted || info.Serial != 3 && in != `{}` {
				t.Errorf("ParseState(%s) = %+v; want plain state, serial 3", in, info)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{
			``, ` `, `null`, `[]`, `[{}]`, `"x"`, `1`, `true`, `{`, `}`, `{"a":}`, `{"a" 1}`,
			`{"a":1,}`, `{}{}`, `{} x`, `{'a':1}`, `{a:1}`, "\xef\xbb\xbf{}", "{\"a\":\"\x01\"}",
			`{"a":01}`, `{"a":NaN}`, `{"a":"\x"}`,
		} {
			if info, err := store.ParseState([]byte(in)); store.ErrorCode(err) != store.EINVALID {
				t.Errorf("ParseState(%q) = %+v, %v; want invalid", in, info, err)
			}
		}
	})
}

func TestWithSerial(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for in, want := range map[string]string{
			`{"serial":1}`:                                  `{"serial":42}`,
			`{ "serial" :  1 , "x":2}`:                      `{ "serial" :  42 , "x":2}`,
			`{"a":{"serial":1},"serial":1.5e0}`:             `{"a":{"serial":1},"serial":42}`,
			`{"serial":"1","lineage":"L"}`:                  `{"serial":42,"lineage":"L"}`,
			`{"serial":null}`:                               `{"serial":42}`,
			`{"serial":1,"serial":2}`:                       `{"serial":1,"serial":42}`,
			"{\"serial\"\n:\n-123456789012\n}":              "{\"serial\"\n:\n42\n}",
			`{"x":"\"serial\":1","serial":1}`:               `{"x":"\"serial\":1","serial":42}`,
			`{"no":"serial"}`:                               `{"no":"serial"}`,
			`{"r":[{"serial":1}],"meta":{"serial":1}}`:      `{"r":[{"serial":1}],"meta":{"serial":1}}`,
			`{"serial":{"nested":1}}`:                       `{"serial":42}`,
			`{"serial":[1,2,{"serial":3}],"lineage":"x"}`:   `{"serial":42,"lineage":"x"}`,
			`{"s\u0065rial":7}`:                             `{"s\u0065rial":42}`,
			`{"serial":true}`:                               `{"serial":42}`,
			`{"lineage":"L","serial":9223372036854775807} `: `{"lineage":"L","serial":42} `,
		} {
			b := []byte(in)
			info, err := store.ParseState(b)
			if err != nil {
				t.Fatalf("ParseState(%s): %v", in, err)
			}
			got := store.WithSerial(b, info, 42)
			if string(got) != want {
				t.Errorf("WithSerial(%s) = %s; want %s", in, got, want)
			}
			if string(b) != in {
				t.Errorf("WithSerial changed its input to %s", b)
			}
		}
	})
	t.Run("Copy", func(t *testing.T) {
		b := []byte(`{"lineage":"L"}`)
		info, _ := store.ParseState(b)
		got := store.WithSerial(b, info, 42)
		got[0] = 'X'
		if b[0] != '{' {
			t.Fatal("WithSerial without a serial returned its input, not a copy")
		}
	})
}

func FuzzParseState(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `1`, `"x"`, ``, `{`,
		`{"version":4,"serial":12,"lineage":"abc","outputs":{},"resources":[]}`,
		`{"serial":3,"lineage":"x","meta":{"k":"v"},"encrypted_data":"AA==","encryption_version":"v0"}`,
		` { "serial" : 1.5e3 , "lineage" : "\u004c" } `,
		`{"a":{"serial":1},"serial":"2","lineage":null}`,
		`{"serial":1,"serial":2,"lineage":"a","lineage":3}`,
		`{"k\"ey":"}{][","s\u0065rial":-7}`,
		`{"serial":[1,{"serial":2}],"x":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		info, err := store.ParseState(b)
		isObject := json.Valid(b) && bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
		if err != nil {
			if code := store.ErrorCode(err); code != store.EINVALID {
				t.Fatalf("ParseState(%q): code %q, want invalid: %v", b, code, err)
			}
			if isObject {
				t.Fatalf("ParseState(%q) refused a valid JSON object: %v", b, err)
			}
			return
		}
		if !isObject {
			t.Fatalf("ParseState(%q) accepted something that is not a JSON object", b)
		}
		if !bytes.Equal(b, orig) {
			t.Fatalf("ParseState changed its input")
		}

		// Compare with encoding/json, which also keeps the last of
		// duplicate keys and matches map keys exactly.
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatalf("valid object %q does not decode: %v", b, err)
		}
		rawSerial, hasSerial := top["serial"]
		if n, err := strconv.ParseInt(string(rawSerial), 10, 64); hasSerial && err == nil && info.Serial != n {
			t.Fatalf("ParseState(%q).Serial = %d; want %d", b, info.Serial, n)
		}
		var lineage string
		if raw, ok := top["lineage"]; ok && json.Unmarshal(raw, &lineage) == nil && info.Lineage != lineage {
			t.Fatalf("ParseState(%q).Lineage = %q; want %q", b, info.Lineage, lineage)
		}

		out := store.WithSerial(b, info, 42)
		if !bytes.Equal(b, orig) {
			t.Fatalf("WithSerial changed its input")
		}
		if !json.Valid(out) {
			t.Fatalf("WithSerial(%q) = %q, not valid JSON", b, out)
		}
		info2, err := store.ParseState(out)
		if err != nil {
			t.Fatalf("ParseState(WithSerial(%q)) = %v", b, err)
		}
		wantSerial := info.Serial
		if hasSerial {
			wantSerial = 42
		}
		if info2.Serial != wantSerial || info2.Lineage != info.Lineage || info2.Encrypted != info.Encrypted {
			t.Fatalf("ParseState(WithSerial(%q, 42)) = %+v; want serial %d, lineage %q, encrypted %v",
				b, info2, wantSerial, info.Lineage, info.Encrypted)
		}
		if !hasSerial && !bytes.Equal(out, b) {
			t.Fatalf("WithSerial(%q) without a serial changed the state to %q", b, out)
		}
		// Only the serial value changed: the rest of the document decodes
		// to the same top-level members.
		var top2 map[string]json.RawMessage
		if err := json.Unmarshal(out, &top2); err != nil {
			t.Fatal(err)
		}
		if len(top2) != len(top) {
			t.Fatalf("WithSerial(%q) changed the set of keys: %q", b, out)
		}
		for k, v := range top {
			if k == "serial" {
				if strings.TrimSpace(string(top2[k])) != "42" {
					t.Fatalf("WithSerial(%q): serial is %s", b, top2[k])
				}
			} else if !bytes.Equal(top2[k], v) {
				t.Fatalf("WithSerial(%q): member %q changed from %s to %s", b, k, v, top2[k])
			}
		}
	})
}
