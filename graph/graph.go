package graph

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Edge states (SPEC §5).
const (
	Pending = "pending" // the source's output changed since the target consumed it
	Unknown = "unknown" // the source has not written the output (or is encrypted)
	OK      = "ok"      // the target consumed the current value
)

// MaxNameLength bounds output and input names.
const MaxNameLength = 256

// Edge is one stored edge: unit To consumes output FromOutput of unit From
// as its input ToInput. InDigest is the digest of the source's current
// output ("" while unknown), OutDigest the digest the target last
// consumed. An edge exists because it was declared, inferred from a
// terraform_remote_state data source of To, or both.
type Edge struct {
	ID         string
	From       string
	FromOutput string
	To         string
	ToInput    string
	Declared   bool
	Inferred   bool
	InDigest   string
	OutDigest  string
	LastInAt   time.Time // when InDigest last changed to a new digest
	LastOutAt  time.Time // when To last consumed
}

// NewEdge returns the edge from:fromOutput → to:toInput with its ID;
// toInput "" means fromOutput.
func NewEdge(from, fromOutput, to, toInput string) Edge {
	if toInput == "" {
		toInput = fromOutput
	}
	return Edge{ID: EdgeID(from, fromOutput, to, toInput), From: from, FromOutput: fromOutput, To: to, ToInput: toInput}
}

// State is the edge's state: pending, unknown or ok.
func (e *Edge) State() string { return EdgeState(e.InDigest, e.OutDigest) }

// EdgeState is the state of an edge with these digests.
func EdgeState(in, out string) string {
	switch {
	case in == "":
		return Unknown
	case in != out:
		return Pending
	}
	return OK
}

// Produce applies a write of the edge's source: digest is the digest of
// its FromOutput in the new state, "" when the state lacks it or cannot be
// read (encrypted). It reports whether the edge changed.
func (e *Edge) Produce(digest string, now time.Time) bool {
	if e.InDigest == digest {
		return false
	}
	e.InDigest = digest
	if digest != "" {
		e.LastInAt = now
	}
	return true
}

// Consume applies a write of the edge's target: a known value counts as
// consumed. It reports whether the edge changed (LastOutAt always moves).
func (e *Edge) Consume(now time.Time) bool {
	if e.InDigest == "" {
		return false
	}
	e.OutDigest, e.LastOutAt = e.InDigest, now
	return true
}

// inferredOnly reports whether the edge exists through inference alone.
func (e *Edge) inferredOnly() bool { return e.Inferred && !e.Declared }

// EdgeInfo is an edge as answers show it: IDs, names, digests and times,
// never values. ToUnitID is left out of a unit's status (it is the unit).
// Inferred is true for an edge that exists through inference alone.
type EdgeInfo struct {
	EdgeID     string     `json:"edge_id"`
	FromUnitID string     `json:"from_unit_id"`
	FromOutput string     `json:"from_output"`
	ToUnitID   string     `json:"to_unit_id,omitempty"`
	ToInput    string     `json:"to_input"`
	Inferred   bool       `json:"inferred"`
	Status     string     `json:"status"`
	InDigest   string     `json:"in_digest"`
	OutDigest  string     `json:"out_digest"`
	LastInAt   *time.Time `json:"last_in_at"`
	LastOutAt  *time.Time `json:"last_out_at"`
}

