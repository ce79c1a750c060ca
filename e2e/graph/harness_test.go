// Package graph runs the real terraform and tofu binaries over the http
// backend against the real server wiring (httpapi.NewServer over a bbolt
// store in t.TempDir(), on 127.0.0.1:0) and checks the dependency graph:
// declared and inferred edges, unit status, exit codes of `unit status`.
//
// The harness is package e2etest: tools are found through
// OPENTACO_TERRAFORM (else terraform on PATH) and OPENTACO_TOFU (else the
// cache of .ci/tools.sh); a missing tool fails the test under CI and skips
// it elsewhere. Every tool run gets its own HOME, an empty CLI config file,
// TF_DATA_DIR, TF_IN_AUTOMATION=1, CHECKPOINT_DISABLE=1 and TF_INPUT=0,
// and nothing else from the TF_* environment of the caller; the
// configurations use built-ins only (terraform_data,
// terraform_remote_state), so nothing leaves the loopback interface.
package graph

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/cli"
	"github.com/opentaco/opentaco/e2e/e2etest"
	"github.com/opentaco/opentaco/httpapi"
)

// config is one Terraform configuration in its own sandbox (HOME, CLI
// config file, TF_DATA_DIR beside it).
type config struct {
	sb     *e2etest.Sandbox
	inited bool
}

// newConfig copies testdata/<fixture> into a fresh sandbox and adds
// backend.tf: the http backend of unit id on srv.
func newConfig(t *testing.T, srv *server, fixture, id string) *config {
	t.Helper()
	return &config{sb: e2etest.NewSandbox(t, e2etest.SandboxConfig{
		Fixture: filepath.Join("testdata", fixture),
		Backend: e2etest.HTTPBackend(srv.BackendURL(id), false),
	})}
}

// apply runs init (once) and apply -auto-approve with the given -var
// assignments ("name=value"), failing the test unless each exits 0.
func (c *config) apply(t *testing.T, tl e2etest.Tool, vars ...string) {
	t.Helper()
	if !c.inited {
		c.sb.MustRun(t, tl, "init", "-input=false")
		c.inited = true
	}
	args := []string{"apply", "-auto-approve", "-input=false"}
	for _, v := range vars {
		args = append(args, "-var", v)
	}
	c.sb.MustRun(t, tl, args...)
}

// server is the real server wiring on a loopback port, with
// authentication disabled and the server log discarded (benchmarks use it
// too).
type server struct {
	*e2etest.Server
	client *httpapi.Client
}

func startServer(t testing.TB) *server {
	t.Helper()
	s := e2etest.StartServer(t, e2etest.ServerOptions{QuietLog: true})
	return &server{Server: s, client: httpapi.NewClient(s.URL, "")}
}

// cliResult is one in-process run of the opentaco CLI.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs the opentaco CLI in-process against s.
func (s *server) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	all := append([]string{"--server", s.URL, "--config-dir", t.TempDir()}, args...)
	code := cli.Run(context.Background(), all, strings.NewReader(""), &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}
