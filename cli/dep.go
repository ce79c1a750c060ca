package cli

import (
	"strings"

	"github.com/opentaco/opentaco/store"
)

// DepCmd groups the dependency commands.
type DepCmd struct {
	Add DepAddCmd `cmd:"" help:"Declare that unit TO consumes output OUTPUT of unit FROM (idempotent)."`
	Rm  DepRmCmd  `cmd:"" aliases:"remove" help:"Remove an edge: 'dep rm FROM:OUTPUT TO [--input NAME]' or 'dep rm TO EDGE_ID'."`
	Ls  DepLsCmd  `cmd:"" aliases:"list" help:"List a unit's incoming and outgoing edges."`
}

// edgeRef is FROM:OUTPUT.
type edgeRef struct{ from, output string }

// parseEdgeRef splits FROM:OUTPUT (a unit ID never holds ':').
// Returns EINVALID.
func parseEdgeRef(s string) (edgeRef, error) {
	from, output, ok := strings.Cut(s, ":")
	if !ok || output == "" {
		return edgeRef{}, store.Errorf(store.EINVALID, "%q is not FROM:OUTPUT (e.g. myapp/db:db_url)", s)
	}
	id, err := store.ParseID(from)
	return edgeRef{from: id, output: output}, err
}

// DepAddCmd declares an edge.
type DepAddCmd struct {
	From  string `arg:"" name:"from" placeholder:"FROM:OUTPUT" help:"Producing unit and its output, e.g. myapp/db:db_url."`
	To    string `arg:"" name:"to" help:"Consuming unit."`
	Input string `placeholder:"NAME" help:"Name of the input in TO (default: the output's name)."`
}

func (c *DepAddCmd) Run(g *Globals) error {
	ref, err := parseEdgeRef(c.From)
	if err != nil {
		return err
	}
	to, err := store.ParseID(c.To)
	if err != nil {
		return err
	}
	e, err := g.client().AddDependency(g.ctx, to, store.DependencyRequest{FromUnitID: ref.from, FromOutput: ref.output, ToInput: c.Input})
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(e)
	}
	return g.printTable(edgeHeader, [][]string{edgeRow("", e)})
}

// DepRmCmd removes an edge.
type DepRmCmd struct {
	First  string `arg:"" name:"from-or-to" placeholder:"FROM:OUTPUT|TO" help:"FROM:OUTPUT, or the consuming unit when EDGE_ID follows."`
	Second string `arg:"" name:"to-or-edge" placeholder:"TO|EDGE_ID" help:"The consuming unit, or the edge ID."`
	Input  string `placeholder:"NAME" help:"Name of the input in TO (default: the output's name)."`
}

func (c *DepRmCmd) Run(g *Globals) error {
	to, edgeID := c.First, c.Second
	var ref edgeRef
	if strings.Contains(c.First, ":") {
		var err error
		if ref, err = parseEdgeRef(c.First); err != nil {
			return err
		}
		to = c.Second
	}
	to, err := store.ParseID(to)
	if err != nil {
		return err
	}
	if ref.from != "" {
		input := c.Input
		if input == "" {
			input = ref.output
		}
		edgeID = store.EdgeID(ref.from, ref.output, to, input)
	}
	if err := g.client().RemoveDependency(g.ctx, to, edgeID); err != nil {
		return err
	}
	g.notef("Removed edge %s of %s.", edgeID, to)
	return nil
}

// DepLsCmd lists a unit's edges.
type DepLsCmd struct {
	unitArg
}

func (c *DepLsCmd) Run(g *Globals) error {
	id, err := c.id()
	if err != nil {
		return err
	}
	d, err := g.client().Dependencies(g.ctx, id)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(d)
	}
	rows := make([][]string, 0, len(d.Incoming)+len(d.Outgoing))
	for i := range d.Incoming {
		rows = append(rows, edgeRow("in", &d.Incoming[i]))
	}
	for i := range d.Outgoing {
		rows = append(rows, edgeRow("out", &d.Outgoing[i]))
	}
	return g.printTable(append([]string{"DIRECTION"}, edgeHeader...), rows)
}

var edgeHeader = []string{"FROM", "OUTPUT", "TO", "INPUT", "STATUS", "KIND", "EDGE ID"}

// edgeRow is one edge; with a direction, that comes first.
func edgeRow(direction string, e *store.EdgeInfo) []string {
	kind := "declared"
	if e.Inferred {
		kind = "inferred"
	}
	row := []string{e.FromUnitID, e.FromOutput, e.ToUnitID, e.ToInput, e.Status, kind, e.EdgeID}
	if direction != "" {
		row = append([]string{direction}, row...)
	}
	return row
}
