package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Versions of the programs that .ci/tools.sh installs into the cache.
const (
	TofuVersion = "v1.10.7" // keep in step with .ci/tools.sh
	OIDCVersion = "v3.52.0" // keep in step with .ci/tools.sh
)

// Tool is one Terraform-compatible CLI.
type Tool struct {
	Name string // "terraform" or "tofu"
	Path string
}

// Short is a tag for names that must differ per tool: "tf" or "tofu".
func (tl Tool) Short() string {
	if tl.Name == "terraform" {
		return "tf"
	}
	return tl.Name
}

var versionsLogged sync.Map // path → true once its version was logged

// Need returns path when it names an executable file. Otherwise it fails
// the test when CI is set and skips it elsewhere, saying how to provide
// the program.
func Need(t testing.TB, name, path, how string) string {
	t.Helper()
	if fi, err := os.Stat(path); path == "" || err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		msg := fmt.Sprintf("%s not found (looked at %q): %s", name, path, how)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Cached is the path of file in the cache of .ci/tools.sh
// ($HOME/.cache/opentaco-test), or "" when there is no home directory.
func Cached(file string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "opentaco-test", file)
}

// FindTool locates terraform (OPENTACO_TERRAFORM, else PATH) or tofu
// (OPENTACO_TOFU, else the cache), or fails (CI) / skips (elsewhere) the
// test. The version of each binary is logged once per test process.
func FindTool(t testing.TB, name string) Tool {
	t.Helper()
	var path, how string
	switch name {
	case "terraform":
		how = "set OPENTACO_TERRAFORM or put terraform on PATH"
		if path = os.Getenv("OPENTACO_TERRAFORM"); path == "" {
			path, _ = exec.LookPath("terraform")
		}
	case "tofu":
		how = "set OPENTACO_TOFU or run .ci/tools.sh tofu"
		if path = os.Getenv("OPENTACO_TOFU"); path == "" {
			path = Cached("tofu-" + TofuVersion)
		}
	default:
		t.Fatalf("unknown tool %q", name)
	}
	path = Need(t, name, path, how)
	if _, seen := versionsLogged.LoadOrStore(path, true); !seen {
		cmd := exec.Command(path, "version")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1"}
		out, _ := cmd.Output()
		line, _, _ := strings.Cut(string(out), "\n")
		t.Logf("using %s: %s (%s)", name, line, path)
	}
	return Tool{Name: name, Path: path}
}

// ForEachTool runs fn as parallel subtests "terraform" and "tofu".
func ForEachTool(t *testing.T, fn func(t *testing.T, tl Tool)) {
	t.Helper()
	for _, name := range []string{"terraform", "tofu"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, FindTool(t, name))
		})
	}
}

// FindOIDCServer locates the example OpenID provider of zitadel/oidc
// (OPENTACO_OIDC_SERVER, else the cache), or fails (CI) / skips
// (elsewhere) the test.
func FindOIDCServer(t testing.TB) string {
	t.Helper()
	path := os.Getenv("OPENTACO_OIDC_SERVER")
	if path == "" {
		path = Cached("oidc-server-" + OIDCVersion)
	}
	return Need(t, "the zitadel/oidc example server", path, "set OPENTACO_OIDC_SERVER or run .ci/tools.sh oidc")
}
