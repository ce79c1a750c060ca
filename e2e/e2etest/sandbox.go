package e2etest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SandboxConfig says what NewSandbox makes besides the configuration
// directory and HOME, and so which environment the runs in it get. The
// zero value is a sandbox with an empty CLI config file and its own
// TF_DATA_DIR.
type SandboxConfig struct {
	// Fixture is a directory whose files are copied into Dir, for example
	// testdata/backend/r; "" copies nothing.
	Fixture string
	// Backend, when not empty, is written to Dir/backend.tf.
	Backend string
	// CLIConfig is the content of Root/cli.tfrc, which TF_CLI_CONFIG_FILE
	// names; nil makes it an empty file.
	CLIConfig []byte
	// NoCLIConfig writes no cli.tfrc and leaves TF_CLI_CONFIG_FILE unset.
	// The tool then reads the CLI config directory under HOME
	// (~/.terraform.d, with the credentials.tfrc.json that `login`
	// writes), which it skips whenever TF_CLI_CONFIG_FILE is set.
	NoCLIConfig bool
	// NoDataDir leaves TF_DATA_DIR unset, so the tool keeps its data in
	// Dir/.terraform; otherwise TF_DATA_DIR is Root/tfdata.
	NoDataDir bool
	// CAFile, when set, is the SSL_CERT_FILE of every run: the CA of a
	// server started with TLS.
	CAFile string
	// StubBrowsers puts Root/bin first in PATH, holding xdg-open, open and
	// the like as scripts that append their argument to Root/opened.txt,
	// so that no real browser opens.
	StubBrowsers bool
}

// Sandbox is one configuration directory with the HOME and the files the
// tool runs in it use, all under a fresh t.TempDir(). See Sandbox.Run.
type Sandbox struct {
	Root      string // the sandbox
	Dir       string // Root/cfg: the configuration directory, where tools run
	Home      string // Root/home: HOME
	DataDir   string // Root/tfdata: TF_DATA_DIR, or "" when unset
	CLIConfig string // Root/cli.tfrc: TF_CLI_CONFIG_FILE, or "" when unset
	BinDir    string // Root/bin, first in PATH, or "" when not made
	CAFile    string // SSL_CERT_FILE, or "" when unset
}

var browserNames = []string{"xdg-open", "x-www-browser", "www-browser", "open", "sensible-browser"}

// NewSandbox makes a sandbox as c says.
func NewSandbox(t testing.TB, c SandboxConfig) *Sandbox {
	t.Helper()
	root := t.TempDir()
	sb := &Sandbox{Root: root, Dir: filepath.Join(root, "cfg"), Home: filepath.Join(root, "home"), CAFile: c.CAFile}
	dirs := []string{sb.Dir, sb.Home}
	if !c.NoDataDir {
		sb.DataDir = filepath.Join(root, "tfdata")
		dirs = append(dirs, sb.DataDir)
	}
	if c.StubBrowsers {
		sb.BinDir = filepath.Join(root, "bin")
		dirs = append(dirs, sb.BinDir)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if !c.NoCLIConfig {
		sb.CLIConfig = filepath.Join(root, "cli.tfrc")
		WriteFile(t, sb.CLIConfig, c.CLIConfig)
	}
	if c.StubBrowsers {
		stub := "#!/bin/sh\necho \"$1\" >> " + filepath.Join(root, "opened.txt") + "\n"
		for _, name := range browserNames {
			if err := os.WriteFile(filepath.Join(sb.BinDir, name), []byte(stub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c.Fixture != "" {
		CopyFixture(t, c.Fixture, sb.Dir)
	}
	if c.Backend != "" {
		WriteFile(t, filepath.Join(sb.Dir, "backend.tf"), []byte(c.Backend))
	}
	return sb
}

// SetCLIConfig rewrites the CLI config file, for the runs that follow.
func (sb *Sandbox) SetCLIConfig(t testing.TB, b []byte) {
	t.Helper()
	if sb.CLIConfig == "" {
		t.Fatal("the sandbox has no CLI config file (NoCLIConfig)")
	}
	WriteFile(t, sb.CLIConfig, b)
}

// CredentialsBlock is a CLI config holding only a credentials block that
// gives token for host.
func CredentialsBlock(host, token string) []byte {
	return fmt.Appendf(nil, "credentials %q {\n  token = %q\n}\n", host, token)
}

// CopyFixture copies the files of the directory src into dir.
func CopyFixture(t testing.TB, src, dir string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatalf("fixture %s: %v", src, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		WriteFile(t, filepath.Join(dir, e.Name()), b)
	}
}

// WriteFile writes b to path with mode 0600, or fails the test.
func WriteFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Env is the environment of a run in sb: PATH (behind BinDir when set),
// HOME, TMPDIR, the TF_CLI_CONFIG_FILE, TF_DATA_DIR and SSL_CERT_FILE of
// the sandbox when set, CHECKPOINT_DISABLE=1, TF_IN_AUTOMATION=1 and
// TF_INPUT=0 (unless o.Interactive), then o.Env.
func (sb *Sandbox) Env(o RunOpts) []string {
	path := os.Getenv("PATH")
	if sb.BinDir != "" {
		path = sb.BinDir + string(os.PathListSeparator) + path
	}
	env := []string{"PATH=" + path, "HOME=" + sb.Home, "TMPDIR=" + os.TempDir()}
	if sb.CLIConfig != "" {
		env = append(env, "TF_CLI_CONFIG_FILE="+sb.CLIConfig)
	}
	if sb.DataDir != "" {
		env = append(env, "TF_DATA_DIR="+sb.DataDir)
	}
	if sb.CAFile != "" {
		env = append(env, "SSL_CERT_FILE="+sb.CAFile)
	}
	env = append(env, "CHECKPOINT_DISABLE=1")
	if !o.Interactive {
		env = append(env, "TF_IN_AUTOMATION=1", "TF_INPUT=0")
	}
	return append(env, o.Env...)
}
