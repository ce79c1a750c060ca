package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opentaco/opentaco/graph"
)

// Layout of the dependency graph (SPEC §5). Records live with their
// target, and an index by source finds a unit's outgoing edges, so a write
// of unit U reads and writes U's own edges and nothing else.
var (
	bucketEdges     = []byte("edges")      // to \x00 edge_id → edge record (encodeEdge)
	bucketEdgesFrom = []byte("edges_from") // from \x00 edge_id → to
	bucketDigests   = []byte("digests")    // unit → JSON {output: {"d": digest, "t": changed}}
)

func edgeBuckets() [][]byte { return [][]byte{bucketEdges, bucketEdgesFrom, bucketDigests} }

// Edge is one edge of the dependency graph; EdgeInfo is its answer form
// and Status the answer of a unit's status (see package graph).
type (
	Edge     = graph.Edge
	EdgeInfo = graph.EdgeInfo
	Status   = graph.Status
)

// AuditDependency is the audited action of declaring or removing an edge.
const AuditDependency = "unit.dependency"

// EdgeID is base58(SHA-256("from\nfromOutput\nto\ntoInput")).
func EdgeID(from, fromOutput, to, toInput string) string {
	return graph.EdgeID(from, fromOutput, to, toInput)
}

// DependencyRequest declares that a unit consumes output FromOutput of
// unit FromUnitID as its input ToInput ("" = FromOutput).
type DependencyRequest struct {
	FromUnitID string `json:"from_unit_id"`
	FromOutput string `json:"from_output"`
	ToInput    string `json:"to_input,omitempty"`
}

// Dependencies are the edges of one unit.
type Dependencies struct {
	UnitID   string     `json:"unit_id"`
	Incoming []EdgeInfo `json:"incoming"`
	Outgoing []EdgeInfo `json:"outgoing"`
}

// PutDependency declares the edge req → to. It is idempotent: created is
// false when the edge already existed (declaring an inferred edge makes
// it declared as well). A new edge takes the source's current digest; it
// counts as consumed when the target was written after that output last
// changed. Returns EINVALID, ENOTFOUND (either unit), ECONFLICT (the edge
// would close a cycle; the message names it).
func (db *DB) PutDependency(to string, req DependencyRequest) (info *EdgeInfo, created bool, err error) {
	from, err := ParseID(req.FromUnitID)
	if err != nil {
		return nil, false, err
	} else if err := graph.ValidName(req.FromOutput); err != nil {
		return nil, false, Errorf(EINVALID, "from_output: %v", err)
	} else if err := graph.ValidName(req.ToInput); req.ToInput != "" && err != nil {
		return nil, false, Errorf(EINVALID, "to_input: %v", err)
	}
	err = db.update(func(tx *bolt.Tx, now time.Time) error {
		info, created = nil, false
		target := getUnit(tx, to)
		if target == nil {
			return Errorf(ENOTFOUND, "unit %q not found", to)
		} else if getUnit(tx, from) == nil {
			return Errorf(ENOTFOUND, "source unit %q not found", from)
		}
		e := graph.NewEdge(from, req.FromOutput, to, req.ToInput)
		if old, ok, err := getEdge(tx, to, e.ID); err != nil {
			return err
		} else if ok {
			i := old.Info()
			info = &i
			if old.Declared {
				return nil
			}
			old.Declared = true
			info.Inferred = false
			if err := putEdge(tx, &old); err != nil {
				return err
			}
			return db.audit(tx, now, AuditDependency, to, "declared inferred edge "+describeEdge(&old))
		}
		if path, err := graph.FindPath(to, from, outgoingTargets(tx)); err != nil {
			return err
		} else if path != nil {
			cycle := append([]string{from}, path...)
			e := Errorf(ECONFLICT, "%s:%s → %s would close the cycle %s", from, e.FromOutput, to, strings.Join(cycle, " → "))
			e.Cycle = cycle
			return e
		}
		e.Declared = true
		digests, err := sourceDigests(tx, from)
		if err != nil {
			return err
		}
		if d, ok := digests[e.FromOutput]; ok {
			e.InDigest, e.LastInAt = d.D, d.T
			if target.CurrentVersion != 0 && !target.Updated.Before(d.T) {
				e.OutDigest, e.LastOutAt = d.D, target.Updated
			}
		}
		i := e.Info()
		info, created = &i, true
		if err := putEdge(tx, &e); err != nil {
			return err
		}
		return db.audit(tx, now, AuditDependency, to, "declared "+describeEdge(&e))
	})
	return info, created, err
}

