// Package cloud runs the real terraform and tofu binaries against
// OpenTaco's Terraform Cloud surface (package tfe: the cloud block, the
// remote backend and the raw TFE API v2), over TLS, with the server wiring
// of main.go started in-process on 127.0.0.1:0.
//
// The harness is package e2etest: tools are found through
// OPENTACO_TERRAFORM (else terraform on PATH) and OPENTACO_TOFU (else the
// cache of .ci/tools.sh); a missing tool fails the test under CI and skips
// it elsewhere. Every tool run gets its own HOME, a CLI config file holding
// only a credentials block for the server, SSL_CERT_FILE = the server's CA,
// TF_IN_AUTOMATION=1, CHECKPOINT_DISABLE=1 and TF_INPUT=0, and nothing else
// from the TF_* environment of the caller (no TF_DATA_DIR: the tool keeps
// its data in the configuration directory). Configurations use built-ins
// only, so nothing leaves the loopback interface.
//
// Every test starts its own server per tool, so workspace names, tags and
// lock holders never leak between tests; the names still differ per tool
// so that a log line always says which run it came from.
package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// org is the organization every test uses.
const org = "acme"

// Tokens. With AuthDisabled any bearer token is accepted, and each
// distinct token is a distinct principal (a distinct lock holder).
const (
	tok  = "tok-alice-0123456789"
	tok2 = "tok-bob-0123456789"
	tok3 = "tok-carol-0123456789"
)

// ---------------------------------------------------------------------------
// Configurations and tool runs

// config is one sandboxed configuration directory: the fixture and
// backend.tf, and a CLI config with the credentials block for srv.
type config struct {
	srv *server
	sb  *e2etest.Sandbox
}

// newConfig copies the fixture testdata/cloud/<fixture> into a fresh sandbox,
// adds backend.tf holding backendHCL, and writes a CLI config whose
// credentials block gives token for the server's host.
func newConfig(t *testing.T, srv *server, fixture, backendHCL, token string) *config {
	t.Helper()
	return &config{srv: srv, sb: e2etest.NewSandbox(t, e2etest.SandboxConfig{
		Fixture:   filepath.Join("testdata", "cloud", fixture),
		Backend:   backendHCL,
		CLIConfig: e2etest.CredentialsBlock(srv.Host, token),
		NoDataDir: true,
		CAFile:    srv.CAPath,
	})}
}

// setToken rewrites the CLI config so that later runs use token.
func (c *config) setToken(t *testing.T, token string) {
	t.Helper()
	c.sb.SetCLIConfig(t, e2etest.CredentialsBlock(c.srv.Host, token))
}

// cloudBlock is the cloud block for workspace ws (name strategy).
func cloudBlock(host, ws string) string { return e2etest.CloudBlock(host, org, ws) }

// withStdin are the run options giving the tool stdin as its standard
// input (for the prompts that the CLI shows even with TF_INPUT=0).
func withStdin(stdin string) e2etest.RunOpts {
	return e2etest.RunOpts{Stdin: strings.NewReader(stdin)}
}

// command builds the sandboxed command for one run.
func (c *config) command(ctx context.Context, tl e2etest.Tool, args ...string) *exec.Cmd {
	return c.sb.Command(ctx, tl, e2etest.RunOpts{}, args...)
}

// run runs tl in c with the default timeout and an empty stdin.
func (c *config) run(t *testing.T, tl e2etest.Tool, args ...string) e2etest.Result {
	t.Helper()
	return c.runStdin(t, tl, "", args...)
}

// runStdin is run with stdin as the tool's standard input.
func (c *config) runStdin(t *testing.T, tl e2etest.Tool, stdin string, args ...string) e2etest.Result {
	t.Helper()
	return c.sb.RunWith(t, tl, withStdin(stdin), args...)
}

// mustRun runs tl and fails the test unless it exits 0.
func (c *config) mustRun(t *testing.T, tl e2etest.Tool, args ...string) e2etest.Result {
	t.Helper()
	return c.sb.MustRunWith(t, tl, withStdin(""), args...)
}

// mustFail runs tl and fails the test unless it exits 1 with an output
// containing want (when want is not empty).
func (c *config) mustFail(t *testing.T, tl e2etest.Tool, want string, args ...string) e2etest.Result {
	t.Helper()
	return c.sb.MustFailWith(t, tl, withStdin(""), args, want)
}

// statePull runs `state pull` and returns its output without the one
// trailing newline the CLI adds.
func (c *config) statePull(t *testing.T, tl e2etest.Tool) []byte {
	t.Helper()
	return c.sb.StatePull(t, tl, withStdin(""))
}

// ---------------------------------------------------------------------------
// States

// editState returns state with serial (and lineage, when not empty)
// replaced; other fields are kept.
func editState(t *testing.T, state []byte, serial int64, lineage string) []byte {
	t.Helper()
	var m map[string]any
	e2etest.MustJSON(t, state, &m)
	m["serial"] = serial
	if lineage != "" {
		m["lineage"] = lineage
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// sameJSON reports whether a and b hold equal JSON values.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	e2etest.MustJSON(t, a, &va)
	e2etest.MustJSON(t, b, &vb)
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// hostOf returns the host:port of an absolute URL, or "" if it is not one.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() {
		return ""
	}
	return p.Host
}
