package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// An edge record is compact binary, so that the colour walk decodes
// thousands of them cheaply: a format byte (1), a flags byte (1 declared,
// 2 inferred), then from, from_output, to_input, in_digest and out_digest
// as uvarint-length-prefixed strings, then last_in_at and last_out_at as
// varint Unix nanoseconds (0 = never). The target and the edge ID are the
// key.
const (
	edgeFormat   = 1
	flagDeclared = 1
	flagInferred = 2
)

func encodeEdge(e *Edge) []byte {
	b := make([]byte, 0, 2+len(e.From)+len(e.FromOutput)+len(e.ToInput)+len(e.InDigest)+len(e.OutDigest)+5*2+2*10)
	var flags byte
	if e.Declared {
		flags |= flagDeclared
	}
	if e.Inferred {
		flags |= flagInferred
	}
	b = append(b, edgeFormat, flags)
	for _, s := range []string{e.From, e.FromOutput, e.ToInput, e.InDigest, e.OutDigest} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, t := range []time.Time{e.LastInAt, e.LastOutAt} {
		var n int64
		if !t.IsZero() {
			n = t.UnixNano()
		}
		b = binary.AppendVarint(b, n)
	}
	return b
}

// edgeReader reads the fields of an edge record in order.
type edgeReader struct {
	b   []byte
	err error
}

func (r *edgeReader) next() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || uint64(len(r.b)-k) < n {
		r.err, r.b = errors.New("truncated edge record"), nil
		return nil
	}
	s := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return s
}

func (r *edgeReader) time() time.Time {
	n, k := binary.Varint(r.b)
	if k <= 0 {
		r.err, r.b = errors.New("truncated edge record"), nil
		return time.Time{}
	} else if r.b = r.b[k:]; n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func newEdgeReader(v []byte) (edgeReader, byte, error) {
	if len(v) < 2 || v[0] != edgeFormat {
		return edgeReader{}, 0, fmt.Errorf("edge record has unknown format (%d bytes)", len(v))
	}
	return edgeReader{b: v[2:]}, v[1], nil
}

// decodeEdge decodes the record v of edge id into unit to.
func decodeEdge(to, id string, v []byte) (Edge, error) {
	r, flags, err := newEdgeReader(v)
	if err != nil {
		return Edge{}, err
	}
	e := Edge{ID: id, To: to, Declared: flags&flagDeclared != 0, Inferred: flags&flagInferred != 0}
	e.From, e.FromOutput, e.ToInput = string(r.next()), string(r.next()), string(r.next())
	e.InDigest, e.OutDigest = string(r.next()), string(r.next())
	e.LastInAt, e.LastOutAt = r.time(), r.time()
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("edge record has trailing bytes")
	}
	return e, r.err
}

// decodeNode reads only the source of an edge record and whether the
// edge is pending.
func decodeNode(v []byte) (from string, pending bool, err error) {
	r, _, err := newEdgeReader(v)
	if err != nil {
		return "", false, err
	}
	f := r.next()
	r.next() // from_output
	r.next() // to_input
	in, out := r.next(), r.next()
	return string(f), r.err == nil && len(in) > 0 && !bytes.Equal(in, out), r.err
}
