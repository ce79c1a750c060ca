package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

// Roles lists the RBAC roles. Returns EFORBIDDEN without rbac.manage.
func (c *Client) Roles(ctx context.Context) (*RBACList, error) {
	return call[RBACList](ctx, c, http.MethodGet, "/v1/rbac/roles", nil, nil)
}

// Permissions lists the RBAC permissions. Returns EFORBIDDEN.
func (c *Client) Permissions(ctx context.Context) (*RBACList, error) {
	return call[RBACList](ctx, c, http.MethodGet, "/v1/rbac/permissions", nil, nil)
}

// Assignments lists the RBAC assignments. Returns EFORBIDDEN.
func (c *Client) Assignments(ctx context.Context) (*RBACList, error) {
	return call[RBACList](ctx, c, http.MethodGet, "/v1/rbac/assignments", nil, nil)
}

// PutRole creates or replaces a role. Returns EINVALID, ECONFLICT
// (built-in), EFORBIDDEN.
func (c *Client) PutRole(ctx context.Context, r store.Role) (*store.Role, error) {
	return call[store.Role](ctx, c, http.MethodPut, "/v1/rbac/roles/"+url.PathEscape(r.Name), nil, r)
}

// DeleteRole deletes a role; force also removes its assignments.
// Returns ENOTFOUND, ECONFLICT (built-in or in use), EFORBIDDEN.
func (c *Client) DeleteRole(ctx context.Context, name string, force bool) error {
	return c.doJSON(ctx, http.MethodDelete, "/v1/rbac/roles/"+url.PathEscape(name), forceQuery(force), nil, nil)
}

// PutPermission creates or replaces a permission. Returns EINVALID,
// ECONFLICT (built-in), EFORBIDDEN.
func (c *Client) PutPermission(ctx context.Context, p store.Permission) (*store.Permission, error) {
	return call[store.Permission](ctx, c, http.MethodPut, "/v1/rbac/permissions/"+url.PathEscape(p.Name), nil, p)
}

// DeletePermission deletes a permission; force also removes it from roles.
// Returns ENOTFOUND, ECONFLICT, EFORBIDDEN.
func (c *Client) DeletePermission(ctx context.Context, name string, force bool) error {
	return c.doJSON(ctx, http.MethodDelete, "/v1/rbac/permissions/"+url.PathEscape(name), forceQuery(force), nil, nil)
}

// Assign gives a role to a subject or a group. Returns EINVALID,
// EFORBIDDEN.
func (c *Client) Assign(ctx context.Context, a store.Assignment) (*store.Assignment, error) {
	return call[store.Assignment](ctx, c, http.MethodPost, "/v1/rbac/assignments", nil, a)
}

// Unassign removes an assignment by ID. Returns ENOTFOUND, EFORBIDDEN.
func (c *Client) Unassign(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/v1/rbac/assignments/"+url.PathEscape(id), nil, nil, nil)
}

// TestRBAC says whether subject (with groups) may do action on resource.
// Returns EINVALID, EFORBIDDEN.
func (c *Client) TestRBAC(ctx context.Context, t RBACTest) (*authn.Decision, error) {
	return call[authn.Decision](ctx, c, http.MethodPost, "/v1/rbac/test", nil, t)
}

// Audit returns audit records, newest first. Returns EFORBIDDEN for
// non-admins.
func (c *Client) Audit(ctx context.Context, unit, principal string, since time.Time, limit int) (*AuditList, error) {
	q := url.Values{}
	if unit != "" {
		q.Set("unit", unit)
	}
	if principal != "" {
		q.Set("principal", principal)
	}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return call[AuditList](ctx, c, http.MethodGet, "/v1/audit", q, nil)
}

func forceQuery(force bool) url.Values {
	if !force {
		return nil
	}
	return url.Values{"force": {"true"}}
}

// Backup streams a consistent snapshot of the server's database to w and
// returns its size. Returns EFORBIDDEN for non-admins.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/backup", nil, nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = store.Errorf(store.EINTERNAL, "backup cut short: %d of %d bytes", n, resp.ContentLength)
	}
	return n, err
}
