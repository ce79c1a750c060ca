package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opentaco/opentaco/store"
)

// backendPath is the http backend address of a unit: the ID with real
// slashes, each segment path-escaped.
func backendPath(id string) string {
	segs := strings.Split(store.NormalizeID(id), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/backend/" + strings.Join(segs, "/")
}

// BackendGet reads the state of unit id through the http backend, as
// Terraform does. An unknown unit or one without state gives (nil, nil):
// the backend answers both with 404, which Terraform reads as "no state".
// Returns EINVALID.
func (c *Client) BackendGet(ctx context.Context, id string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, backendPath(id), nil, nil, nil)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("backend get %s: %w", id, err)
	}
	return b, nil
}

// BackendPut writes data as the state of unit id through the http backend
// (creating the unit on first write). lockID must name the holder's lock
// when the unit is locked. Returns EINVALID, ELOCKED (with the holder),
// ETOOLARGE.
func (c *Client) BackendPut(ctx context.Context, id string, data []byte, lockID string) error {
	var q url.Values
	if lockID != "" {
		q = url.Values{"ID": {lockID}}
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	resp, err := c.do(ctx, http.MethodPost, backendPath(id), q, bytes.NewReader(data), hdr)
	if err != nil {
		return err
	}
	return decodeBody(resp, nil)
}

// BackendLock takes the lock of unit id with Terraform's LOCK verb
// (creating the unit if needed) and returns the lock taken. Returns
// EINVALID, ELOCKED (with the holder, from the 423 body).
func (c *Client) BackendLock(ctx context.Context, id string, l store.Lock) (*store.Lock, error) {
	b, err := json.Marshal(l.Terraform())
	if err != nil {
		return nil, err
	}
	return c.backendLockInfo(ctx, methodLock, backendPath(id), b)
}

// BackendUnlock releases the lock lockID of unit id with Terraform's
// UNLOCK verb. An empty lockID sends an empty body, which is Terraform's
// force-unlock. Returns EINVALID, ELOCKED (wrong ID, with the holder),
// EFORBIDDEN.
func (c *Client) BackendUnlock(ctx context.Context, id, lockID string) error {
	var body []byte
	if lockID != "" {
		var err error
		if body, err = json.Marshal(store.TerraformLock{ID: lockID}); err != nil {
			return err
		}
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	resp, err := c.do(ctx, methodUnlock, backendPath(id), nil, bytes.NewReader(body), hdr)
	if err != nil {
		return err
	}
	return decodeBody(resp, nil)
}

// BackendGetLock returns the lock of unit id from <address>/lock.
// Returns ENOTFOUND (unknown unit or not locked).
func (c *Client) BackendGetLock(ctx context.Context, id string) (*store.Lock, error) {
	return c.backendLockInfo(ctx, http.MethodGet, backendPath(id)+"/lock", nil)
}

// backendLockInfo sends a request whose answer is Terraform lock info.
func (c *Client) backendLockInfo(ctx context.Context, method, path string, body []byte) (*store.Lock, error) {
	var r io.Reader
	var hdr http.Header
	if body != nil {
		r, hdr = bytes.NewReader(body), http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := c.do(ctx, method, path, nil, r, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return store.ParseLock(b)
}
