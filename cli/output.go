package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opentaco/opentaco/store"
)

// jsonOutput reports whether -o json was asked for.
func (g *Globals) jsonOutput() bool { return g.Output == "json" }

// printJSON writes v to stdout as indented JSON.
func (g *Globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable writes rows under header to stdout in aligned columns.
func (g *Globals) printTable(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printFields writes "Key:  value" lines to stdout, aligned.
func (g *Globals) printFields(fields [][2]string) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	return tw.Flush()
}

// notef writes a message for the human to stderr; stdout carries data only.
func (g *Globals) notef(format string, args ...any) {
	fmt.Fprintf(g.stderr, format+"\n", args...)
}

var unitHeader = []string{"ID", "SERIAL", "VERSIONS", "SIZE", "LOCKED BY", "UPDATED"}

func unitRow(u *store.Unit) []string {
	return []string{u.ID, strconv.FormatInt(u.Serial, 10), strconv.Itoa(u.VersionCount), humanSize(u.Size), lockedBy(u.Lock), shortTime(u.Updated)}
}

func unitFields(u *store.Unit) [][2]string {
	cur := "-"
	if u.CurrentVersion != 0 {
		cur = strconv.FormatInt(u.CurrentVersion, 10)
	}
	f := [][2]string{
		{"ID", u.ID},
		{"Created", shortTime(u.Created)},
		{"Updated", shortTime(u.Updated)},
		{"Size", fmt.Sprintf("%s (%d bytes)", humanSize(u.Size), u.Size)},
		{"Serial", strconv.FormatInt(u.Serial, 10)},
		{"Lineage", dash(u.Lineage)},
		{"Versions", strconv.Itoa(u.VersionCount)},
		{"Current version", cur},
		{"Encrypted", yesNo(u.Encrypted)},
		{"Locked", yesNo(u.Locked)},
	}
	if u.Lock != nil {
		f = append(f, lockFields(u.Lock, "Lock ")...)
	}
	if len(u.Labels) > 0 {
		keys := make([]string, 0, len(u.Labels))
		for k := range u.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + u.Labels[k]
		}
		f = append(f, [2]string{"Labels", strings.Join(keys, ", ")})
	}
	return f
}

func lockFields(l *store.Lock, prefix string) [][2]string {
	return [][2]string{
		{prefix + "ID", l.ID},
		{prefix + "Who", dash(l.Who)},
		{prefix + "Operation", dash(l.Operation)},
		{prefix + "Info", dash(l.Info)},
		{prefix + "Created", dash(l.Created)},
	}
}

var versionHeader = []string{"VERSION", "TIMESTAMP", "HASH", "SIZE", "SERIAL", "WHO", "SOURCE", "CURRENT"}

// versionRow shows the timestamp in full, UTC, so it can be passed to
// `unit restore --timestamp` as listed.
func versionRow(v *store.Version) []string {
	cur := ""
	if v.Current {
		cur = "*"
	}
	return []string{
		strconv.FormatInt(v.Version, 10), v.Timestamp.UTC().Format(time.RFC3339Nano), v.Hash,
		humanSize(v.Size), strconv.FormatInt(v.Serial, 10), dash(v.Who), v.Source, cur,
	}
}

func lockedBy(l *store.Lock) string {
	switch {
	case l == nil:
		return "-"
	case l.Who != "":
		return l.Who
	}
	return l.ID
}

func shortTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// humanSize formats n bytes with binary units ("512 B", "1.5 KiB").
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, unit := float64(n)/1024, 0
	for f >= 1024 && unit < 5 {
		f, unit = f/1024, unit+1
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[unit])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