// describeEdge names an edge for the audit trail.
func describeEdge(e *Edge) string {
	return fmt.Sprintf("%s:%s → %s:%s (%s)", e.From, e.FromOutput, e.To, e.ToInput, e.ID)
}

// DeleteDependency removes edge edgeID of unit to. An edge that is also
// inferred stays as an inferred edge; an inferred edge comes back with the
// next write of its target that still holds the data source.
// Returns ENOTFOUND (unit or edge).
func (db *DB) DeleteDependency(to, edgeID string) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		if getUnit(tx, to) == nil {
			return Errorf(ENOTFOUND, "unit %q not found", to)
		}
		e, ok, err := getEdge(tx, to, edgeID)
		if err != nil {
			return err
		} else if !ok {
			return Errorf(ENOTFOUND, "unit %q has no dependency %q", to, edgeID)
		} else if e.Declared && e.Inferred {
			e.Declared = false
			err = putEdge(tx, &e)
		} else {
			err = deleteEdge(tx, &e)
		}
		if err != nil {
			return err
		}
		return db.audit(tx, now, AuditDependency, to, "removed "+describeEdge(&e))
	})
}

// Dependencies returns the incoming and outgoing edges of unit id.
// Returns ENOTFOUND.
func (db *DB) Dependencies(id string) (*Dependencies, error) {
	out := &Dependencies{UnitID: id, Incoming: []EdgeInfo{}, Outgoing: []EdgeInfo{}}
	err := db.view(func(tx *bolt.Tx) error {
		if getUnit(tx, id) == nil {
			return Errorf(ENOTFOUND, "unit %q not found", id)
		}
		in, err := incomingEdges(tx, id)
		if err != nil {
			return err
		}
		for i := range in {
			out.Incoming = append(out.Incoming, in[i].Info())
		}
		return eachOutgoing(tx, id, func(e *Edge) error {
			out.Outgoing = append(out.Outgoing, e.Info())
			return nil
		})
	})
	graph.SortIncoming(out.Incoming)
	graph.SortOutgoing(out.Outgoing)
	return out, err
}

// UnitStatus returns the status of unit id: its colour, its incoming edges
// and their counts. Returns ENOTFOUND.
func (db *DB) UnitStatus(id string) (*Status, error) {
	var out *Status
	err := db.view(func(tx *bolt.Tx) error {
		if getUnit(tx, id) == nil {
			return Errorf(ENOTFOUND, "unit %q not found", id)
		}
		in, err := incomingEdges(tx, id)
		if err != nil {
			return err
		}
		nodes := newNodeReader(tx)
		color, err := graph.ColorOf(id, func(u string) (graph.Node, error) {
			if u == id {
				return graph.NodeOf(in), nil
			}
			return nodes.node(u)
		})
		if err != nil {
			return err
		}
		out = graph.NewStatus(id, color, in)
		return nil
	})
	return out, err
}

// Statuses returns the status of every unit whose ID starts with prefix,
// sorted by ID, computed in one pass over their upstream.
func (db *DB) Statuses(prefix string) ([]*Status, error) {
	out := []*Status{}
	err := db.view(func(tx *bolt.Tx) error {
		var ids []string
		c := tx.Bucket(bucketUnits).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
			ids = append(ids, string(k))
		}
		edges := make(map[string][]Edge, len(ids))
		for _, id := range ids {
			edges[id] = nil
		}
		nodes := newNodeReader(tx)
		colors, err := graph.Colors(ids, func(u string) (graph.Node, error) {
			if _, asked := edges[u]; !asked {
				return nodes.node(u)
			}
			in, err := incomingEdges(tx, u)
			edges[u] = in
			return graph.NodeOf(in), err
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			out = append(out, graph.NewStatus(id, colors[id], edges[id]))
		}
		return nil
	})
	return out, err
}

// updateEdges applies a write of unit id to the graph, inside the write
// transaction (SPEC §5): its output digests are recorded, its outgoing
// edges take the new digests, its inferred edges follow the state's
// terraform_remote_state data sources (not for an encrypted state), and
// its incoming edges count as consumed. It touches id's own edges only.
func updateEdges(tx *bolt.Tx, id string, c *content, now time.Time) error {
	deps := c.deps
	if deps == nil {
		deps = readDeps(c.data, c.info)
	}
	digests, err := putDigests(tx, id, deps, now)
	if err != nil {
		return err
	}
	err = eachOutgoing(tx, id, func(e *Edge) error {
		if e.Produce(digests[e.FromOutput].D, now) {
			return putRecord(tx, e) // the index is being walked
		}
		return nil
	})
	if err != nil {
		return err
	}
	return consumeEdges(tx, id, deps, now)
}

