package cli

import (
	"io"
	"os"
	"strconv"
	"time"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// UnitCmd groups the unit commands.
type UnitCmd struct {
	Create   UnitCreateCmd   `cmd:"" help:"Create an empty unit."`
	Ls       UnitLsCmd       `cmd:"" aliases:"list" help:"List units."`
	Info     UnitInfoCmd     `cmd:"" help:"Show a unit and its lock."`
	Rm       UnitRmCmd       `cmd:"" aliases:"delete" help:"Delete a unit with its versions and lock."`
	Pull     UnitPullCmd     `cmd:"" help:"Download a unit's state (current or an older version)."`
	Push     UnitPushCmd     `cmd:"" help:"Upload a state as the unit's new current version."`
	Lock     UnitLockCmd     `cmd:"" help:"Lock a unit; the lock ID is remembered for push, restore and unlock."`
	Unlock   UnitUnlockCmd   `cmd:"" help:"Release a unit's lock (the remembered one unless --id is given)."`
	Acquire  UnitAcquireCmd  `cmd:"" help:"Lock a unit, waiting while someone else holds the lock (like terraform -lock-timeout)."`
	Release  UnitReleaseCmd  `cmd:"" help:"Release the lock taken with acquire (the same as unlock)."`
	Versions UnitVersionsCmd `cmd:"" help:"List a unit's versions, newest first."`
	Restore  UnitRestoreCmd  `cmd:"" help:"Make an earlier version current again (as a new version)."`
	Status   UnitStatusCmd   `cmd:"" help:"Show whether units are up to date with what they consume (exit 2 unless all green)."`
}

// client returns the API client for the global --server, authenticated
// with --token or the stored credential (see session).
func (g *Globals) client() *httpapi.Client { return g.authClient() }

// unitArg is the positional unit ID of every unit command.
type unitArg struct {
	ID string `arg:"" name:"id" help:"Unit ID, e.g. myapp/prod."`
}

// id returns the normalised, validated unit ID. Returns EINVALID.
func (a unitArg) id() (string, error) { return store.ParseID(a.ID) }

// rememberedLock returns lockID, or when it is empty the lock ID that
// `unit lock` remembered for this server and unit.
func (g *Globals) rememberedLock(id, lockID string) (string, error) {
	if lockID != "" {
		return lockID, nil
	}
	lf, err := g.lockFile()
	if err != nil {
		return "", err
	}
	return lf.get(g.Server, id)
}

// forgetLock drops the remembered lock of a unit.
func (g *Globals) forgetLock(id string) error {
	lf, err := g.lockFile()
	if err != nil {
		return err
	}
	return lf.set(g.Server, id, "")
}

// UnitCreateCmd creates a unit.
type UnitCreateCmd struct {
	unitArg
}

func (c *UnitCreateCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	u, err := g.client().CreateUnit(g.ctx, id)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(u)
	}
	return g.printTable(unitHeader, [][]string{unitRow(u)})
}

// UnitLsCmd lists units.
type UnitLsCmd struct {
	Prefix string `help:"Only units whose ID starts with this string."`
}

func (c *UnitLsCmd) Run(g *Globals) error {
	list, err := g.client().ListUnits(g.ctx, c.Prefix)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(list)
	}
	rows := make([][]string, len(list.Units))
	for i, u := range list.Units {
		rows[i] = unitRow(u)
	}
	return g.printTable(unitHeader, rows)
}

// UnitInfoCmd shows one unit.
type UnitInfoCmd struct {
	unitArg
}

func (c *UnitInfoCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	u, err := g.client().GetUnit(g.ctx, id)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(u)
	}
	return g.printFields(unitFields(u))
}

// UnitRmCmd deletes a unit.
type UnitRmCmd struct {
	unitArg
	Force bool `help:"Delete even if the unit is locked (needs unit.force_unlock)."`
}

func (c *UnitRmCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	if err := g.client().DeleteUnit(g.ctx, id, c.Force); err != nil {
		return err
	}
	g.notef("Deleted unit %s.", id)
	return g.forgetLock(id) // its lock went with it
}

// UnitPullCmd downloads a state.
type UnitPullCmd struct {
	unitArg
	Version int64  `placeholder:"N" help:"Download version N instead of the current one."`
	File    string `short:"f" placeholder:"FILE" help:"Write the state to this file (atomically) instead of stdout."`
}

// Run writes the state bytes exactly as stored. A unit without state is
// an ENOTFOUND error, so nothing is written.
func (c *UnitPullCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	st, err := g.client().DownloadState(g.ctx, id, c.Version)
	if err != nil {
		return err
	} else if st.Data == nil {
		return store.Errorf(store.ENOTFOUND, "unit %q has no state yet", id)
	}
	if c.File == "" || c.File == "-" {
		_, err := g.stdout.Write(st.Data)
		return err
	}
	if err := writeFileAtomic(c.File, st.Data, 0o600); err != nil {
		return err
	}
	g.notef("Wrote version %d of %s (%s) to %s.", st.Version, id, humanSize(int64(len(st.Data))), c.File)
	return nil
}

