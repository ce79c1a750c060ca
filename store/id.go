package store

import (
	"net/url"
	"strings"
)

// MaxIDLength is the longest unit ID in bytes, after normalisation.
const MaxIDLength = 256

// NormalizeID trims leading and trailing slashes and collapses repeated
// slashes: "///a//b/" becomes "a/b". It does not validate.
func NormalizeID(s string) string {
	parts := strings.Split(s, "/")
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "/")
}

// ValidateID checks a normalised unit ID against the rules of SPEC §1 and
// returns an EINVALID error naming the rule broken.
func ValidateID(id string) error {
	if id == "" {
		return Errorf(EINVALID, "unit ID is empty")
	} else if len(id) > MaxIDLength {
		return Errorf(EINVALID, "unit ID is %d bytes; the limit is %d", len(id), MaxIDLength)
	}
	segs := strings.Split(id, "/")
	for _, seg := range segs {
		if err := validateSegment(seg); err != nil {
			return err
		}
	}
	if segs[len(segs)-1] == "lock" {
		return Errorf(EINVALID, "unit ID %q: the last segment may not be \"lock\" (reserved for the backend lock address)", id)
	}
	return nil
}

func validateSegment(seg string) error {
	switch {
	case seg == "":
		return Errorf(EINVALID, "unit ID has an empty segment (leading, trailing or repeated '/')")
	case seg == "." || seg == "..":
		return Errorf(EINVALID, "unit ID segment %q is not allowed", seg)
	case strings.HasPrefix(seg, "_") || strings.HasSuffix(seg, "_"):
		return Errorf(EINVALID, "unit ID segment %q may not start or end with '_'", seg)
	case strings.Contains(seg, "__"):
		return Errorf(EINVALID, "unit ID segment %q may not contain \"__\" (reserved for '/')", seg)
	}
	for i := 0; i < len(seg); i++ {
		if !idChar(seg[i]) {
			return Errorf(EINVALID, "unit ID segment %q has a character outside letters, digits, '.', '-', '_'", seg)
		}
	}
	return nil
}

func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '-' || c == '_'
}

// ParseID normalises and validates a unit ID written with real slashes
// (request bodies, CLI arguments, the http backend path once
// percent-decoded). Returns EINVALID.
func ParseID(s string) (string, error) {
	id := NormalizeID(s)
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return id, nil
}

// DecodeID turns the single-segment form used in /v1/units/{id} routes
// into the canonical ID: it percent-decodes ("myapp%2Fprod") and turns
// "__" into "/" ("myapp__prod"), then normalises and validates.
// Returns EINVALID.
func DecodeID(s string) (string, error) {
	dec, err := url.PathUnescape(s)
	if err != nil {
		return "", Errorf(EINVALID, "unit ID %q is not valid percent-encoding", s)
	}
	return ParseID(strings.ReplaceAll(dec, "__", "/"))
}

// EncodeID returns the single-segment form of a canonical ID ("a/b" →
// "a__b"), usable in /v1/units/{id} routes and as a TFE workspace name.
func EncodeID(id string) string {
	return strings.ReplaceAll(id, "/", "__")
}
