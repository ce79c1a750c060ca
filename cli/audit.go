package cli

import (
	"time"
)

// AuditCmd prints the audit trail (admins).
type AuditCmd struct {
	Unit      string        `help:"Only changes of this unit."`
	Principal string        `help:"Only changes by this principal."`
	Since     time.Duration `help:"Only changes in the last DURATION, e.g. 24h."`
	Limit     int           `help:"At most this many records (newest first)." default:"100"`
}

func (c *AuditCmd) Run(g *Globals) error {
	var since time.Time
	if c.Since > 0 {
		since = time.Now().Add(-c.Since)
	}
	list, err := g.client().Audit(g.ctx, c.Unit, c.Principal, since, c.Limit)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(list)
	}
	rows := make([][]string, len(list.Records))
	for i, r := range list.Records {
		rows[i] = []string{shortTime(r.Time), r.Principal, r.Action, r.Unit, r.Detail, r.Result, r.RequestID}
	}
	return g.printTable([]string{"TIME", "PRINCIPAL", "ACTION", "UNIT", "DETAIL", "RESULT", "REQUEST"}, rows)
}