// UnitPushCmd uploads a state.
type UnitPushCmd struct {
	unitArg
	File   string `short:"f" placeholder:"FILE" help:"Read the state from this file instead of stdin."`
	LockID string `name:"lock-id" help:"Lock ID to write under (default: the one remembered by 'unit lock')."`
}

func (c *UnitPushCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	lockID, err := g.rememberedLock(id, c.LockID)
	if err != nil {
		return err
	}
	in, err := c.input(g)
	if err != nil {
		return err
	}
	defer in.Close()
	v, err := g.client().Upload(g.ctx, id, in, lockID)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(v)
	}
	return g.printTable(versionHeader, [][]string{versionRow(v)})
}

// input opens -f FILE, or stdin when no file (or "-") is given. Reading
// a state from an interactive terminal is refused.
func (c *UnitPushCmd) input(g *Globals) (io.ReadCloser, error) {
	if c.File != "" && c.File != "-" {
		return os.Open(c.File)
	}
	if f, ok := g.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil, store.Errorf(store.EINVALID, "no state given: use -f FILE or pipe the state to stdin")
		}
	}
	return io.NopCloser(g.stdin), nil
}

// UnitLockCmd takes a unit's lock.
type UnitLockCmd struct {
	unitArg
	LockID    string `name:"id" help:"Lock ID to use (default: a new UUID). Locking again with the same ID succeeds."`
	Operation string `help:"What the lock is for (Terraform's Operation field)."`
	Info      string `help:"Free-form note stored with the lock."`
}

func (c *UnitLockCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	l, err := g.client().Lock(g.ctx, id, store.Lock{ID: c.LockID, Operation: c.Operation, Info: c.Info})
	if err != nil {
		return err
	}
	return g.rememberAndShow(id, l)
}

// rememberAndShow remembers a lock just taken and prints it.
func (g *Globals) rememberAndShow(id string, l *store.Lock) error {
	lf, err := g.lockFile()
	if err != nil {
		return err
	} else if err := lf.set(g.Server, id, l.ID); err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(l)
	}
	return g.printFields(lockFields(l, ""))
}

// UnitUnlockCmd releases a unit's lock.
type UnitUnlockCmd struct {
	unitArg
	LockID string `name:"id" aliases:"lock-id" help:"Lock ID to release (default: the one remembered by 'unit lock')."`
	Force  bool   `help:"Break the lock whoever holds it (needs unit.force_unlock)."`
}

func (c *UnitUnlockCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	lockID, err := g.rememberedLock(id, c.LockID)
	if err != nil {
		return err
	} else if lockID == "" && !c.Force {
		held, err := g.client().GetLock(g.ctx, id)
		if store.ErrorCode(err) == store.ENOTFOUND {
			if _, err := g.client().GetUnit(g.ctx, id); err != nil {
				return err
			}
			g.notef("Unit %s was not locked.", id)
			return nil
		} else if err != nil {
			return err
		}
		return store.Errorf(store.EINVALID, "%s is locked by %q (lock %s) and no lock ID of it is remembered for %s: pass --id %s, or --force to break the lock", id, held.Who, held.ID, g.Server, held.ID)
	}
	res, err := g.client().Unlock(g.ctx, id, lockID, c.Force)
	if err != nil {
		return err
	} else if err := g.forgetLock(id); err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(res)
	} else if !res.Unlocked {
		g.notef("Unit %s was not locked.", id)
	} else {
		g.notef("Unlocked %s (lock %s).", id, res.Lock.ID)
	}
	return nil
}

// UnitVersionsCmd lists a unit's versions.
type UnitVersionsCmd struct {
	unitArg
}

func (c *UnitVersionsCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	list, err := g.client().Versions(g.ctx, id)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(list)
	}
	rows := make([][]string, len(list.Versions))
	for i, v := range list.Versions {
		rows[i] = versionRow(v)
	}
	return g.printTable(versionHeader, rows)
}

// UnitRestoreCmd restores an earlier version.
type UnitRestoreCmd struct {
	unitArg
	Version   int64  `xor:"target" required:"" placeholder:"N" help:"Version number to restore."`
	Timestamp string `xor:"target" required:"" placeholder:"TIME" help:"Timestamp of the version to restore, exactly as 'unit versions' lists it."`
	LockID    string `name:"lock-id" help:"Lock ID to write under (default: the one remembered by 'unit lock')."`
}

func (c *UnitRestoreCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	lockID, err := g.rememberedLock(id, c.LockID)
	if err != nil {
		return err
	}
	req := httpapi.RestoreRequest{Version: c.Version, Timestamp: c.Timestamp, LockID: lockID}
	res, err := g.client().Restore(g.ctx, id, req)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(res)
	}
	return g.printFields([][2]string{
		{"Unit", res.UnitID},
		{"Restored version", strconv.FormatInt(res.RestoredVersion, 10)},
		{"Restored timestamp", res.RestoredTimestamp.UTC().Format(time.RFC3339Nano)},
		{"New version", strconv.FormatInt(res.NewVersion, 10)},
		{"Serial", strconv.FormatInt(res.Serial, 10)},
		{"Serial rewritten", yesNo(res.SerialRewritten)},
	})
}
