package cli

import (
	"time"

	"github.com/opentaco/opentaco/store"
)

// UnitAcquireCmd takes a unit's lock, waiting while another holder has it.
type UnitAcquireCmd struct {
	UnitLockCmd
	Timeout time.Duration `default:"5m" help:"How long to wait for the lock (0: try once)."`
}

// Run retries with a growing pause (1 s doubling to 16 s) until the lock
// is taken or the timeout passes; then it fails with the holder named.
func (c *UnitAcquireCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(c.Timeout)
	pause := time.Second
	for waited := false; ; waited = true {
		l, err := g.client().Lock(g.ctx, id, store.Lock{ID: c.LockID, Operation: c.Operation, Info: c.Info})
		if err == nil {
			return g.rememberAndShow(id, l)
		} else if store.ErrorCode(err) != store.ELOCKED || time.Now().Add(pause).After(deadline) {
			return err
		}
		if !waited {
			held := store.ErrorLock(err)
			g.notef("Waiting up to %s for the lock of %s, held by %q (lock %s)...", c.Timeout, id, held.Who, held.ID)
		}
		select {
		case <-g.ctx.Done():
			return g.ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 16*time.Second)
	}
}

// UnitReleaseCmd releases a lock taken with acquire; it is unlock.
type UnitReleaseCmd struct {
	UnitUnlockCmd
}
