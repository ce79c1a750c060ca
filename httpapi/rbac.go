package httpapi

import (
	"net/http"
	"sort"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

func (s *Server) routeRBAC() {
	s.handle(http.MethodGet, "/v1/rbac/roles", surfaceV1, s.listRoles)
	s.handle(http.MethodPost, "/v1/rbac/roles", surfaceV1, s.putRole)
	s.handle(http.MethodPut, "/v1/rbac/roles/:name", surfaceV1, s.putRole)
	s.handle(http.MethodDelete, "/v1/rbac/roles/:name", surfaceV1, s.deleteRole)
	s.handle(http.MethodGet, "/v1/rbac/permissions", surfaceV1, s.listPermissions)
	s.handle(http.MethodPost, "/v1/rbac/permissions", surfaceV1, s.putPermission)
	s.handle(http.MethodPut, "/v1/rbac/permissions/:name", surfaceV1, s.putPermission)
	s.handle(http.MethodDelete, "/v1/rbac/permissions/:name", surfaceV1, s.deletePermission)
	s.handle(http.MethodGet, "/v1/rbac/assignments", surfaceV1, s.listAssignments)
	s.handle(http.MethodPost, "/v1/rbac/assignments", surfaceV1, s.assign)
	s.handle(http.MethodDelete, "/v1/rbac/assignments/:aid", surfaceV1, s.unassign)
	s.handle(http.MethodPost, "/v1/rbac/test", surfaceV1, s.testRBAC)
}

// RBACList is the answer of the RBAC list routes.
type RBACList struct {
	Roles       []*store.Role       `json:"roles,omitempty"`
	Permissions []*store.Permission `json:"permissions,omitempty"`
	Assignments []*store.Assignment `json:"assignments,omitempty"`
	Count       int                 `json:"count"`
}

// rbacSnapshot loads the RBAC data for a caller with rbac.manage.
func (s *Server) rbacSnapshot(r *http.Request) (*store.RBAC, error) {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return nil, err
	}
	return s.store.LoadRBAC()
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	rb, err := s.rbacSnapshot(r)
	if err != nil {
		return err
	}
	out := RBACList{Roles: []*store.Role{}}
	for _, name := range sortedKeys(rb.Roles) {
		out.Roles = append(out.Roles, rb.Roles[name])
	}
	out.Count = len(out.Roles)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listPermissions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	rb, err := s.rbacSnapshot(r)
	if err != nil {
		return err
	}
	out := RBACList{Permissions: []*store.Permission{}}
	for _, name := range sortedKeys(rb.Permissions) {
		out.Permissions = append(out.Permissions, rb.Permissions[name])
	}
	out.Count = len(out.Permissions)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listAssignments(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	rb, err := s.rbacSnapshot(r)
	if err != nil {
		return err
	}
	out := RBACList{Assignments: rb.Assignments, Count: len(rb.Assignments)}
	if out.Assignments == nil {
		out.Assignments = []*store.Assignment{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putRole(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return err
	}
	var role store.Role
	if err := decodeJSON(r, &role, false); err != nil {
		return err
	} else if n := p.ByName("name"); n != "" {
		role.Name = n
	}
	out, err := s.db(r).PutRole(role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return err
	}
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	} else if err := s.db(r).DeleteRole(p.ByName("name"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) putPermission(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return err
	}
	var perm store.Permission
	if err := decodeJSON(r, &perm, false); err != nil {
		return err
	} else if n := p.ByName("name"); n != "" {
		perm.Name = n
	}
	out, err := s.db(r).PutPermission(perm)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deletePermission(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return err
	}
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	} else if err := s.db(r).DeletePermission(p.ByName("name"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) assign(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return err
	}
	var a store.Assignment
	if err := decodeJSON(r, &a, false); err != nil {
		return err
	}
	out, err := s.db(r).Assign(a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) unassign(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return err
	} else if err := s.db(r).Unassign(p.ByName("aid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// RBACTest is the body of POST /v1/rbac/test.
type RBACTest struct {
	Subject  string   `json:"subject"`
	Groups   []string `json:"groups,omitempty"`
	Action   string   `json:"action"`
	Resource string   `json:"resource"`
}

func (s *Server) testRBAC(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.allowed(r, store.ActionRBACManage); err != nil {
		return err
	}
	var body RBACTest
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	} else if body.Subject == "" && len(body.Groups) == 0 || body.Action == "" {
		return store.Errorf(store.EINVALID, "subject (or groups) and action are required")
	}
	resource := body.Resource
	if resource != "" {
		id, err := store.ParseID(resource)
		if err != nil {
			return err
		}
		resource = id
	}
	d, err := authn.Test(s.store, body.Subject, body.Groups, body.Action, resource)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
