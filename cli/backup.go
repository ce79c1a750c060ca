package cli

import (
	"os"
	"path/filepath"

	"github.com/opentaco/opentaco/store"
)

// BackupCmd saves a consistent snapshot of the server's database (admins).
type BackupCmd struct {
	File string `arg:"" type:"path" help:"Where to write the snapshot (a bbolt file: to restore, stop the server and put it in place as <data-dir>/opentaco.db)."`
}

func (c *BackupCmd) Run(g *Globals) error {
	tmp, err := os.CreateTemp(filepath.Dir(c.File), "."+filepath.Base(c.File)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := g.client().Backup(g.ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err != nil {
		return err
	} else if err := os.Rename(tmp.Name(), c.File); err != nil {
		return err
	}
	g.notef("Wrote a %d-byte snapshot to %s.", n, c.File)
	return nil
}

// CredsCmd prints short-lived S3 credentials as AWS credential_process
// JSON (credential_process = "opentaco creds --json").
type CredsCmd struct {
	JSON bool `name:"json" help:"Print the credential_process JSON (the only format)."`
}

func (c *CredsCmd) Run(g *Globals) error {
	creds, err := g.client().IssueS3Creds(g.ctx)
	if err != nil {
		return err
	} else if creds.AccessKeyID == "" {
		return store.Errorf(store.EINTERNAL, "the server returned no credentials")
	}
	return g.printJSON(creds)
}
