package store_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/opentaco/opentaco/store"
)

// outputsState is a state with outputs of several shapes.
const outputsState = `{"version":4,"serial":3,"lineage":"L","outputs":{` +
	`"name":{"value":"web","type":"string"},` +
	`"ports":{"value":[80,443],"type":["list","number"]},` +
	`"password":{"value":"hunter2","type":"string","sensitive":true}},"resources":[]}`

func TestStore_Outputs(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustWrite(t, db, "u", []byte(outputsState), store.WriteOptions{})
		outs, v, err := db.Outputs("u", 0)
		if err != nil {
			t.Fatal(err)
		} else if v == nil || v.Version != 1 || !v.Current {
			t.Fatalf("Outputs version = %+v; want current version 1", v)
		}
		want := map[string]store.Output{
			"name":     {Value: json.RawMessage(`"web"`), Type: json.RawMessage(`"string"`)},
			"ports":    {Value: json.RawMessage(`[80,443]`), Type: json.RawMessage(`["list","number"]`)},
			"password": {Value: json.RawMessage(`"hunter2"`), Type: json.RawMessage(`"string"`), Sensitive: true},
		}
		if g, w := jsonString(t, outs), jsonString(t, want); g != w {
			t.Fatalf("Outputs = %s;\nwant %s", g, w)
		}
	})
	t.Run("ByVersion", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustWrite(t, db, "u", []byte(`{"serial":1,"outputs":{"n":{"value":1,"type":"number"}}}`), store.WriteOptions{})
		mustWrite(t, db, "u", []byte(`{"serial":2,"outputs":{"n":{"value":2,"type":"number"}}}`), store.WriteOptions{})
		for n, want := range map[int64]int64{0: 2, 1: 1, 2: 2} {
			outs, v, err := db.Outputs("u", n)
			if err != nil {
				t.Fatal(err)
			} else if got := string(outs["n"].Value); got != fmt.Sprint(want) || v.Version != want || v.Current != (want == 2) {
				t.Fatalf("Outputs(u, %d) = %v, %+v; want version %d with n = %d", n, outs, v, want, want)
			}
		}
	})
	t.Run("Declared", func(t *testing.T) {
		// Declared outputs belong to their version only; a later plain write
		// reads its own state.
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := []byte(`{"serial":1,"lineage":"L","outputs":{"from_state":{"value":true,"type":"bool"}}}`)
		decl := declare("u", 1, state)
		decl.Outputs = json.RawMessage(declaredOuts)
		mustFinalize(t, db, mustPending(t, db, decl).ID, state)
		mustWrite(t, db, "u", []byte(outputsState), store.WriteOptions{})
		if outs, _, err := db.Outputs("u", 1); err != nil || len(outs) != 2 || outs["region"].Value == nil {
			t.Fatalf("Outputs of the declared version = %v, %v; want the declared ones", outs, err)
		}
		if outs, _, err := db.Outputs("u", 0); err != nil || len(outs) != 3 || outs["password"].Value == nil {
			t.Fatalf("Outputs of the plain version = %v, %v; want the state's", outs, err)
		}
	})
	t.Run("DeclaredNull", func(t *testing.T) {
		// json-state-outputs of "null" (accepted by the API as an empty
		// object) gives an empty map, not a nil one.
		db := mustOpen(t)
		mustCreate(t, db, "u")
		state := []byte(outputsState)
		decl := declare("u", 3, state)
		decl.Outputs = json.RawMessage(`null`)
		mustFinalize(t, db, mustPending(t, db, decl).ID, state)
		if outs, v, err := db.Outputs("u", 0); err != nil || outs == nil || len(outs) != 0 || v.Version != 1 {
			t.Fatalf("Outputs = %#v, %+v, %v; want an empty map", outs, v, err)
		}
	})
	t.Run("Encrypted", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		env := `{"serial":3,"lineage":"x","meta":{"key_provider.pbkdf2.k":"e30="},"encrypted_data":"AAAA","encryption_version":"v0"}`
		mustWrite(t, db, "u", []byte(env), store.WriteOptions{})
		outs, v, err := db.Outputs("u", 0)
		if err != nil {
			t.Fatal(err)
		} else if outs == nil || len(outs) != 0 || v == nil || !v.Encrypted {
			t.Fatalf("Outputs of an encrypted state = %v, %+v; want an empty map and the encrypted version", outs, v)
		}
	})
	t.Run("NoState", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		outs, v, err := db.Outputs("u", 0)
		if err != nil {
			t.Fatal(err)
		} else if outs == nil || len(outs) != 0 || v != nil {
			t.Fatalf("Outputs of a unit without state = %#v, %+v; want an empty map and nil version", outs, v)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := mustOpen(t)
		_, _, err := db.Outputs("ghost", 0)
		wantCode(t, err, store.ENOTFOUND)
		mustCreate(t, db, "u")
		_, _, err = db.Outputs("u", 1)
		wantCode(t, err, store.ENOTFOUND)
		mustWrite(t, db, "u", tfState(1, "L"), store.WriteOptions{})
		for _, n := range []int64{2, -1} {
			_, _, err = db.Outputs("u", n)
			wantCode(t, err, store.ENOTFOUND)
		}
	})
	t.Run("NoOutputs", func(t *testing.T) {
		db := mustOpen(t)
		mustCreate(t, db, "u")
		mustWrite(t, db, "u", []byte(`{"serial":1}`), store.WriteOptions{})
		if outs, _, err := db.Outputs("u", 0); err != nil || outs == nil || len(outs) != 0 {
			t.Fatalf("Outputs of a state without outputs = %#v, %v; want an empty map", outs, err)
		}
	})
}

