package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/opentaco/opentaco/store"
)

// trustAfter is how much of a body must arrive before its declared
// Content-Length is allocated in one piece.
const trustAfter = 8 << 20

// ReadBody reads the whole request body, decoding gzip, refusing more than
// limit bytes with ETOOLARGE (for other surfaces).
func ReadBody(r *http.Request, limit int64) ([]byte, error) { return readBody(r, limit) }

// ReleaseLarge returns the buffers of a large request to the OS.
func ReleaseLarge(n int) { releaseLarge(n) }

// readBody reads the whole request body, decoding Content-Encoding gzip,
// and refuses with ETOOLARGE anything over limit bytes (raw or decoded).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, store.Errorf(store.ETOOLARGE, "body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit)
	}
	var src io.Reader = http.MaxBytesReader(nil, r.Body, limit+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, store.Errorf(store.EINVALID, "body is not valid gzip: %v", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, store.Errorf(store.EINVALID, "unsupported Content-Encoding %q", enc)
	}
	// Allocate the declared size only once the first part has arrived: a
	// client that declares 500 MB and sends nothing holds 8 MiB, not 500.
	var buf bytes.Buffer
	first := int64(trustAfter)
	if cl := r.ContentLength; cl > 0 && r.Header.Get("Content-Encoding") == "" {
		first = min(cl, trustAfter)
	}
	buf.Grow(int(first) + bytes.MinRead)
	n, err := buf.ReadFrom(io.LimitReader(src, first))
	if err == nil && n == first && first < limit+1 {
		if cl := r.ContentLength; cl > first && r.Header.Get("Content-Encoding") == "" {
			buf.Grow(int(cl-first) + bytes.MinRead)
		}
		var more int64
		more, err = buf.ReadFrom(io.LimitReader(src, limit+1-first))
		n += more
	}
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr) || n > limit:
		return nil, store.Errorf(store.ETOOLARGE, "body exceeds the limit of %d bytes", limit)
	case err != nil:
		return nil, store.Errorf(store.EINVALID, "reading body: %v", err)
	}
	return buf.Bytes(), nil
}

// decodeJSON reads a small JSON body into v. An empty body leaves v as it
// is when allowEmpty is set. Returns EINVALID, ETOOLARGE.
func decodeJSON(r *http.Request, v any, allowEmpty bool) error {
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return nil
		}
		return store.Errorf(store.EINVALID, "request body is empty; a JSON object is required")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return store.Errorf(store.EINVALID, "request body is not valid JSON: %v", err)
	}
	return nil
}

// largeBody is the size from which a handler returns its buffers to the
// operating system when it is done.
const largeBody = 16 << 20

// releaseLarge runs a collection after a request that moved n bytes when n
// is large. bbolt needs a state and a page-sized copy of it in memory until
// commit; without this, the garbage of one large write is still resident
// when the next arrives (the GC goal doubles with the last live heap), and
// the peak grows to twice what one write needs.
func releaseLarge(n int) {
	if n >= largeBody {
		debug.FreeOSMemory()
	}
}
