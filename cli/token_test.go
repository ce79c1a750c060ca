package cli_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// backendStatus is the status of a GET of unit id on the http backend
// with token as the basic-auth password, as Terraform sends it.
func (e *authEnv) backendStatus(id, token string) int {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.server+"/v1/backend/"+id, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.SetBasicAuth("terraform", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestCLI_Token(t *testing.T) {
	t.Run("Workflow", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		e.ok("", "login", "--token-file", e.tokenFile, "--no-terraform")
		e.ok("", "unit", "create", "app/prod")
		e.ok(tfstate(1), "unit", "push", "app/prod")

		r := e.run("", "token", "create", "ci")
		secret := strings.TrimSuffix(r.stdout, "\n")
		if r.code != 0 || !strings.HasPrefix(secret, authn.APITokenPrefix) || strings.Contains(secret, "\n") ||
			strings.Contains(r.stderr, secret) || !strings.Contains(r.stderr, `"ci"`) || !strings.Contains(r.stderr, "never expires") {
			t.Fatalf("token create: %+v", r)
		}
		p, code := e.me(secret)
		if code != "" || p.Subject != "admin" || p.Kind != authn.KindAPIToken {
			t.Fatalf("new token: %+v %s", p, code)
		}
		id := p.TokenID
		if !strings.Contains(r.stderr, id) {
			t.Fatalf("token create does not name the ID %s: %s", id, r.stderr)
		}
		if st := e.backendStatus("app/prod", secret); st != http.StatusOK {
			t.Fatalf("backend with the new token: %d", st)
		}

		var created httpapi.CreatedToken
		e.okJSON(&created, "", "token", "create", "short", "--expires-in", "1h")
		if !strings.HasPrefix(created.Token, authn.APITokenPrefix) || created.Expires == nil ||
			created.Expires.Sub(time.Now()) < 59*time.Minute || created.Expires.Sub(time.Now()) > 61*time.Minute {
			t.Fatalf("token create -o json --expires-in 1h: %+v", created)
		}

		out := e.ok("", "token", "ls")
		rows := lines(out)
		if strings.Join(rows[0], " ") != "ID NAME OWNER CREATED EXPIRES LAST USED REVOKED" || !strings.Contains(out, id) || !strings.Contains(out, "short") {
			t.Fatalf("token ls:\n%s", out)
		}
		for _, row := range rows[1:] {
			if row[0] == id && (row[2] != "admin" || row[4] != "-" || row[5] == "-" || row[6] != "no") {
				t.Fatalf("token ls row of %s: %v", id, row)
			}
		}
		var list httpapi.TokenList
		e.okJSON(&list, "", "token", "ls", "--all")
		if list.Count < 3 { // bootstrap admin, ci, short
			t.Fatalf("token ls --all: %+v", list)
		}

		r = e.run("", "token", "revoke", id)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "Revoked") {
			t.Fatalf("token revoke: %+v", r)
		}
		if _, code := e.me(secret); code != store.EUNAUTHORIZED {
			t.Fatalf("/v1 with a revoked token: %q, want unauthorized", code)
		}
		if st := e.backendStatus("app/prod", secret); st != http.StatusUnauthorized {
			t.Fatalf("backend with a revoked token: %d, want 401", st)
		}
		for _, row := range lines(e.ok("", "token", "ls"))[1:] {
			if row[0] == id && row[len(row)-1] != "yes" {
				t.Fatalf("token ls after revoke: %v", row)
			}
		}
		e.fail(4, "", "token", "revoke", "at-unknown")
		e.fail(2, "", "token", "create", "x", "--expires-in=-1h")
	})

	t.Run("NotAdmin", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		pair := e.session("erin")
		e.store(&storedCred{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken, ExpiresAt: time.Now().Add(time.Hour)})
		secret := strings.TrimSpace(e.ok("", "token", "create", "mine"))
		p, _ := e.me(secret)
		if p == nil || p.Subject != "erin" {
			t.Fatalf("token of erin: %+v", p)
		}
		if rows := lines(e.ok("", "token", "ls")); len(rows) != 2 || rows[1][2] != "erin" {
			t.Fatalf("token ls of erin: %v", rows)
		}
		// The admin's tokens are not erin's business (every principal is
		// an admin until RBAC exists, so only check what is listed).
		list, err := httpapi.NewClient(e.server, e.admin).ListTokens(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range list.Tokens {
			if tok.Owner != "admin" {
				t.Fatalf("admin's list holds %+v", tok)
			}
		}
	})

	t.Run("ErrNotLoggedIn", func(t *testing.T) {
		e := newAuthEnv(t, authn.Config{})
		e.fail(3, "", "token", "ls")
		e.fail(3, "", "token", "create", "x")
		e.fail(3, "", "token", "revoke", "at-x")
	})
}