func TestStateOutputs(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		outs, err := store.StateOutputs([]byte(outputsState))
		if err != nil {
			t.Fatal(err)
		} else if len(outs) != 3 || string(outs["ports"].Value) != "[80,443]" || !outs["password"].Sensitive || outs["name"].Sensitive {
			t.Fatalf("StateOutputs = %v", outs)
		}
	})
	t.Run("NestedOutputsIgnored", func(t *testing.T) {
		// Only the top-level "outputs" counts.
		outs, err := store.StateOutputs([]byte(`{"resources":[{"outputs":{"x":{"value":1}}}]}`))
		if err != nil || outs == nil || len(outs) != 0 {
			t.Fatalf("StateOutputs = %v, %v; want an empty map", outs, err)
		}
	})
	t.Run("UnexpectedShape", func(t *testing.T) {
		for _, in := range []string{
			`{}`,
			`{"outputs":null}`,
			`{"outputs":[]}`,
			`{"outputs":[{"value":1}]}`,
			`{"outputs":"x"}`,
			`{"outputs":1}`,
			`{"outputs":{"x":1}}`,
			`{"outputs":{"x":{"value":1,"sensitive":"yes"}}}`,
		} {
			outs, err := store.StateOutputs([]byte(in))
			if err != nil || outs == nil || len(outs) != 0 {
				t.Errorf("StateOutputs(%s) = %#v, %v; want an empty map and no error", in, outs, err)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{``, `[]`, `null`, `{"outputs":`, `not json`} {
			if outs, err := store.StateOutputs([]byte(in)); store.ErrorCode(err) != store.EINVALID {
				t.Errorf("StateOutputs(%q) = %v, %v; want invalid", in, outs, err)
			}
		}
	})
}

func TestHasResources(t *testing.T) {
	for in, want := range map[string]bool{
		`{"resources":[{"mode":"managed","type":"null_resource","name":"a"}]}`: true,
		`{"resources":[1]}`:                      true,
		`{"resources" : [ {} ] }`:                true,
		"{\"serial\":1,\"resources\":[\n {}\n]}": true,
		`{"resources":[]}`:                       false,
		`{"resources":[ ]}`:                      false,
		"{\"resources\":[\n\t\r ]}":              false,
		`{"serial":1}`:                           false,
		`{}`:                                     false,
		`{"resources":null}`:                     false,
		`{"resources":{}}`:                       false,
		`{"resources":{"a":[1]}}`:                false,
		`{"resources":"[1]"}`:                    false,
		`{"resources":1}`:                        false,
		`{"nested":{"resources":[1]}}`:           false,
		`{"resources":[1]`:                       false, // invalid JSON
		`[{"resources":[1]}]`:                    false,
		``:                                       false,
		`not json`:                               false,
	} {
		if got := store.HasResources([]byte(in)); got != want {
			t.Errorf("HasResources(%q) = %v; want %v", in, got, want)
		}
	}
}
