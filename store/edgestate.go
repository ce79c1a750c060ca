package store

import (
	"bytes"
	"encoding/json"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opentaco/opentaco/graph"
)

// stateDeps is what the dependency graph reads out of a written state:
// the digests of its outputs and the remote states it reads. It is
// computed before the write transaction starts (see content).
type stateDeps struct {
	encrypted bool              // opaque: no digests, no data sources (SPEC §2)
	outputs   map[string]string // output name → digest
	refs      []remoteRef       // terraform_remote_state instances that may point here
}

// remoteRef is one terraform_remote_state instance: the unit it names
// (http backend), or the host and workspace it names (remote/cloud
// backend, resolved against this server's hosts inside the transaction),
// and the names of the outputs it holds.
type remoteRef struct {
	unit      string
	hostname  string
	workspace string
	outputs   []string
}

// readDeps reads the outputs and terraform_remote_state data sources of a
// valid state in one pass of the scanner: only the top-level "outputs" and
// the data-source instances of "resources" are decoded; everything else
// (managed resources above all) is skipped byte by byte. Anything not in
// Terraform's shape is ignored, never an error: a write never fails
// because of the graph.
func readDeps(state []byte, info *StateInfo) *stateDeps {
	if info.Encrypted {
		return &stateDeps{encrypted: true}
	}
	d := &stateDeps{outputs: map[string]string{}}
	eachMember(state, skipSpace(state, 0), func(key []byte, v int) int {
		switch string(key) {
		case `"outputs"`:
			end := skipValue(state, v)
			d.outputs = graph.OutputDigests(state[v:end])
			return end
		case `"resources"`:
			var end int
			d.refs, end = remoteRefs(state, v)
			return end
		}
		return skipValue(state, v)
	})
	return d
}

// eachMember walks the object whose '{' is at b[i]: for each member it
// calls fn with the raw key (quotes included, escapes not decoded) and the
// index of the value; fn returns the index just past the value. It returns
// the index just past the object. b must be valid JSON.
func eachMember(b []byte, i int, fn func(key []byte, v int) int) int {
	if i >= len(b) || b[i] != '{' {
		return skipValue(b, i)
	}
	for i = skipSpace(b, i+1); i < len(b); i = skipSpace(b, i) {
		switch b[i] {
		case '}':
			return i + 1
		case ',':
			i++
			continue
		}
		kEnd := skipString(b, i)
		v := skipSpace(b, skipSpace(b, kEnd)+1) // past ':'
		i = fn(b[i:kEnd], v)
	}
	return len(b)
}

// remoteRefs reads the terraform_remote_state instances of the
// "resources" array at b[i] and returns them with the index just past
// the array.
func remoteRefs(b []byte, i int) ([]remoteRef, int) {
	if i >= len(b) || b[i] != '[' {
		return nil, skipValue(b, i)
	}
	var refs []remoteRef
	for i = skipSpace(b, i+1); i < len(b); i = skipSpace(b, i) {
		switch b[i] {
		case ']':
			return refs, i + 1
		case ',':
			i++
			continue
		case '{':
		default:
			i = skipValue(b, i)
			continue
		}
		var mode, typ, instances []byte
		i = eachMember(b, i, func(key []byte, v int) int {
			end := skipValue(b, v)
			switch string(key) {
			case `"mode"`:
				mode = b[v:end]
			case `"type"`:
				typ = b[v:end]
			case `"instances"`:
				instances = b[v:end]
			}
			return end
		})
		if string(mode) == `"data"` && string(typ) == `"terraform_remote_state"` {
			refs = append(refs, instanceRefs(instances)...)
		}
	}
	return refs, len(b)
}

// remoteStateAttrs are the attributes of a terraform_remote_state instance
// the graph reads. config and outputs are dynamic values, which state
// format 4 wraps as {"value": ..., "type": ...}.
type remoteStateAttrs struct {
	Backend   string          `json:"backend"`
	Config    json.RawMessage `json:"config"`
	Outputs   json.RawMessage `json:"outputs"`
	Workspace *string         `json:"workspace"`
}

type backendConfig struct {
	Address    string `json:"address"`  // http
	Hostname   string `json:"hostname"` // remote, cloud
	Workspaces *struct {
		Name   string `json:"name"`
		Prefix string `json:"prefix"`
	} `json:"workspaces"`
}

