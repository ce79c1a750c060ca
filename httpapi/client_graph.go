package httpapi

import (
	"context"
	"net/http"
	"net/url"

	"github.com/opentaco/opentaco/store"
)

// UnitStatus returns the status of unit id: red, yellow or green, with
// its incoming edges. Returns ENOTFOUND.
func (c *Client) UnitStatus(ctx context.Context, id string) (*store.Status, error) {
	return call[store.Status](ctx, c, http.MethodGet, unitPath(id, "/status"), nil, nil)
}

// Statuses returns the status of every unit whose ID starts with prefix
// ("" = all) that the caller may read, sorted by ID.
func (c *Client) Statuses(ctx context.Context, prefix string) (*StatusList, error) {
	var q url.Values
	if prefix != "" {
		q = url.Values{"prefix": {prefix}}
	}
	return call[StatusList](ctx, c, http.MethodGet, "/v1/status", q, nil)
}

// Dependencies returns the incoming and outgoing edges of unit id.
// Returns ENOTFOUND.
func (c *Client) Dependencies(ctx context.Context, id string) (*store.Dependencies, error) {
	return call[store.Dependencies](ctx, c, http.MethodGet, unitPath(id, "/dependencies"), nil, nil)
}

// AddDependency declares that unit to consumes req.FromOutput of unit
// req.FromUnitID (idempotent) and returns the edge. Returns EINVALID,
// ENOTFOUND (either unit), ECONFLICT (a cycle, named in the message),
// EFORBIDDEN.
func (c *Client) AddDependency(ctx context.Context, to string, req store.DependencyRequest) (*store.EdgeInfo, error) {
	return call[store.EdgeInfo](ctx, c, http.MethodPut, unitPath(to, "/dependencies"), nil, &req)
}

// RemoveDependency removes edge edgeID of unit to. Returns ENOTFOUND
// (unit or edge), EFORBIDDEN.
func (c *Client) RemoveDependency(ctx context.Context, to, edgeID string) error {
	return c.doJSON(ctx, http.MethodDelete, unitPath(to, "/dependencies/"+url.PathEscape(edgeID)), nil, nil, nil)
}
