package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

func TestCLI_BackupCredsMetrics(t *testing.T) {
	e := newAuthEnv(t, authn.Config{})
	e.ok("", "login", "--token-file", e.tokenFile, "--no-terraform")
	e.ok("", "unit", "create", "bk/app")
	e.ok(tfstate(3), "unit", "push", "bk/app")

	t.Run("Backup", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "snap.db")
		e.ok("", "backup", file)
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("snapshot file: %v %v", fi, err)
		}
		db, err := store.Open(file, store.Options{})
		if err != nil {
			t.Fatalf("the snapshot does not open as a database: %v", err)
		}
		defer db.Close()
		data, ver, err := db.ReadState("bk/app", 0)
		if err != nil || ver == nil || string(data) != tfstate(3) {
			t.Fatalf("snapshot state: %q %v %v", data, ver, err)
		}
	})
	t.Run("Creds", func(t *testing.T) {
		var c authn.S3Credentials
		e.okJSON(&c, "", "creds", "--json")
		if c.Version != 1 || !strings.HasPrefix(c.AccessKeyID, "OTAK") || c.SecretAccessKey == "" || c.SessionToken == "" || c.Expiration == "" {
			t.Fatalf("creds: %+v", c)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		resp, err := http.Get(e.server + "/metrics") // open: no credential
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != 200 || !strings.Contains(body, "opentaco_units 1\n") ||
			!strings.Contains(body, `opentaco_http_requests_total{method="POST",route="/v1/units/:id/upload",status="200"} 1`) {
			t.Fatalf("metrics: %d\n%s", resp.StatusCode, body)
		}
		if strings.Contains(body, "bk/app") || strings.Contains(body, "bk__app") {
			t.Fatal("metrics name a unit ID")
		}
	})
	t.Run("ErrNotAdmin", func(t *testing.T) {
		other := newEnv(t)
		other.server = e.server
		resp, err := http.Post(e.server+"/v1/tokens", "application/json", strings.NewReader(`{"name":"n"}`))
		if err == nil {
			resp.Body.Close()
		}
		if resp == nil || resp.StatusCode != 401 {
			t.Fatalf("token create without a credential: %v %v", resp, err)
		}
		var ct struct{ Token string }
		req, _ := http.NewRequest("POST", e.server+"/v1/tokens", strings.NewReader(`{"name":"svc","owner":"nobody"}`))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&ct)
		resp.Body.Close()
		if r := other.run("", "backup", filepath.Join(t.TempDir(), "x.db"), "--token", ct.Token); r.code != 3 {
			t.Fatalf("backup by a principal without a role: %+v", r)
		}
	})
}