func instanceRefs(instances []byte) []remoteRef {
	var insts []struct {
		Attributes remoteStateAttrs `json:"attributes"`
	}
	if json.Unmarshal(instances, &insts) != nil {
		return nil
	}
	var refs []remoteRef
	for _, in := range insts {
		a := in.Attributes
		var cfg backendConfig
		var outs map[string]json.RawMessage
		if json.Unmarshal(dynamicValue(a.Config), &cfg) != nil || json.Unmarshal(dynamicValue(a.Outputs), &outs) != nil || len(outs) == 0 {
			continue
		}
		ref := remoteRef{outputs: make([]string, 0, len(outs))}
		for name := range outs {
			ref.outputs = append(ref.outputs, name)
		}
		sort.Strings(ref.outputs)
		switch a.Backend {
		case "http":
			ref.unit = backendUnit(cfg.Address)
		case "remote", "cloud":
			ref.hostname = cfg.Hostname
			if ws := cfg.Workspaces; ws != nil && ws.Name != "" {
				ref.workspace = ws.Name
			} else if ws != nil && ws.Prefix != "" {
				name := "default"
				if a.Workspace != nil && *a.Workspace != "" {
					name = *a.Workspace
				}
				ref.workspace = ws.Prefix + name
			}
		}
		if ref.unit != "" || ref.workspace != "" && ref.hostname != "" {
			refs = append(refs, ref)
		}
	}
	return refs
}

// dynamicValue unwraps a dynamic attribute ({"value": v, "type": t}).
func dynamicValue(raw json.RawMessage) json.RawMessage {
	var w struct {
		Value json.RawMessage `json:"value"`
		Type  json.RawMessage `json:"type"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) && json.Unmarshal(raw, &w) == nil && w.Value != nil && w.Type != nil {
		return w.Value
	}
	return raw
}

// backendUnit returns the unit of an http backend address ending in
// /v1/backend/<id> (real or percent-encoded slashes), or "".
func backendUnit(address string) string {
	u, err := url.Parse(address)
	if err != nil {
		return ""
	}
	const marker = "/v1/backend/"
	p := u.EscapedPath()
	i := strings.Index(p, marker)
	if i < 0 {
		return ""
	}
	dec, err := url.PathUnescape(p[i+len(marker):])
	if err != nil {
		return ""
	}
	id, err := ParseID(dec)
	if err != nil {
		return ""
	}
	return id
}

// keyPublicHosts (meta bucket) holds the hosts, besides loopback ones,
// that remote/cloud backends of this server use (SetPublicHosts).
var keyPublicHosts = []byte("public_hosts")

// SetPublicHosts records the host names under which clients reach this
// server (URLs or host[:port]; a host without a port matches any port), so
// that a terraform_remote_state of backend "remote" or "cloud" naming one
// of them infers edges. localhost, 127.0.0.1 and ::1 always match. The
// server calls it at start; the list replaces the previous one.
func (db *DB) SetPublicHosts(hosts []string) error {
	norm := []string{}
	for _, h := range hosts {
		if h = normalizeHost(h); h != "" {
			norm = append(norm, h)
		}
	}
	return db.update(func(tx *bolt.Tx, _ time.Time) error {
		return putJSON(tx.Bucket(bucketMeta), keyPublicHosts, norm)
	})
}

// normalizeHost turns "https://Host:8443/x" or "Host:8443" into
// "host:8443".
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.IndexAny(h, "/?#"); i >= 0 {
		h = h[:i]
	}
	if i := strings.LastIndex(h, "@"); i >= 0 {
		h = h[i+1:]
	}
	return h
}

// ownHost reports whether hostname (host or host:port) names this server.
func ownHost(tx *bolt.Tx, hostname string) bool {
	h := normalizeHost(hostname)
	host := h
	if hh, _, err := net.SplitHostPort(h); err == nil {
		host = hh
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || host == "127.0.0.1" || host == "::1" {
		return true
	}
	var public []string
	if v := tx.Bucket(bucketMeta).Get(keyPublicHosts); v != nil {
		_ = json.Unmarshal(v, &public)
	}
	for _, p := range public {
		if p == h {
			return true
		} else if _, _, err := net.SplitHostPort(p); err != nil && strings.Trim(p, "[]") == host {
			return true // no port: any port
		}
	}
	return false
}

// resolveRefs turns the remote states of a write of unit id into edge
// references: only units of this server that exist, never id itself, and
// only outputs with valid names.
func resolveRefs(tx *bolt.Tx, id string, refs []remoteRef) []graph.Ref {
	var out []graph.Ref
	units := tx.Bucket(bucketUnits)
	for _, r := range refs {
		from := r.unit
		if from == "" {
			if !ownHost(tx, r.hostname) {
				continue
			}
			var err error
			if from, err = DecodeID(r.workspace); err != nil {
				continue
			}
		}
		if from == id || units.Get([]byte(from)) == nil {
			continue
		}
		for _, name := range r.outputs {
			if graph.ValidName(name) == nil {
				out = append(out, graph.Ref{From: from, Output: name})
			}
		}
	}
	return out
}