// consumeEdges reconciles the inferred incoming edges of unit id with its
// new state and marks every known incoming value consumed. An inferred
// edge that would close a cycle is not added.
func consumeEdges(tx *bolt.Tx, id string, deps *stateDeps, now time.Time) error {
	in, err := incomingEdges(tx, id)
	if err != nil {
		return err
	}
	keep, added, dropped := in, []Edge(nil), []Edge(nil)
	if !deps.encrypted { // an opaque write says nothing about data sources
		keep, added, dropped = graph.Reconcile(id, in, resolveRefs(tx, id, deps.refs))
	}
	for i := range dropped {
		if err := deleteEdge(tx, &dropped[i]); err != nil {
			return err
		}
	}
	if added, err = acyclic(tx, id, in, added); err != nil {
		return err
	}
	sources := map[string]map[string]outputDigest{}
	for i := range added {
		e := &added[i]
		if _, ok := sources[e.From]; !ok {
			if sources[e.From], err = sourceDigests(tx, e.From); err != nil {
				return err
			}
		}
		if d, ok := sources[e.From][e.FromOutput]; ok {
			e.InDigest, e.LastInAt = d.D, d.T
		}
		e.Consume(now)
		if err := putEdge(tx, e); err != nil {
			return err
		}
	}
	inferred := make(map[string]bool, len(in))
	for i := range in {
		inferred[in[i].ID] = in[i].Inferred
	}
	for i := range keep {
		e := &keep[i]
		if e.Consume(now) || e.Inferred != inferred[e.ID] {
			if err := putRecord(tx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// acyclic drops the new edges into id whose source is downstream of id.
// The downstream walk runs only when a new edge comes from a unit that
// does not already feed id.
func acyclic(tx *bolt.Tx, id string, in, added []Edge) ([]Edge, error) {
	feeds := map[string]bool{}
	for i := range in {
		feeds[in[i].From] = true
	}
	var down map[string]bool
	kept := added[:0]
	for _, e := range added {
		if !feeds[e.From] && down == nil {
			var err error
			if down, err = graph.Reachable(id, outgoingTargets(tx)); err != nil {
				return nil, err
			}
		}
		if feeds[e.From] || !down[e.From] {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// deleteEdges removes every edge into or out of unit id, and its digests.
func deleteEdges(tx *bolt.Tx, id string) error {
	var doomed []Edge
	in, err := incomingEdges(tx, id)
	if err != nil {
		return err
	}
	doomed = append(doomed, in...)
	if err := eachOutgoing(tx, id, func(e *Edge) error { doomed = append(doomed, *e); return nil }); err != nil {
		return err
	}
	for i := range doomed {
		if err := deleteEdge(tx, &doomed[i]); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketDigests).Delete([]byte(id))
}

// outputDigest is one output of a unit's current state: its digest and
// when it last changed.
type outputDigest struct {
	D string    `json:"d"`
	T time.Time `json:"t"`
}

// sourceDigests returns the output digests of unit id for a new edge.
// When none are recorded but the unit has a readable state (written
// before this server kept digests, or without outputs), they are computed
// from that state and recorded, dated from its last write. A unit without
// state, or encrypted, has none.
func sourceDigests(tx *bolt.Tx, id string) (map[string]outputDigest, error) {
	if m := getDigests(tx, id); m != nil {
		return m, nil
	}
	u := getUnit(tx, id)
	if u == nil || u.CurrentVersion == 0 || u.Encrypted {
		return nil, nil
	}
	ver, err := getVersion(tx, u, u.CurrentVersion)
	if err != nil {
		return nil, err
	}
	data := getBlob(tx, ver.SHA256, ver.Size)
	if data == nil {
		return nil, fmt.Errorf("blob %s of %s version %d is missing", ver.SHA256, id, ver.Version)
	}
	info, err := ParseState(data)
	if err != nil {
		return nil, nil // stored before validation existed: no outputs to speak of
	}
	return putDigests(tx, id, readDeps(data, info), u.Updated)
}

// getDigests returns the recorded output digests of unit id (nil: none).
func getDigests(tx *bolt.Tx, id string) map[string]outputDigest {
	var m map[string]outputDigest
	if v := tx.Bucket(bucketDigests).Get([]byte(id)); v != nil {
		_ = json.Unmarshal(v, &m)
	}
	return m
}

// putDigests records the output digests of a new state of unit id,
// keeping the change time of each unchanged digest. An encrypted state
// has none.
func putDigests(tx *bolt.Tx, id string, deps *stateDeps, now time.Time) (map[string]outputDigest, error) {
	if len(deps.outputs) == 0 { // none, or encrypted
		return nil, tx.Bucket(bucketDigests).Delete([]byte(id))
	}
	old := getDigests(tx, id)
	m := make(map[string]outputDigest, len(deps.outputs))
	for name, d := range deps.outputs {
		if o, ok := old[name]; ok && o.D == d {
			m[name] = o
		} else {
			m[name] = outputDigest{D: d, T: now}
		}
	}
	return m, putJSON(tx.Bucket(bucketDigests), []byte(id), m)
}

func edgeKey(unit, id string) []byte { return []byte(unit + "\x00" + id) }

// getEdge reads edge edgeID of target unit to.
func getEdge(tx *bolt.Tx, to, edgeID string) (Edge, bool, error) {
	v := tx.Bucket(bucketEdges).Get(edgeKey(to, edgeID))
	if v == nil {
		return Edge{}, false, nil
	}
	e, err := decodeEdge(to, edgeID, v)
	return e, err == nil, err
}

// putEdge writes an edge record and its index entry.
func putEdge(tx *bolt.Tx, e *Edge) error {
	if err := putRecord(tx, e); err != nil {
		return err
	}
	return tx.Bucket(bucketEdgesFrom).Put(edgeKey(e.From, e.ID), []byte(e.To))
}

// putRecord rewrites the record of an edge whose index entry exists.
func putRecord(tx *bolt.Tx, e *Edge) error {
	return tx.Bucket(bucketEdges).Put(edgeKey(e.To, e.ID), encodeEdge(e))
}

func deleteEdge(tx *bolt.Tx, e *Edge) error {
	if err := tx.Bucket(bucketEdges).Delete(edgeKey(e.To, e.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketEdgesFrom).Delete(edgeKey(e.From, e.ID))
}

// incomingEdges returns the edges into unit id.
func incomingEdges(tx *bolt.Tx, id string) ([]Edge, error) {
	var out []Edge
	p := edgeKey(id, "")
	c := tx.Bucket(bucketEdges).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		e, err := decodeEdge(id, string(k[len(p):]), v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// eachOutgoing calls fn with each edge out of unit id. fn may rewrite the
// edge's record, not delete it.
func eachOutgoing(tx *bolt.Tx, id string, fn func(e *Edge) error) error {
	p := edgeKey(id, "")
	c := tx.Bucket(bucketEdgesFrom).Cursor()
	for k, to := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, to = c.Next() {
		e, ok, err := getEdge(tx, string(to), string(k[len(p):]))
		if err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("edge index %q names a missing edge", k)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// outgoingTargets lists the units a unit's edges lead to, from the index
// alone.
func outgoingTargets(tx *bolt.Tx) graph.Next {
	b := tx.Bucket(bucketEdgesFrom)
	return func(unit string) ([]string, error) {
		var out []string
		p := edgeKey(unit, "")
		c := b.Cursor()
		for k, to := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, to = c.Next() {
			out = append(out, string(to))
		}
		return out, nil
	}
}

// nodeReader reads what the colour walk needs of units, decoding only the
// source and the digests of each incoming edge. One cursor and key buffer
// serve every lookup of a walk.
type nodeReader struct {
	c   *bolt.Cursor
	key []byte
}

func newNodeReader(tx *bolt.Tx) *nodeReader {
	return &nodeReader{c: tx.Bucket(bucketEdges).Cursor()}
}

func (r *nodeReader) node(id string) (graph.Node, error) {
	var n graph.Node
	r.key = append(append(r.key[:0], id...), 0)
	p := r.key
	for k, v := r.c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = r.c.Next() {
		from, pending, err := decodeNode(v)
		if err != nil {
			return n, fmt.Errorf("edge %q: %w", k, err)
		}
		n.From = append(n.From, from)
		n.Red = n.Red || pending
	}
	return n, nil
}
