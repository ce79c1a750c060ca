package graph

// Unit colours (SPEC §5).
const (
	Red    = "red"    // some incoming edge is pending
	Yellow = "yellow" // not red, but some unit upstream (any depth) is red
	Green  = "green"
)

// Node is what the colour walk needs of one unit: whether it is red and
// the units its incoming edges come from (repeats allowed).
type Node struct {
	Red  bool
	From []string
}

// NodeOf summarises a unit's incoming edges.
func NodeOf(incoming []Edge) Node {
	n := Node{From: make([]string, 0, len(incoming))}
	for i := range incoming {
		n.Red = n.Red || incoming[i].State() == Pending
		n.From = append(n.From, incoming[i].From)
	}
	return n
}

// Lookup returns the node of a unit; a unit without edges (or unknown) is
// the zero Node. The walks call it at most once per unit.
type Lookup func(unit string) (Node, error)

// ColorOf returns the colour of one unit. It walks the unit's upstream
// breadth-first and stops at the first red unit it meets, so a red or
// yellow answer often reads a small part of the upstream graph; a green
// one reads all of it.
func ColorOf(unit string, look Lookup) (string, error) {
	n, err := look(unit)
	if err != nil {
		return "", err
	} else if n.Red {
		return Red, nil
	}
	seen := map[string]bool{unit: true}
	queue := n.From
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if seen[u] {
			continue
		}
		seen[u] = true
		n, err := look(u)
		if err != nil {
			return "", err
		} else if n.Red {
			return Yellow, nil
		}
		queue = append(queue, n.From...)
	}
	return Green, nil
}

// Colors returns the colour of each of units in one pass over their
// upstream: it collects the upstream subgraph (each unit looked up once),
// then marks everything downstream of a red unit inside it. The cost is
// linear in the size of that subgraph, however many units are asked for.
func Colors(units []string, look Lookup) (map[string]string, error) {
	nodes := map[string]Node{}
	queue := append([]string(nil), units...)
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if _, seen := nodes[u]; seen {
			continue
		}
		n, err := look(u)
		if err != nil {
			return nil, err
		}
		nodes[u] = n
		queue = append(queue, n.From...)
	}
	down := make(map[string][]string, len(nodes)) // unit → units it feeds
	var reds []string
	for u, n := range nodes {
		for _, f := range n.From {
			down[f] = append(down[f], u)
		}
		if n.Red {
			reds = append(reds, u)
		}
	}
	tainted := map[string]bool{} // strictly downstream of a red unit
	for len(reds) > 0 {
		u := reds[0]
		reds = reds[1:]
		for _, v := range down[u] {
			if !tainted[v] {
				tainted[v] = true
				reds = append(reds, v)
			}
		}
	}
	out := make(map[string]string, len(units))
	for _, u := range units {
		switch {
		case nodes[u].Red:
			out[u] = Red
		case tainted[u]:
			out[u] = Yellow
		default:
			out[u] = Green
		}
	}
	return out, nil
}

// Status is the answer of GET /v1/units/{id}/status.
type Status struct {
	UnitID   string     `json:"unit_id"`
	Status   string     `json:"status"`
	Incoming []EdgeInfo `json:"incoming"`
	Summary  Summary    `json:"summary"`
}

// Summary counts a unit's incoming edges by state; Hidden counts those
// left out of Incoming because the caller may not read their source.
type Summary struct {
	OK      int `json:"incoming_ok"`
	Pending int `json:"incoming_pending"`
	Unknown int `json:"incoming_unknown"`
	Hidden  int `json:"incoming_hidden"`
}

// NewStatus builds the status answer of unit from its colour and its
// incoming edges, sorted pending, unknown, ok, then by source unit.
func NewStatus(unit, color string, incoming []Edge) *Status {
	st := &Status{UnitID: unit, Status: color, Incoming: make([]EdgeInfo, 0, len(incoming))}
	for i := range incoming {
		info := incoming[i].Info()
		info.ToUnitID = ""
		st.Incoming = append(st.Incoming, info)
		switch info.Status {
		case OK:
			st.Summary.OK++
		case Pending:
			st.Summary.Pending++
		default:
			st.Summary.Unknown++
		}
	}
	SortIncoming(st.Incoming)
	return st
}

// Hide leaves out of Incoming the edges whose source unit visible rejects
// and counts them in Summary.Hidden; the colour and the other counts
// still reflect every edge.
func (st *Status) Hide(visible func(unit string) bool) {
	kept := st.Incoming[:0]
	for _, e := range st.Incoming {
		if visible(e.FromUnitID) {
			kept = append(kept, e)
		} else {
			st.Summary.Hidden++
		}
	}
	st.Incoming = kept
}

// FirstOffender is the first pending incoming edge of a status (the order
// of Incoming puts pending first), or nil.
func (st *Status) FirstOffender() *EdgeInfo {
	if len(st.Incoming) > 0 && st.Incoming[0].Status == Pending {
		return &st.Incoming[0]
	}
	return nil
}
