package cli_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMain keeps the tests away from the user's configuration and
// environment: the config dir points at a temporary directory (each test
// also passes its own --config-dir), and server/token variables are unset.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opentaco-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("OPENTACO_CONFIG_DIR", dir)
	os.Unsetenv("OPENTACO_SERVER")
	os.Unsetenv("OPENTACO_TOKEN")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
