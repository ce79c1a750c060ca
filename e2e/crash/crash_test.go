package crash

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type ack struct {
	unit    string
	version int64
	sha     string
}

// TestCrash_KillDuringUploads kills the server with SIGKILL while eight
// clients upload, restarts it on the same data dir, and checks that every
// acknowledged version is there byte for byte and no version is partial.
func TestCrash_KillDuringUploads(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir, "--max-versions", "0")
	const clients = 8
	for i := 0; i < clients; i++ {
		if st, b, err := request("POST", c.base+"/v1/units", []byte(fmt.Sprintf(`{"id":"crash/u%d"}`, i))); err != nil || st != 201 {
			t.Fatalf("create: %d %s %v", st, b, err)
		}
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			unit := fmt.Sprintf("crash/u%d", i)
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				state := fmt.Sprintf(`{"version":4,"serial":%d,"lineage":"l%d","pad":"%s"}`, n, i, strings.Repeat("x", (n*7919)%300000))
				st, b, err := request("POST", c.base+"/v1/units/"+strings.ReplaceAll(unit, "/", "__")+"/upload", []byte(state))
				if err != nil {
					return // the server is gone
				} else if st != 200 {
					t.Errorf("upload answered %d: %s", st, b)
					return
				}
				var v struct{ Version int64 }
				if err := json.Unmarshal(b, &v); err != nil {
					t.Errorf("upload answer %s: %v", b, err)
					return
				}
				sum := sha256.Sum256([]byte(state))
				mu.Lock()
				acks = append(acks, ack{unit, v.Version, hex.EncodeToString(sum[:])})
				mu.Unlock()
			}
		}(i)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.exitWithin(t, 10*time.Second)
	close(stop)
	wg.Wait()
	if len(acks) < clients {
		t.Fatalf("only %d uploads were acknowledged before the kill; the test proves nothing", len(acks))
	}
	t.Logf("%d uploads acknowledged before SIGKILL", len(acks))

	c2 := startChild(t, dir)
	for _, a := range acks {
		url := fmt.Sprintf("%s/v1/units/%s/download?version=%d", c2.base, strings.ReplaceAll(a.unit, "/", "__"), a.version)
		st, b, err := request("GET", url, nil)
		if err != nil || st != 200 {
			t.Fatalf("acknowledged %s version %d: %d %v", a.unit, a.version, st, err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != a.sha {
			t.Fatalf("acknowledged %s version %d changed after the crash", a.unit, a.version)
		}
	}
	checkVersionsComplete(t, c2.base, clients)
}

// checkVersionsComplete downloads every listed version and checks its
// bytes against the recorded digest: a partial version would not match.
func checkVersionsComplete(t *testing.T, base string, clients int) {
	t.Helper()
	for i := 0; i < clients; i++ {
		enc := fmt.Sprintf("crash__u%d", i)
		st, b, err := request("GET", base+"/v1/units/"+enc+"/versions", nil)
		if err != nil || st != 200 {
			t.Fatalf("versions of %s: %d %v", enc, st, err)
		}
		var list struct {
			Versions []struct {
				Version int64
				SHA256  string `json:"sha256"`
			}
		}
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		for _, v := range list.Versions {
			st, data, err := request("GET", fmt.Sprintf("%s/v1/units/%s/download?version=%d", base, enc, v.Version), nil)
			if err != nil || st != 200 {
				t.Fatalf("%s version %d listed but not downloadable: %d %v", enc, v.Version, st, err)
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != v.SHA256 {
				t.Fatalf("%s version %d is partial or corrupt", enc, v.Version)
			}
		}
	}
}

// TestServe_SecondServerOnSameDataDir fails fast with a clear message.
func TestServe_SecondServerOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	startChild(t, dir)
	start := time.Now()
	out, err := runBinary("serve", "--auth-disable", "--listen", "127.0.0.1:0", "--data-dir", dir)
	if err == nil {
		t.Fatalf("second serve on the same data dir succeeded:\n%s", out)
	}
	if !strings.Contains(out, "in use") {
		t.Fatalf("second serve did not say the database is in use:\n%s", out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("second serve took %s to give up", d)
	}
}

// TestServe_GracefulShutdown: SIGTERM ends the server cleanly, and it
// restarts on the same data dir with the data intact.
func TestServe_GracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir)
	if st, _, err := request("POST", c.base+"/v1/backend/g/s", []byte(`{"serial":1}`)); err != nil || st != 200 {
		t.Fatalf("write: %d %v", st, err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.exitWithin(t, 30*time.Second); err != nil {
		t.Fatalf("server did not exit cleanly on SIGTERM: %v\n%s", err, c.logs)
	}
	c2 := startChild(t, dir)
	if st, b, err := request("GET", c2.base+"/v1/backend/g/s", nil); err != nil || st != 200 || string(b) != `{"serial":1}` {
		t.Fatalf("after restart: %d %q %v", st, b, err)
	}
}

// TestServe_AuthOnByDefault: a fresh data dir gets a bootstrap admin token
// (0600, path logged, token not); without it protected routes are 401 JSON;
// --auth-disable is refused off loopback.
func TestServe_AuthOnByDefault(t *testing.T) {
	dir := t.TempDir()
	c := startServe(t, dir, "--log-level", "info")
	tokenFile := filepath.Join(dir, "admin.token")
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("no bootstrap token file: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode = %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(tokenFile)
	token := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(token, "otc_") {
		t.Fatalf("bootstrap token %q is not an API token", token[:min(len(token), 8)])
	}
	if strings.Contains(c.logs.String(), token) {
		t.Fatal("the bootstrap token was logged")
	} else if !strings.Contains(c.logs.String(), tokenFile) {
		t.Fatalf("the token file path was not logged:\n%s", c.logs)
	}
	if st, b, _ := request("GET", c.base+"/v1/units", nil); st != 401 || !strings.Contains(string(b), `"code":"unauthorized"`) {
		t.Fatalf("GET /v1/units without a token: %d %s", st, b)
	}
	if st, _, _ := request("GET", c.base+"/healthz", nil); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
	req, _ := http.NewRequest("GET", c.base+"/v1/units", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/units with the bootstrap token: %v %v", resp, err)
	}
	resp.Body.Close()

	// A restart keeps the same token.
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.exitWithin(t, 30*time.Second)
	startServe(t, dir)
	if raw2, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(raw2)) != token {
		t.Fatal("the bootstrap token changed across a restart")
	}

	out, err := runBinary("serve", "--auth-disable", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(out, "non-loopback") {
		t.Fatalf("serve --auth-disable on 0.0.0.0: %v\n%s", err, out)
	}
}
