package graph

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
)

// alphabet is the Bitcoin base58 alphabet.
const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// Base58 encodes b in the Bitcoin alphabet: each leading zero byte becomes
// a '1', the rest is the big-endian number in base 58.
func Base58(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) < 1.37: enough digits for the number.
	digits := make([]byte, 0, len(b)*137/100+1)
	for _, c := range b[zeros:] {
		carry := int(c)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, zeros+len(digits))
	for i := range zeros {
		out[i] = alphabet[0]
	}
	for i, d := range digits {
		out[len(out)-1-i] = alphabet[d]
	}
	return string(out)
}

// EdgeID is base58(SHA-256("from\nfromOutput\nto\ntoInput")).
func EdgeID(from, fromOutput, to, toInput string) string {
	sum := sha256.Sum256([]byte(from + "\n" + fromOutput + "\n" + to + "\n" + toInput))
	return Base58(sum[:])
}

// Canonical returns the canonical JSON of a value: object keys sorted
// (byte order), no insignificant space, strings without HTML escaping,
// numbers as written. Returns an error when value is not valid JSON.
func Canonical(value []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	} else if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps are written with sorted keys
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Digest is the output digest of a value: base58(SHA-256(canonical JSON)).
func Digest(value []byte) (string, error) {
	c, err := Canonical(value)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return Base58(sum[:]), nil
}

// OutputDigests returns the digest of outputs.<name>.value for each output
// of a state's top-level "outputs" object (raw JSON). Outputs without a
// value, and an "outputs" member that is not Terraform's shape, give none.
func OutputDigests(outputs []byte) map[string]string {
	var outs map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if len(outputs) == 0 || json.Unmarshal(outputs, &outs) != nil {
		return map[string]string{}
	}
	digests := make(map[string]string, len(outs))
	for name, o := range outs {
		if o.Value == nil {
			continue
		}
		if d, err := Digest(o.Value); err == nil {
			digests[name] = d
		}
	}
	return digests
}
