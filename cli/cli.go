package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/alecthomas/kong"

	"github.com/opentaco/opentaco/store"
)

// Version is the binary's version, set by main.
var Version = "dev"

// Globals are the flags every client command shares.
type Globals struct {
	Server string `help:"OpenTaco server URL." env:"OPENTACO_SERVER" default:"http://127.0.0.1:8080"`
	Token  string `help:"Bearer token for the server." env:"OPENTACO_TOKEN"`
	Output string `short:"o" help:"Output format: table or json." enum:"table,json" default:"table"`
	// ConfigDir holds client state (remembered locks); empty means
	// os.UserConfigDir()/opentaco.
	ConfigDir string `name:"config-dir" help:"Directory for client state such as remembered lock IDs (default: <user config dir>/opentaco)." env:"OPENTACO_CONFIG_DIR"`

	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
	sess   *session // the credential of the run (see credentials.go)
}

// CLI is the root of the command tree.
type CLI struct {
	Globals

	Serve   ServeCmd   `cmd:"" help:"Run the OpenTaco server."`
	Login   LoginCmd   `cmd:"" help:"Log in to a server (browser, or --token-file) and set up Terraform's credentials for it."`
	Logout  LogoutCmd  `cmd:"" help:"Log out of a server: revoke the session and Terraform's token, forget the credentials."`
	Whoami  WhoamiCmd  `cmd:"" help:"Show who the server thinks you are."`
	Unit    UnitCmd    `cmd:"" help:"Manage units (state files)."`
	Dep     DepCmd     `cmd:"" help:"Manage dependencies between units (edges)."`
	Token   TokenCmd   `cmd:"" help:"Manage API tokens (for Terraform and CI)."`
	RBAC    RBACCmd    `cmd:"" name:"rbac" help:"Manage roles, permissions and assignments (admins)."`
	Audit   AuditCmd   `cmd:"" help:"Print the audit trail of changes (admins)."`
	Backup  BackupCmd  `cmd:"" help:"Save a consistent snapshot of the server's database (admins)."`
	Creds   CredsCmd   `cmd:"" help:"Print short-lived S3 credentials (AWS credential_process JSON)."`
	Version VersionCmd `cmd:"" help:"Print the version."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

func (c *VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.stdout, "opentaco", Version)
	return nil
}

// Run parses args and runs the command, returning the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cli CLI
	cli.ctx, cli.stdout, cli.stderr, cli.stdin = ctx, stdout, stderr, stdin
	exit := -1
	parser, err := kong.New(&cli,
		kong.Name("opentaco"),
		kong.Description("Self-hosted Terraform/OpenTofu state service and its client."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
		kong.UsageOnError(),
		kong.Bind(&cli.Globals),
	)
	if err != nil {
		fmt.Fprintln(stderr, "opentaco:", err)
		return 70
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 {
		return exit // --help and friends
	} else if err != nil {
		fmt.Fprintln(stderr, "opentaco:", err)
		return 64
	}
	if err := kctx.Run(); err != nil {
		fmt.Fprintln(stderr, "opentaco:", errorText(err))
		if hint := cli.authHint(err); hint != "" {
			fmt.Fprintln(stderr, "opentaco:", hint)
		}
		return exitCode(err)
	}
	return 0
}

func errorText(err error) string {
	var e *store.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// exitCode maps an error to the process exit code, by error code.
func exitCode(err error) int {
	var e *store.Error
	var x interface{ ExitCode() int } // e.g. `unit status` when not all green
	if errors.As(err, &x) {
		return x.ExitCode()
	} else if !errors.As(err, &e) {
		return 1
	}
	switch e.Code {
	case store.EINVALID:
		return 2
	case store.EUNAUTHORIZED, store.EFORBIDDEN:
		return 3
	case store.ENOTFOUND:
		return 4
	case store.ECONFLICT:
		return 5
	case store.ELOCKED:
		return 6
	case store.ETOOLARGE:
		return 7
	}
	return 1
}
