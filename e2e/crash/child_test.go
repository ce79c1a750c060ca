// Package crash tests the built opentaco binary as a child process: kill -9
// in the middle of uploads, a second server on one data dir, graceful
// shutdown, and peak memory while storing a large state.
package crash

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opentaco-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "opentaco")
	build := exec.Command("go", "build", "-o", binary, "github.com/opentaco/opentaco")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building opentaco:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// child is a running `opentaco serve`.
type child struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
	done chan error
}

// startChild runs `opentaco serve` on dataDir at 127.0.0.1:0 and waits for
// its "listening" log line.
func startChild(t testing.TB, dataDir string, extra ...string) *child {
	t.Helper()
	return startServe(t, dataDir, append([]string{"--auth-disable"}, extra...)...)
}

// startServe runs `opentaco serve` with authentication unless extra
// disables it, and waits for its "listening" log line.
func startServe(t testing.TB, dataDir string, extra ...string) *child {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			c.logs.Write(append(line, '\n'))
			var rec struct{ Message, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Message == "listening" {
				addr <- rec.Addr
			}
		}
	}()
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case a := <-addr:
		c.base = "http://" + a
	case err := <-c.done:
		t.Fatalf("server exited before listening: %v\n%s", err, c.logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start\n%s", c.logs)
	}
	return c
}

// exitWithin waits for the child to end and returns its error.
func (c *child) exitWithin(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(d):
		t.Fatalf("server still running after %s", d)
		return nil
	}
}

func request(method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// vmHWM reads the peak resident set size of pid in bytes.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
