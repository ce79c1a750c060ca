package store

import (
	"encoding/json"
	"strconv"
)

// StateInfo is what the store reads out of a state document: only
// top-level fields, found by a scanner that never builds the whole tree, so
// a 500 MB state costs one validation pass and no allocations beyond it.
type StateInfo struct {
	Serial    int64
	Lineage   string
	Encrypted bool // OpenTofu client-side encryption envelope (SPEC §2)

	serialSpan [2]int // byte range of the top-level serial value, {0,0} if absent
}

var encryptedKeys = map[string]bool{
	"serial": true, "lineage": true, "meta": true, "encrypted_data": true, "encryption_version": true,
}

// ParseState validates that b is a JSON object and reads its top-level
// serial and lineage. Returns EINVALID.
func ParseState(b []byte) (*StateInfo, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, Errorf(EINVALID, "state must be a JSON object")
	} else if !json.Valid(b) {
		return nil, Errorf(EINVALID, "state is not valid JSON")
	}
	info := &StateInfo{}
	encrypted := true
	hasData := false
	err := topLevel(b, func(key string, start, end int) {
		raw := b[start:end]
		switch key {
		case "serial":
			info.serialSpan = [2]int{start, end}
			info.Serial = parseSerial(raw)
		case "lineage":
			info.Lineage = ""
			_ = json.Unmarshal(raw, &info.Lineage)
		case "encrypted_data":
			hasData = true
		}
		if !encryptedKeys[key] {
			encrypted = false
		}
	})
	if err != nil {
		return nil, err
	}
	info.Encrypted = encrypted && hasData
	return info, nil
}

func parseSerial(raw []byte) int64 {
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return int64(f)
	}
	return 0
}

// WithSerial returns a copy of the state b whose top-level serial value is
// replaced by serial; every other byte is kept. A state without a serial is
// returned unchanged.
func WithSerial(b []byte, info *StateInfo, serial int64) []byte {
	s, e := info.serialSpan[0], info.serialSpan[1]
	if s == e {
		return append([]byte(nil), b...)
	}
	num := strconv.FormatInt(serial, 10)
	out := make([]byte, 0, len(b)-(e-s)+len(num))
	out = append(out, b[:s]...)
	out = append(out, num...)
	return append(out, b[e:]...)
}

// topLevel calls fn for each member of the top-level object of the valid
// JSON document b, with the decoded key and the byte range of its value.
func topLevel(b []byte, fn func(key string, start, end int)) error {
	i := skipSpace(b, 0) + 1 // past '{'
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return Errorf(EINVALID, "state is truncated")
		} else if b[i] == '}' {
			return nil
		} else if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		kEnd := skipString(b, i)
		var key string
		if err := json.Unmarshal(b[i:kEnd], &key); err != nil {
			return Errorf(EINVALID, "state has a bad key: %v", err)
		}
		i = skipSpace(b, kEnd)
		i = skipSpace(b, i+1) // past ':'
		end := skipValue(b, i)
		fn(key, i, end)
		i = end
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i]=='"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' &&
		b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// HasResources reports whether a state's top-level "resources" is a
// non-empty array (the state still manages something).
func HasResources(state []byte) bool {
	found := false
	if _, err := ParseState(state); err != nil {
		return false
	}
	_ = topLevel(state, func(key string, start, end int) {
		if key == "resources" {
			v := state[start:end]
			found = len(v) > 0 && v[0] == '[' && skipSpace(v, 1) < len(v) && v[skipSpace(v, 1)] != ']'
		}
	})
	return found
}
