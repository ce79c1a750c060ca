package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/cli"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// testEnv is a real server on 127.0.0.1:0 and a private config dir.
type testEnv struct {
	t         *testing.T
	server    string
	configDir string
	client    *httpapi.Client
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "opentaco.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(httpapi.NewServer(httpapi.Config{Store: db, Logger: zerolog.Nop(), AuthDisabled: true}))
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testEnv{t: t, server: ts.URL, configDir: filepath.Join(t.TempDir(), "config"), client: httpapi.NewClient(ts.URL, "")}
}

// result is what one in-process run of the CLI produced.
type result struct {
	code           int
	stdout, stderr string
}

// run calls cli.Run with the server and config dir of e, stdin as input.
func (e *testEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	all := append([]string{"--server", e.server, "--config-dir", e.configDir}, args...)
	code := cli.Run(context.Background(), all, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs the CLI and fails the test unless it exits 0.
func (e *testEnv) ok(stdin string, args ...string) string {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("opentaco %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fail runs the CLI and fails the test unless it exits with code, with a
// message on stderr and nothing on stdout.
func (e *testEnv) fail(code int, stdin string, args ...string) string {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != code {
		e.t.Fatalf("opentaco %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	} else if r.stdout != "" || !strings.HasPrefix(r.stderr, "opentaco: ") {
		e.t.Fatalf("opentaco %s: stdout %q, stderr %q; want the error on stderr only", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r.stderr
}

// okJSON runs the CLI with -o json and decodes its stdout into v.
func (e *testEnv) okJSON(v any, stdin string, args ...string) {
	e.t.Helper()
	out := e.ok(stdin, append([]string{"-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("opentaco -o json %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// remembered returns the lock file's entries for e's server.
func (e *testEnv) remembered() map[string]string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.configDir, "locks.json"))
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		e.t.Fatal(err)
	}
	var d struct {
		Locks map[string]map[string]string `json:"locks"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		e.t.Fatal(err)
	}
	return d.Locks[e.server]
}

func tfstate(serial int) string {
	return fmt.Sprintf(`{"version":4,"terraform_version":"1.9.0","serial":%d,"lineage":"l-1","outputs":{},"resources":[]}`+"\n", serial)
}

// lines splits table output into rows of fields.
func lines(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func TestCLI_Unit(t *testing.T) {
	t.Run("Workflow", func(t *testing.T) {
		e := newEnv(t)
		const id = "team/app.prod"
		out := e.ok("", "unit", "create", id)
		if rows := lines(out); len(rows) != 2 || rows[0][0] != "ID" || rows[1][0] != id {
			t.Fatalf("create output:\n%s", out)
		}
		e.ok("", "unit", "create", "app.json")

		out = e.ok("", "unit", "ls")
		rows := lines(out)
		if len(rows) != 3 || strings.Join(rows[0], " ") != "ID SERIAL VERSIONS SIZE LOCKED BY UPDATED" || rows[1][0] != "app.json" || rows[2][0] != id {
			t.Fatalf("ls output:\n%s", out)
		}
		if rows := lines(e.ok("", "unit", "ls", "--prefix", "team/")); len(rows) != 2 || rows[1][0] != id {
			t.Fatalf("ls --prefix output: %v", rows)
		}

		e.ok(tfstate(1), "unit", "push", id)
		out = e.ok(tfstate(2), "unit", "push", id)
		if rows := lines(out); len(rows) != 2 || rows[0][0] != "VERSION" || rows[1][0] != "2" {
			t.Fatalf("push output:\n%s", out)
		}
		if got := e.ok("", "unit", "pull", id); got != tfstate(2) {
			t.Fatalf("pull = %q, want %q", got, tfstate(2))
		}
		if got := e.ok("", "unit", "pull", id, "--version", "1"); got != tfstate(1) {
			t.Fatalf("pull --version 1 = %q", got)
		}

		out = e.ok("", "unit", "info", id)
		for _, want := range []string{"ID:", id, "Serial:", "Versions:", "Locked:"} {
			if !strings.Contains(out, want) {
				t.Fatalf("info output lacks %q:\n%s", want, out)
			}
		}

		// lock remembers the ID; push and unlock use it.
		out = e.ok("", "unit", "lock", id, "--operation", "apply", "--info", "maintenance")
		u, err := e.client.GetUnit(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		} else if !u.Locked || u.Lock.Operation != "apply" || u.Lock.Info != "maintenance" || !strings.Contains(out, u.Lock.ID) {
			t.Fatalf("lock: unit %+v, output:\n%s", u, out)
		}
		if got := e.remembered()[id]; got != u.Lock.ID {
			t.Fatalf("remembered lock = %q, want %q", got, u.Lock.ID)
		}
		checkMode(t, filepath.Join(e.configDir, "locks.json"), 0o600)
		checkMode(t, e.configDir, 0o700)
		e.ok(tfstate(3), "unit", "push", id)
		msg := e.fail(6, tfstate(4), "unit", "push", id, "--lock-id", "wrong")
		if !strings.Contains(msg, u.Lock.ID) {
			t.Fatalf("locked error does not name the holder's lock: %s", msg)
		}
		r := e.run("", "unit", "unlock", id)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "Unlocked") {
			t.Fatalf("unlock: %+v", r)
		}
		if got, ok := e.remembered()[id]; ok {
			t.Fatalf("lock %q still remembered after unlock", got)
		}

		out = e.ok("", "unit", "versions", id)
		rows = lines(out)
		if len(rows) != 4 || strings.Join(rows[0], " ") != "VERSION TIMESTAMP HASH SIZE SERIAL WHO SOURCE CURRENT" ||
			rows[1][0] != "3" || rows[1][len(rows[1])-1] != "*" || rows[3][0] != "1" {
			t.Fatalf("versions output:\n%s", out)
		}

		out = e.ok("", "unit", "restore", id, "--version", "1")
		if !strings.Contains(out, "New version:") {
			t.Fatalf("restore output:\n%s", out)
		}
		if got, want := e.ok("", "unit", "pull", id), strings.Replace(tfstate(1), `"serial":1`, `"serial":4`, 1); got != want {
			t.Fatalf("pull after restore = %q, want %q", got, want)
		}

		// Restore by the timestamp exactly as the table lists it.
		ts := rows[2][1] // version 2
		e.ok("", "unit", "restore", id, "--timestamp", ts)
		var vl httpapi.VersionList
		e.okJSON(&vl, "", "unit", "versions", id)
		if vl.Count != 5 || vl.Versions[0].Source != store.SourceRestore || vl.Versions[0].SHA256 == vl.Versions[1].SHA256 {
			t.Fatalf("versions after restores: %+v", vl)
		}

		r = e.run("", "unit", "rm", id)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "Deleted") {
			t.Fatalf("rm: %+v", r)
		}
		e.fail(4, "", "unit", "info", id)
	})

	t.Run("JSON", func(t *testing.T) {
		e := newEnv(t)
		const id = "team/app.json"
		var u store.Unit
		e.okJSON(&u, "", "unit", "create", id)
		if u.ID != id {
			t.Fatalf("create: %+v", u)
		}
		var list httpapi.UnitList
		e.okJSON(&list, "", "unit", "ls")
		if list.Count != 1 || list.Units[0].ID != id {
			t.Fatalf("ls: %+v", list)
		}
		var empty httpapi.UnitList
		e.okJSON(&empty, "", "unit", "ls", "--prefix", "nope")
		if empty.Count != 0 || empty.Units == nil {
			t.Fatalf("empty ls: %+v", empty)
		}
		var v store.Version
		e.okJSON(&v, tfstate(5), "unit", "push", id)
		if v.Version != 1 || v.Serial != 5 || !v.Current {
			t.Fatalf("push: %+v", v)
		}
		var l store.Lock
		e.okJSON(&l, "", "unit", "lock", id, "--id", "L1")
		if l.ID != "L1" {
			t.Fatalf("lock: %+v", l)
		}
		e.okJSON(&u, "", "unit", "info", id)
		if !u.Locked || u.Lock.ID != "L1" || u.Serial != 5 {
			t.Fatalf("info: %+v", u)
		}
		var res store.RestoreResult
		e.okJSON(&res, "", "unit", "restore", id, "--version", "1") // remembered lock
		if res.NewVersion != 2 || res.Serial != 6 {
			t.Fatalf("restore: %+v", res)
		}
		var ul httpapi.UnlockResult
		e.okJSON(&ul, "", "unit", "unlock", id)
		if !ul.Unlocked || ul.Lock.ID != "L1" {
			t.Fatalf("unlock: %+v", ul)
		}
		var vl httpapi.VersionList
		e.okJSON(&vl, "", "unit", "versions", id)
		if vl.UnitID != id || vl.Count != 2 {
			t.Fatalf("versions: %+v", vl)
		}
	})

	t.Run("PullPushFile", func(t *testing.T) {
		e := newEnv(t)
		dir := t.TempDir()
		in := filepath.Join(dir, "in.tfstate")
		if err := os.WriteFile(in, []byte(tfstate(1)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.ok("", "unit", "create", "a")
		e.ok("", "unit", "push", "a", "-f", in)
		outFile := filepath.Join(dir, "out.tfstate")
		r := e.run("", "unit", "pull", "a", "-f", outFile)
		if r.code != 0 || r.stdout != "" {
			t.Fatalf("pull -f: %+v", r)
		}
		if b, err := os.ReadFile(outFile); err != nil || string(b) != tfstate(1) {
			t.Fatalf("pulled file = %q, %v", b, err)
		}
		checkMode(t, outFile, 0o600)
		// An existing file keeps its mode and is replaced whole.
		if err := os.Chmod(outFile, 0o640); err != nil {
			t.Fatal(err)
		}
		e.ok(tfstate(22), "unit", "push", "a", "-f", "-")
		e.ok("", "unit", "pull", "a", "-f", outFile)
		if b, _ := os.ReadFile(outFile); string(b) != tfstate(22) {
			t.Fatalf("pulled file = %q", b)
		}
		checkMode(t, outFile, 0o640)
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Fatalf("temporary files left behind: %v", ents)
		}
	})

	t.Run("ExitCodes", func(t *testing.T) {
		e := newEnv(t)
		e.ok("", "unit", "create", "a/b")
		e.ok("", "unit", "create", "empty")

		// not found → 4
		for _, args := range [][]string{
			{"unit", "info", "nope"}, {"unit", "rm", "nope"}, {"unit", "versions", "nope"},
			{"unit", "pull", "nope"}, {"unit", "lock", "nope"}, {"unit", "pull", "a/b", "--version", "7"},
			{"unit", "pull", "empty"}, {"unit", "restore", "a/b", "--version", "3"},
		} {
			e.fail(4, "", args...)
		}
		e.fail(4, tfstate(1), "unit", "push", "nope")
		pulled := filepath.Join(t.TempDir(), "pulled")
		e.fail(4, "", "unit", "pull", "empty", "-f", pulled)
		if _, err := os.Stat(pulled); !os.IsNotExist(err) {
			t.Fatal("pull of an empty unit wrote a file")
		}

		// invalid → 2, caught locally or by the server
		e.fail(2, "", "unit", "create", "a/../b")
		e.fail(2, "", "unit", "info", "x/lock")
		e.fail(2, "[1, 2]", "unit", "push", "a/b")
		if r := e.run("", "unit", "unlock", "a/b"); r.code != 0 || !strings.Contains(r.stderr, "was not locked") {
			t.Fatalf("unlock of an unlocked unit with nothing remembered: %+v", r)
		}
		e.fail(2, "", "unit", "restore", "a/b", "--timestamp", "yesterday")

		// conflict → 5
		e.fail(5, "", "unit", "create", "a/b")

		// locked → 6, with the holder named
		e.ok("", "unit", "lock", "a/b", "--id", "L1")
		other := newEnv(t) // a second config dir: the lock is not remembered there
		other.server = e.server
		msg := other.fail(6, tfstate(1), "unit", "push", "a/b")
		if !strings.Contains(msg, "L1") {
			t.Fatalf("locked message: %s", msg)
		}
		other.fail(6, "", "unit", "lock", "a/b", "--id", "L2")
		other.fail(6, "", "unit", "unlock", "a/b", "--id", "L2")
		other.fail(6, "", "unit", "rm", "a/b")
		other.fail(6, "", "unit", "restore", "a/b", "--version", "1")
		if msg := other.fail(2, "", "unit", "unlock", "a/b"); !strings.Contains(msg, "L1") { // locked, nothing remembered, no --id
			t.Fatalf("unlock without a lock ID does not name the holder's lock: %s", msg)
		}
		other.ok("", "unit", "unlock", "a/b", "--force")

		// usage errors → 64
		if r := e.run("", "unit", "restore", "a/b"); r.code != 64 {
			t.Fatalf("restore without a target: %+v", r)
		}
		if r := e.run("", "unit", "restore", "a/b", "--version", "1", "--timestamp", "x"); r.code != 64 {
			t.Fatalf("restore with two targets: %+v", r)
		}
	})

	t.Run("ErrUnreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		var stdout, stderr bytes.Buffer
		code := cli.Run(context.Background(), []string{"--server", "http://" + addr, "unit", "ls"}, strings.NewReader(""), &stdout, &stderr)
		if code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), addr) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	})

	t.Run("RememberedPerServer", func(t *testing.T) {
		e := newEnv(t)
		e.ok("", "unit", "create", "a")
		e.ok("", "unit", "lock", "a", "--id", "L1")
		second := newEnv(t)
		second.configDir = e.configDir // same config, another server
		second.ok("", "unit", "create", "a")
		second.ok("", "unit", "lock", "a", "--id", "L2")
		e.ok("", "unit", "unlock", "a")
		if got := second.remembered()["a"]; got != "L2" {
			t.Fatalf("second server's lock = %q, want L2", got)
		}
		second.ok("", "unit", "unlock", "a")
		b, err := os.ReadFile(filepath.Join(e.configDir, "locks.json"))
		if err != nil || strings.Contains(string(b), "L1") || strings.Contains(string(b), "L2") {
			t.Fatalf("locks.json after unlocks: %s, %v", b, err)
		}
	})
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	} else if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s: mode %o, want %o", path, got, want)
	}
}