// Info returns the answer form of e.
func (e *Edge) Info() EdgeInfo {
	return EdgeInfo{
		EdgeID: e.ID, FromUnitID: e.From, FromOutput: e.FromOutput, ToUnitID: e.To, ToInput: e.ToInput,
		Inferred: e.inferredOnly(), Status: e.State(), InDigest: e.InDigest, OutDigest: e.OutDigest,
		LastInAt: timePtr(e.LastInAt), LastOutAt: timePtr(e.LastOutAt),
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// stateRank orders incoming edges: pending, unknown, ok.
var stateRank = map[string]int{Pending: 0, Unknown: 1, OK: 2}

// SortIncoming sorts incoming edges pending, unknown, ok, then by source
// unit, output, input and edge ID.
func SortIncoming(edges []EdgeInfo) {
	slices.SortFunc(edges, func(a, b EdgeInfo) int {
		if d := stateRank[a.Status] - stateRank[b.Status]; d != 0 {
			return d
		}
		return compareEach(a.FromUnitID, b.FromUnitID, a.FromOutput, b.FromOutput, a.ToInput, b.ToInput, a.EdgeID, b.EdgeID)
	})
}

// SortOutgoing sorts outgoing edges by target unit, output, input, ID.
func SortOutgoing(edges []EdgeInfo) {
	slices.SortFunc(edges, func(a, b EdgeInfo) int {
		return compareEach(a.ToUnitID, b.ToUnitID, a.FromOutput, b.FromOutput, a.ToInput, b.ToInput, a.EdgeID, b.EdgeID)
	})
}

// compareEach compares pairs (a0,b0), (a1,b1), ... in turn.
func compareEach(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// ValidName checks an output or input name: a Terraform identifier
// (letter or '_' first, then letters, digits, '_' and '-'), at most
// MaxNameLength bytes. The error names the rule broken.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("name is %d bytes; the limit is %d", len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return fmt.Errorf("name %q is not an identifier (a letter or '_', then letters, digits, '_' or '-')", name)
		}
	}
	return nil
}

// Next returns the units a unit's outgoing edges lead to.
type Next func(unit string) ([]string, error)

// FindPath returns a shortest path from → ... → to following next, or
// nil when to is not reachable (a path from a unit to itself is [from]).
// Declaring an edge a → b closes a cycle exactly when FindPath(b, a) is
// not nil; the cycle is a followed by that path.
func FindPath(from, to string, next Next) ([]string, error) {
	if from == to {
		return []string{from}, nil
	}
	parent := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		succ, err := next(u)
		if err != nil {
			return nil, err
		}
		for _, v := range succ {
			if _, seen := parent[v]; seen {
				continue
			}
			parent[v] = u
			if v == to {
				return pathTo(parent, to), nil
			}
			queue = append(queue, v)
		}
	}
	return nil, nil
}

func pathTo(parent map[string]string, to string) []string {
	var path []string
	for u := to; u != ""; u = parent[u] {
		path = append(path, u)
	}
	slices.Reverse(path)
	return path
}

// Reachable returns every unit reachable from start following next,
// start excluded unless it lies on a cycle.
func Reachable(start string, next Next) (map[string]bool, error) {
	seen := map[string]bool{}
	queue := []string{start}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		succ, err := next(u)
		if err != nil {
			return nil, err
		}
		for _, v := range succ {
			if !seen[v] {
				seen[v] = true
				queue = append(queue, v)
			}
		}
	}
	return seen, nil
}

// Ref is one output a unit reads from another unit through a
// terraform_remote_state data source: it infers the edge
// From:Output → unit:Output.
type Ref struct {
	From   string
	Output string
}

// Reconcile applies the inferred references of a new state of unit to to
// its incoming edges: an inferred edge whose reference is gone loses its
// inferred flag and is dropped unless it is also declared; a reference to
// an existing edge marks it inferred; other references give new edges
// (without digests; the caller fills them in from the source). Returns
// the existing edges that stay, in order (some with a changed flag), the
// new ones in the order of refs, and the dropped ones. Declared edges are
// never dropped.
func Reconcile(to string, incoming []Edge, refs []Ref) (keep, added, dropped []Edge) {
	wanted := make(map[string]Ref, len(refs))
	for _, r := range refs {
		wanted[EdgeID(r.From, r.Output, to, r.Output)] = r
	}
	existing := make(map[string]bool, len(incoming))
	for _, e := range incoming {
		existing[e.ID] = true
		_, want := wanted[e.ID]
		e.Inferred = want
		if e.Declared || want {
			keep = append(keep, e)
		} else {
			dropped = append(dropped, e)
		}
	}
	for _, r := range refs {
		e := NewEdge(r.From, r.Output, to, r.Output)
		if !existing[e.ID] {
			existing[e.ID] = true // a ref listed twice gives one edge
			e.Inferred = true
			added = append(added, e)
		}
	}
	return keep, added, dropped
}
