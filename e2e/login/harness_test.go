// Package login runs `terraform login` and `tofu login` against the real
// server wiring (httpapi + tfe over self-signed TLS, in-process on
// 127.0.0.1:0), with and without a real OpenID provider: the example
// server of zitadel/oidc, started as a process on a free port.
//
// The test plays the browser: it reads the login URL the tool prints,
// follows it with a cookie-jar HTTP client (through the provider's login
// form, or OpenTaco's own token page), and delivers the final redirect to
// the tool's loopback listener. A stub xdg-open in PATH keeps a real
// browser from opening.
//
// The harness is package e2etest: programs are found through
// OPENTACO_TERRAFORM (else terraform on PATH), OPENTACO_TOFU and
// OPENTACO_OIDC_SERVER (else the cache of .ci/tools.sh). A missing one
// fails the test under CI and skips it elsewhere.
package login

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// The example OP.
const (
	opClient   = "web"    // a confidential client of the example OP
	opSecret   = "secret" // its secret
	opPassword = "verysecure"
	opSubject  = "id1" // the user test-user@localhost
)

// runTimeout bounds each tool run of the package.
const runTimeout = 2 * time.Minute

// ---------------------------------------------------------------------------
// Tool runs

// sandbox is a HOME, a configuration directory and a bin directory whose
// stub xdg-open records URLs instead of opening them.
//
// No TF_CLI_CONFIG_FILE is set: with it, terraform and tofu skip the CLI
// config directory, and with it credentials.tfrc.json, so the token that
// `login` stores would never be read. HOME is the sandbox's own; there is
// no TF_DATA_DIR.
type sandbox struct {
	srv *server
	box *e2etest.Sandbox
}

func newSandbox(t *testing.T, tl e2etest.Tool, srv *server) *sandbox {
	t.Helper()
	box := e2etest.NewSandbox(t, e2etest.SandboxConfig{NoCLIConfig: true, NoDataDir: true, CAFile: srv.CAPath, StubBrowsers: true})
	if tl.Name == "terraform" {
		// Terraform 1.11 cannot save the token unless ~/.terraform.d exists
		// (it does not create it; checkpoint, which we disable, usually has).
		if err := os.MkdirAll(filepath.Join(box.Home, ".terraform.d"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return &sandbox{srv: srv, box: box}
}

// urlRE finds the login URL the tool prints.
var urlRE = regexp.MustCompile(`https://\S+/oauth/authorization\?\S+`)

// login runs `<tool> login <host>`, answers "yes", waits for the login URL
// it prints, passes it to browse (which returns the loopback redirect) and
// delivers that redirect.
func (sb *sandbox) login(t *testing.T, tl e2etest.Tool, browse func(authURL string) string) e2etest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := sb.box.Command(ctx, tl, e2etest.RunOpts{Interactive: true, Stdin: strings.NewReader("yes\n")}, "login", sb.srv.Host)
	var stdout, stderr e2etest.SyncBuffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, pw), &stderr
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := urlRE.FindString(e2etest.StripANSI(sc.Text())); m != "" {
				select {
				case found <- m:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	var err error
	select {
	case authURL := <-found:
		deliver(t, browse(authURL))
		err = <-exited
	case err = <-exited:
		t.Errorf("%s login exited before printing a login URL", tl.Name)
	}
	res := e2etest.Result{Stdout: e2etest.StripANSI(stdout.String()), Stderr: e2etest.StripANSI(stderr.String()), Dur: time.Since(start)}
	res.Code = e2etest.ExitCode(ctx, err)
	t.Logf("%s login %s → exit %d in %s", tl.Name, sb.srv.Host, res.Code, res.Dur.Round(time.Millisecond))
	if res.Code != 0 {
		t.Fatalf("%s login: exit %d:\n%s", tl.Name, res.Code, e2etest.Tail(res.Out(), 3000))
	}
	return res
}

// storedToken reads the token the tool stored for the server.
func (sb *sandbox) storedToken(t *testing.T, tl e2etest.Tool) string {
	t.Helper()
	path := filepath.Join(sb.box.Home, ".terraform.d", "credentials.tfrc.json")
	b, err := os.ReadFile(path)
	if err != nil {
		var found []string
		_ = filepath.WalkDir(sb.box.Home, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				found = append(found, p)
			}
			return nil
		})
		t.Fatalf("%s: %v; files under HOME: %v", tl.Name, err, found)
	}
	var doc struct {
		Credentials map[string]struct {
			Token string `json:"token"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Credentials[sb.srv.Host].Token == "" {
		t.Fatalf("%s: %s holds no token for %s: %s (%v)", tl.Name, path, sb.srv.Host, b, err)
	}
	return doc.Credentials[sb.srv.Host].Token
}

// run runs tl in the configuration directory, non-interactively, and
// fails the test unless it exits 0.
func (sb *sandbox) run(t *testing.T, tl e2etest.Tool, args ...string) e2etest.Result {
	t.Helper()
	return sb.box.MustRunWith(t, tl, e2etest.RunOpts{Timeout: runTimeout}, args...)
}

// cloudConfig writes a configuration with a cloud block for workspace ws
// and one built-in resource.
func (sb *sandbox) cloudConfig(t *testing.T, ws string) {
	t.Helper()
	e2etest.WriteFile(t, filepath.Join(sb.box.Dir, "main.tf"), fmt.Appendf(nil, `%s
resource "terraform_data" "r" {
  input = "one"
}
`, e2etest.CloudBlock(sb.srv.Host, "acme", ws)))
}
