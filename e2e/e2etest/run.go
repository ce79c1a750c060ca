package e2etest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout bounds a tool run whose RunOpts give no Timeout.
const DefaultTimeout = 3 * time.Minute

// RunOpts are the per-run choices of Sandbox.RunWith and Command; the zero
// value is a non-interactive run with no standard input and the default
// timeout.
type RunOpts struct {
	Env         []string      // added to the sandbox's environment
	Stdin       io.Reader     // standard input; nil for none
	Timeout     time.Duration // 0: DefaultTimeout
	Interactive bool          // leave TF_IN_AUTOMATION and TF_INPUT unset
}

// Result is the outcome of one run. Output has ANSI colours removed.
type Result struct {
	Stdout, Stderr string
	Code           int // -1 when the run did not finish (timeout, start failure)
	Dur            time.Duration
}

// Out is stdout and stderr together, for message checks.
func (r Result) Out() string { return r.Stdout + "\n" + r.Stderr }

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// StripANSI removes ANSI colour and cursor sequences from s.
func StripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// Tail is the last n bytes of s, marked with a leading "…" when cut.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Command is the command running tl with args in sb.Dir with the
// sandboxed environment (see Env) and o.Stdin, killed when ctx ends.
func (sb *Sandbox) Command(ctx context.Context, tl Tool, o RunOpts, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tl.Path, args...)
	cmd.Dir = sb.Dir
	cmd.Env = sb.Env(o)
	cmd.Stdin = o.Stdin
	cmd.WaitDelay = 5 * time.Second // a local-exec child may hold the pipes
	return cmd
}

// ExitCode is the exit code of a command that Wait or Run answered with
// err: -1 when it did not finish (ctx ended, or it could not start).
func ExitCode(ctx context.Context, err error) int {
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return -1
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		return -1
	}
	return 0
}

// Run runs tl with args in sb with the default RunOpts.
func (sb *Sandbox) Run(t testing.TB, tl Tool, args ...string) Result {
	t.Helper()
	return sb.RunWith(t, tl, RunOpts{}, args...)
}

// RunWith runs tl with args in sb. A run that does not finish (timeout,
// start failure) is a test error; any exit code is returned, and a
// non-zero one logs the output. Safe to call from several goroutines.
func (sb *Sandbox) RunWith(t testing.TB, tl Tool, o RunOpts, args ...string) Result {
	t.Helper()
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := sb.Command(ctx, tl, o, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := Result{Stdout: StripANSI(stdout.String()), Stderr: StripANSI(stderr.String()), Dur: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.Code = -1
		t.Errorf("%s %s: timed out after %s", tl.Name, strings.Join(args, " "), timeout)
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	case err != nil:
		res.Code = -1
		t.Errorf("%s %s: %v", tl.Name, strings.Join(args, " "), err)
	}
	t.Logf("%s %s → exit %d in %s", tl.Name, strings.Join(args, " "), res.Code, res.Dur.Round(time.Millisecond))
	if res.Code != 0 {
		t.Logf("output:\n%s", Tail(res.Out(), 3000))
	}
	return res
}

// MustRun is Run, failing the test unless tl exits 0.
func (sb *Sandbox) MustRun(t testing.TB, tl Tool, args ...string) Result {
	t.Helper()
	return sb.MustRunWith(t, tl, RunOpts{}, args...)
}

// MustRunWith is RunWith, failing the test unless tl exits 0.
func (sb *Sandbox) MustRunWith(t testing.TB, tl Tool, o RunOpts, args ...string) Result {
	t.Helper()
	res := sb.RunWith(t, tl, o, args...)
	if res.Code != 0 {
		t.Fatalf("%s %s: exit %d, want 0", tl.Name, strings.Join(args, " "), res.Code)
	}
	return res
}

// MustFailWith is RunWith, failing the test (and going on) unless tl
// exits 1 with an output that holds every one of wants.
func (sb *Sandbox) MustFailWith(t testing.TB, tl Tool, o RunOpts, args []string, wants ...string) Result {
	t.Helper()
	res := sb.RunWith(t, tl, o, args...)
	if res.Code != 1 {
		t.Errorf("%s %s: exit %d, want 1; output:\n%s", tl.Name, strings.Join(args, " "), res.Code, Tail(res.Out(), 2000))
	}
	for _, w := range wants {
		if !strings.Contains(res.Out(), w) {
			t.Errorf("%s %s: output lacks %q:\n%s", tl.Name, strings.Join(args, " "), w, Tail(res.Out(), 2000))
		}
	}
	return res
}

// StatePull runs `state pull` and returns its output without the one
// trailing newline the CLI adds; it fails the test if that newline is
// missing.
func (sb *Sandbox) StatePull(t testing.TB, tl Tool, o RunOpts) []byte {
	t.Helper()
	out, ok := strings.CutSuffix(sb.MustRunWith(t, tl, o, "state", "pull").Stdout, "\n")
	if !ok {
		t.Fatalf("%s state pull: output does not end in a newline", tl.Name)
	}
	return []byte(out)
}
