package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// UnitStatusCmd shows the colour of one unit, or of every unit under a
// prefix, and exits 2 unless all are green (for CI gates).
type UnitStatusCmd struct {
	ID     string `arg:"" optional:"" name:"id" help:"Unit ID; without it, every unit (under --prefix)."`
	Prefix string `help:"Only units whose ID starts with this string."`
}

// notGreen ends a status command whose units are not all green: exit
// code 2, a one-line note on stderr.
type notGreen struct{ red, yellow int }

func (e *notGreen) Error() string {
	return fmt.Sprintf("not all green: %d red, %d yellow", e.red, e.yellow)
}

// ExitCode is the process exit code of the error.
func (e *notGreen) ExitCode() int { return 2 }

func (c *UnitStatusCmd) Run(g *Globals) error {
	if c.ID != "" && c.Prefix != "" {
		return store.Errorf(store.EINVALID, "give a unit ID or --prefix, not both")
	}
	client := g.client()
	var list []*store.Status
	var answer any // what -o json prints: the server's answer
	if c.ID != "" {
		id, err := store.ParseID(c.ID)
		if err != nil {
			return err
		}
		st, err := client.UnitStatus(g.ctx, id)
		if err != nil {
			return err
		}
		list, answer = []*store.Status{st}, st
	} else {
		all, err := client.Statuses(g.ctx, c.Prefix)
		if err != nil {
			return err
		}
		list, answer = all.Units, all
		if len(list) == 0 { // a mistyped prefix must not pass a CI gate
			return store.Errorf(store.ENOTFOUND, "no units match prefix %q", c.Prefix)
		}
	}
	if err := g.printStatuses(list, answer, client); err != nil {
		return err
	}
	ng := &notGreen{}
	for _, st := range list {
		switch st.Status {
		case "red":
			ng.red++
		case "yellow":
			ng.yellow++
		}
	}
	if ng.red+ng.yellow > 0 {
		return ng
	}
	return nil
}

// printStatuses writes asJSON with -o json, else the table UNIT, STATUS,
// PENDING, FIRST OFFENDER, coloured on a terminal.
func (g *Globals) printStatuses(list []*store.Status, asJSON any, client *httpapi.Client) error {
	if g.jsonOutput() {
		return g.printJSON(asJSON)
	}
	off := &offenders{g: g, client: client, known: map[string]*store.Status{}}
	for _, st := range list {
		off.known[st.UnitID] = st
	}
	rows := make([][]string, len(list))
	for i, st := range list {
		rows[i] = []string{st.UnitID, st.Status, strconv.Itoa(st.Summary.Pending), off.of(st)}
	}
	colour := isTerminal(g.stdout)
	return writeAligned(g.stdout, []string{"UNIT", "STATUS", "PENDING", "FIRST OFFENDER"}, rows, func(col int, cell string) string {
		if !colour || col != 1 {
			return cell
		}
		return map[string]string{"red": "\x1b[31m", "yellow": "\x1b[33m", "green": "\x1b[32m"}[cell] + cell + "\x1b[0m"
	})
}

// offenders names why a unit is not green: for a red unit its first
// pending edge (FROM/OUTPUT), for a yellow one the nearest red unit
// upstream, found through the statuses at hand and, beyond them, at most
// maxFetch more requests.
type offenders struct {
	g       *Globals
	client  *httpapi.Client
	known   map[string]*store.Status
	fetched int
}

const maxFetch = 200

func (o *offenders) of(st *store.Status) string {
	switch st.Status {
	case "red":
		if e := st.FirstOffender(); e != nil {
			return e.FromUnitID + "/" + e.FromOutput
		}
	case "yellow":
		if red := o.redUpstream(st); red != "" {
			return red + " (upstream)"
		}
	}
	return "-"
}

// redUpstream walks the incoming edges breadth-first to a red unit.
func (o *offenders) redUpstream(st *store.Status) string {
	seen := map[string]bool{st.UnitID: true}
	queue := []*store.Status{st}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, e := range cur.Incoming {
			if seen[e.FromUnitID] {
				continue
			}
			seen[e.FromUnitID] = true
			up := o.status(e.FromUnitID)
			if up == nil {
				continue
			} else if up.Status == "red" {
				return up.UnitID
			} else if up.Status == "yellow" {
				queue = append(queue, up)
			}
		}
	}
	return ""
}

func (o *offenders) status(id string) *store.Status {
	if st, ok := o.known[id]; ok {
		return st
	} else if o.fetched >= maxFetch {
		return nil
	}
	o.fetched++
	st, err := o.client.UnitStatus(o.g.ctx, id)
	if err != nil {
		st = nil
	}
	o.known[id] = st
	return st
}

// isTerminal reports whether w is a terminal that takes colours.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writeAligned writes a table in columns two spaces apart; style may wrap
// a cell in escape codes, which do not count towards the column width.
func writeAligned(w io.Writer, header []string, rows [][]string, style func(col int, cell string) string) error {
	width := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, cell := range r {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for n, r := range append([][]string{header}, rows...) {
		for i, cell := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if n > 0 {
				cell = style(i, cell)
			}
			if i == len(r)-1 {
				pad = ""
			} else {
				pad += "  "
			}
			b.WriteString(cell + pad)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
