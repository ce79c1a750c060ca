package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opentaco/opentaco/store"
)

// maxErrorBody caps how much of an error response the client reads.
const maxErrorBody = 1 << 20

// Client is the Go client of an OpenTaco server, used by the CLI and the
// tests. Every method that fails because of the server's answer returns a
// *store.Error whose Code comes from the JSON error body (or, for bodies
// that are not OpenTaco errors, from the HTTP status), so callers decide
// on codes, never on message text. Transport failures are returned as they
// come from net/http.
type Client struct {
	// BaseURL is the server's root URL, without a trailing slash
	// ("http://127.0.0.1:8080"); it may carry a path prefix.
	BaseURL string
	// Token is sent as "Authorization: Bearer <token>" when not empty.
	Token string
	// HTTP performs the requests.
	HTTP *http.Client
}

// NewClient returns a client for the server at baseURL.
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{}}
}

// unitPath is the /v1/units/{id} path of a unit, with the ID in its
// single-segment form ("a/b" → "a__b").
func unitPath(id, suffix string) string {
	return "/v1/units/" + url.PathEscape(store.EncodeID(store.NormalizeID(id))) + suffix
}

// CreateUnit creates an empty unit. Returns EINVALID, ECONFLICT (exists).
func (c *Client) CreateUnit(ctx context.Context, id string) (*store.Unit, error) {
	return call[store.Unit](ctx, c, http.MethodPost, "/v1/units", nil, map[string]string{"id": id})
}

// ListUnits lists the units whose ID starts with prefix ("" = all),
// sorted by ID.
func (c *Client) ListUnits(ctx context.Context, prefix string) (*UnitList, error) {
	var q url.Values
	if prefix != "" {
		q = url.Values{"prefix": {prefix}}
	}
	return call[UnitList](ctx, c, http.MethodGet, "/v1/units", q, nil)
}

// GetUnit returns a unit with its lock. Returns ENOTFOUND.
func (c *Client) GetUnit(ctx context.Context, id string) (*store.Unit, error) {
	return call[store.Unit](ctx, c, http.MethodGet, unitPath(id, ""), nil, nil)
}

// DeleteUnit deletes a unit with its versions and lock. A locked unit is
// refused unless force is set (and the caller may break locks).
// Returns ENOTFOUND, ELOCKED, EFORBIDDEN.
func (c *Client) DeleteUnit(ctx context.Context, id string, force bool) error {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	return c.doJSON(ctx, http.MethodDelete, unitPath(id, ""), q, nil, nil)
}

// State is a downloaded state with the metadata the server sends along.
type State struct {
	// Data holds the state bytes exactly as stored; nil when the unit
	// exists but has no state yet (the server answered 204).
	Data []byte
	// ETag is the quoted SHA-256 of Data, as the server sent it.
	ETag string
	// Version is the number of the version downloaded.
	Version int64
}

// Download returns the state of unit id: the current one when version is
// 0, otherwise that version. A unit that exists but has no state yet gives
// (nil, nil). Returns ENOTFOUND (unit or version), EINVALID.
func (c *Client) Download(ctx context.Context, id string, version int64) ([]byte, error) {
	st, err := c.DownloadState(ctx, id, version)
	if err != nil {
		return nil, err
	}
	return st.Data, nil
}

// DownloadState is Download with the ETag and version number. The body is
// checked against the ETag (a SHA-256), so a truncated or corrupted
// transfer is an error rather than a wrong state. Returns ENOTFOUND,
// EINVALID, EINTERNAL (digest mismatch).
func (c *Client) DownloadState(ctx context.Context, id string, version int64) (*State, error) {
	var q url.Values
	if version != 0 {
		q = url.Values{"version": {strconv.FormatInt(version, 10)}}
	}
	resp, err := c.do(ctx, http.MethodGet, unitPath(id, "/download"), q, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	st := &State{ETag: resp.Header.Get("ETag")}
	st.Version, _ = strconv.ParseInt(resp.Header.Get("X-OpenTaco-Version"), 10, 64)
	if resp.StatusCode == http.StatusNoContent {
		return st, nil
	}
	if st.Data, err = io.ReadAll(resp.Body); err != nil {
		return nil, fmt.Errorf("download %s: %w", id, err)
	}
	if want := strings.Trim(st.ETag, `"`); len(want) == sha256.Size*2 {
		sum := sha256.Sum256(st.Data)
		if got := hex.EncodeToString(sum[:]); got != want {
			return nil, store.Errorf(store.EINTERNAL, "download of %s is corrupt: sha256 %s, server said %s", id, got, want)
		}
	}
	return st, nil
}

// Upload stores body as the new current state of unit id and returns the
// version it became. ifLockedBy must name the holder's lock ID when the
// unit is locked. Returns ENOTFOUND (create the unit first), EINVALID (not
// a JSON object), ELOCKED (with the holder), ETOOLARGE.
func (c *Client) Upload(ctx context.Context, id string, body io.Reader, ifLockedBy string) (*store.Version, error) {
	var q url.Values
	if ifLockedBy != "" {
		q = url.Values{"if_locked_by": {ifLockedBy}}
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	resp, err := c.do(ctx, http.MethodPost, unitPath(id, "/upload"), q, body, hdr)
	if err != nil {
		return nil, err
	}
	var v store.Version
	if err := decodeBody(resp, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Lock takes the lock of unit id. Empty fields of l are filled by the
// server (ID: a UUID, Who: the caller). Taking a lock again with the same
// ID returns it unchanged. Returns ENOTFOUND, ELOCKED (with the holder).
func (c *Client) Lock(ctx context.Context, id string, l store.Lock) (*store.Lock, error) {
	return call[store.Lock](ctx, c, http.MethodPost, unitPath(id, "/lock"), nil, &l)
}

// GetLock returns the lock of unit id. Returns ENOTFOUND when the unit is
// unknown or not locked (GetUnit tells the two apart).
func (c *Client) GetLock(ctx context.Context, id string) (*store.Lock, error) {
	return call[store.Lock](ctx, c, http.MethodGet, unitPath(id, "/lock"), nil, nil)
}

// Unlock releases the lock lockID of unit id; with force any lock is
// broken (for callers with unit.force_unlock). Unlocking an unlocked unit
// succeeds with Unlocked false. Returns ENOTFOUND, ELOCKED (wrong ID, with
// the holder), EINVALID (no ID and no force), EFORBIDDEN.
func (c *Client) Unlock(ctx context.Context, id, lockID string, force bool) (*UnlockResult, error) {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	return call[UnlockResult](ctx, c, http.MethodDelete, unitPath(id, "/unlock"), q, map[string]string{"id": lockID})
}

// Versions lists the versions of unit id, newest first. Returns ENOTFOUND.
func (c *Client) Versions(ctx context.Context, id string) (*VersionList, error) {
	return call[VersionList](ctx, c, http.MethodGet, unitPath(id, "/versions"), nil, nil)
}

// Restore writes an earlier version (by number, or by timestamp exactly as
// listed) as the new current version. req.LockID follows the upload lock
// rule. Returns EINVALID, ENOTFOUND (unit or version), ELOCKED.
func (c *Client) Restore(ctx context.Context, id string, req RestoreRequest) (*store.RestoreResult, error) {
	return call[store.RestoreResult](ctx, c, http.MethodPost, unitPath(id, "/restore"), nil, &req)
}

// Health checks /healthz. Returns EINTERNAL when the server is unhealthy.
func (c *Client) Health(ctx context.Context) error {
	return c.doJSON(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Ready checks /readyz (the database answers). Returns EINTERNAL when the
// server is not ready.
func (c *Client) Ready(ctx context.Context) error {
	return c.doJSON(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// call is doJSON for answers decoded into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, q url.Values, in any) (*T, error) {
	var out T
	if err := c.doJSON(ctx, method, path, q, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// doJSON sends in (if not nil) as a JSON body and decodes a JSON answer
// into out (if not nil).
func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	var hdr http.Header
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, hdr = bytes.NewReader(b), http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := c.do(ctx, method, path, q, body, hdr)
	if err != nil {
		return err
	}
	return decodeBody(resp, out)
}

// decodeBody decodes a successful JSON answer into out (if not nil) and
// closes the body.
func decodeBody(resp *http.Response, out any) error {
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// do sends one request. A 2xx answer is returned with its body open; any
// other answer is read, closed and returned as a *store.Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	u := c.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return nil, responseError(resp.StatusCode, resp.Status, b)
}

// responseError turns an error answer into a *store.Error: the JSON error
// body when there is one; Terraform lock info (the http backend's 409/423
// bodies) as ELOCKED with the holder; otherwise a code derived from the
// status.
func responseError(status int, statusText string, body []byte) error {
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err == nil && eb.Code != "" {
		msg := eb.Error
		if msg == "" {
			msg = "server answered " + statusText
		}
		return &store.Error{Code: eb.Code, Message: msg, Lock: eb.Lock}
	}
	if status == http.StatusConflict || status == http.StatusLocked {
		if l, err := store.ParseLock(body); err == nil && l.ID != "" {
			return &store.Error{Code: store.ELOCKED, Message: fmt.Sprintf("unit is locked by %q (lock %s)", l.Who, l.ID), Lock: l}
		}
	}
	msg := "server answered " + statusText
	if t := strings.TrimSpace(string(body)); t != "" && len(t) <= 200 && !strings.ContainsAny(t, "<\x00") {
		msg += ": " + t
	}
	return &store.Error{Code: statusCode(status), Message: msg}
}

// statusCode is the inverse of the status table, for answers without an
// OpenTaco error body.
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return store.EINVALID
	case http.StatusUnauthorized:
		return store.EUNAUTHORIZED
	case http.StatusForbidden:
		return store.EFORBIDDEN
	case http.StatusNotFound:
		return store.ENOTFOUND
	case http.StatusConflict:
		return store.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return store.ETOOLARGE
	case http.StatusLocked:
		return store.ELOCKED
	}
	return store.EINTERNAL
}
