package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketPermissions = []byte("rbac_permissions") // name → Permission
	bucketRoles       = []byte("rbac_roles")       // name → Role
	bucketAssignments = []byte("rbac_assignments") // ID → Assignment
)

// RBAC actions.
const (
	ActionRead        = "unit.read"
	ActionWrite       = "unit.write"
	ActionLock        = "unit.lock"
	ActionForceUnlock = "unit.force_unlock"
	ActionDelete      = "unit.delete"
	ActionRBACManage  = "rbac.manage"
	ActionTokenManage = "token.manage"
	ActionAll         = "*"
)

// Actions lists every action a rule may name.
var Actions = []string{ActionRead, ActionWrite, ActionLock, ActionForceUnlock, ActionDelete, ActionRBACManage, ActionTokenManage, ActionAll}

// Rule allows or denies actions on unit-ID globs ('*' matches any run of
// characters, '/' included; other characters are literal).
type Rule struct {
	Effect    string   `json:"effect"` // "allow" or "deny"
	Actions   []string `json:"actions"`
	Resources []string `json:"resources"`
}

// Permission is a named, ordered list of rules.
type Permission struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Rules       []Rule    `json:"rules"`
	BuiltIn     bool      `json:"builtin"`
	Created     time.Time `json:"created"`
}

// Role groups permissions.
type Role struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Permissions []string  `json:"permissions"`
	BuiltIn     bool      `json:"builtin"`
	Created     time.Time `json:"created"`
}

// Assignment gives a role to a subject or to an OIDC group.
type Assignment struct {
	ID      string    `json:"id"`
	Subject string    `json:"subject,omitempty"`
	Group   string    `json:"group,omitempty"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
}

// RBAC is a consistent snapshot of all permissions, roles and assignments.
type RBAC struct {
	Permissions map[string]*Permission
	Roles       map[string]*Role
	Assignments []*Assignment
}

// builtins are created at open and cannot be changed or deleted.
var builtinPermissions = []Permission{
	{Name: "admin", Description: "everything", Rules: []Rule{{Effect: "allow", Actions: []string{ActionAll}, Resources: []string{"*"}}}},
	{Name: "writer", Description: "read, write and lock every unit", Rules: []Rule{{Effect: "allow", Actions: []string{ActionRead, ActionWrite, ActionLock}, Resources: []string{"*"}}}},
	{Name: "reader", Description: "read every unit", Rules: []Rule{{Effect: "allow", Actions: []string{ActionRead}, Resources: []string{"*"}}}},
}

func rbacBuckets() [][]byte { return [][]byte{bucketPermissions, bucketRoles, bucketAssignments} }

// initRBAC writes the built-in permissions and roles.
func initRBAC(tx *bolt.Tx, now time.Time) error {
	for _, p := range builtinPermissions {
		p.BuiltIn, p.Created = true, now
		if err := putJSON(tx.Bucket(bucketPermissions), []byte(p.Name), p); err != nil {
			return err
		}
		r := Role{Name: p.Name, Description: p.Description, Permissions: []string{p.Name}, BuiltIn: true, Created: now}
		if err := putJSON(tx.Bucket(bucketRoles), []byte(r.Name), r); err != nil {
			return err
		}
	}
	return nil
}

// ValidateRule checks effect, actions and resources. Returns EINVALID.
func ValidateRule(r Rule) error {
	if r.Effect != "allow" && r.Effect != "deny" {
		return Errorf(EINVALID, "rule effect %q must be allow or deny", r.Effect)
	} else if len(r.Actions) == 0 || len(r.Resources) == 0 {
		return Errorf(EINVALID, "a rule needs actions and resources")
	}
	for _, a := range r.Actions {
		if !knownAction(a) {
			return Errorf(EINVALID, "action %q names no action (known: %s)", a, strings.Join(Actions, ", "))
		}
	}
	for _, res := range r.Resources {
		if res == "" {
			return Errorf(EINVALID, "a resource glob may not be empty")
		}
	}
	return nil
}

// PutPermission creates or replaces a permission. Built-ins are refused.
// Returns EINVALID, ECONFLICT.
func (db *DB) PutPermission(p Permission) (*Permission, error) {
	if p.Name == "" {
		return nil, Errorf(EINVALID, "a permission needs a name")
	}
	for _, r := range p.Rules {
		if err := ValidateRule(r); err != nil {
			return nil, err
		}
	}
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		var old Permission
		if getJSON(tx.Bucket(bucketPermissions), p.Name, &old) && old.BuiltIn {
			return Errorf(ECONFLICT, "permission %q is built in", p.Name)
		}
		p.BuiltIn, p.Created = false, now
		if err := db.audit(tx, now, AuditRBAC, "", "put permission "+p.Name); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketPermissions), []byte(p.Name), p)
	})
	return &p, err
}

// DeletePermission removes a permission no role uses (force: removes it
// from the roles too). Returns ENOTFOUND, ECONFLICT.
func (db *DB) DeletePermission(name string, force bool) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		var p Permission
		if !getJSON(tx.Bucket(bucketPermissions), name, &p) {
			return Errorf(ENOTFOUND, "permission %q not found", name)
		} else if p.BuiltIn {
			return Errorf(ECONFLICT, "permission %q is built in", name)
		}
		var users []*Role
		err := eachJSON(tx.Bucket(bucketRoles), func(r *Role) {
			for _, pn := range r.Permissions {
				if pn == name {
					users = append(users, r)
				}
			}
		})
		if err != nil {
			return err
		} else if len(users) > 0 && !force {
			return Errorf(ECONFLICT, "permission %q is used by role %q; add ?force=true to remove it anyway", name, users[0].Name)
		}
		for _, r := range users {
			r.Permissions = without(r.Permissions, name)
			if err := putJSON(tx.Bucket(bucketRoles), []byte(r.Name), r); err != nil {
				return err
			}
		}
		if err := db.audit(tx, now, AuditRBAC, "", "delete permission "+name); err != nil {
			return err
		}
		return tx.Bucket(bucketPermissions).Delete([]byte(name))
	})
}

// PutRole creates or replaces a role; its permissions must exist.
// Returns EINVALID, ECONFLICT (built-in).
func (db *DB) PutRole(r Role) (*Role, error) {
	if r.Name == "" {
		return nil, Errorf(EINVALID, "a role needs a name")
	}
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		var old Role
		if getJSON(tx.Bucket(bucketRoles), r.Name, &old) && old.BuiltIn {
			return Errorf(ECONFLICT, "role %q is built in", r.Name)
		}
		for _, pn := range r.Permissions {
			if tx.Bucket(bucketPermissions).Get([]byte(pn)) == nil {
				return Errorf(EINVALID, "permission %q does not exist", pn)
			}
		}
		r.BuiltIn, r.Created = false, now
		if err := db.audit(tx, now, AuditRBAC, "", "put role "+r.Name); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketRoles), []byte(r.Name), r)
	})
	return &r, err
}

// DeleteRole removes a role. A role in use needs force (its assignments
// go too); built-in roles cannot be deleted. Returns ENOTFOUND, ECONFLICT.
func (db *DB) DeleteRole(name string, force bool) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		var r Role
		if !getJSON(tx.Bucket(bucketRoles), name, &r) {
			return Errorf(ENOTFOUND, "role %q not found", name)
		} else if r.BuiltIn {
			return Errorf(ECONFLICT, "role %q is built in", name)
		}
		var used []string
		err := eachJSON(tx.Bucket(bucketAssignments), func(a *Assignment) {
			if a.Role == name {
				used = append(used, a.ID)
			}
		})
		if err != nil {
			return err
		} else if len(used) > 0 && !force {
			return Errorf(ECONFLICT, "role %q is assigned (%d assignments); add ?force=true to delete it and them", name, len(used))
		}
		for _, id := range used {
			if err := tx.Bucket(bucketAssignments).Delete([]byte(id)); err != nil {
				return err
			}
		}
		if err := db.audit(tx, now, AuditRBAC, "", "delete role "+name); err != nil {
			return err
		}
		return tx.Bucket(bucketRoles).Delete([]byte(name))
	})
}

// Assign gives role to a subject or a group (exactly one). Assigning the
// same pair again returns the existing assignment. Returns EINVALID.
func (db *DB) Assign(a Assignment) (*Assignment, error) {
	if (a.Subject == "") == (a.Group == "") {
		return nil, Errorf(EINVALID, "an assignment names a subject or a group")
	}
	var out *Assignment
	err := db.update(func(tx *bolt.Tx, now time.Time) error {
		if tx.Bucket(bucketRoles).Get([]byte(a.Role)) == nil {
			return Errorf(EINVALID, "role %q does not exist", a.Role)
		}
		err := eachJSON(tx.Bucket(bucketAssignments), func(old *Assignment) {
			if old.Role == a.Role && old.Subject == a.Subject && old.Group == a.Group {
				out = old
			}
		})
		if err != nil || out != nil {
			return err
		}
		a.ID, a.Created = "as-"+randomHex(8), now
		out = &a
		if err := db.audit(tx, now, AuditRBAC, "", fmt.Sprintf("assign role %s to %s%s", a.Role, a.Subject, a.Group)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketAssignments), []byte(a.ID), a)
	})
	return out, err
}

// Unassign removes an assignment. Returns ENOTFOUND.
func (db *DB) Unassign(id string) error {
	return db.update(func(tx *bolt.Tx, now time.Time) error {
		if tx.Bucket(bucketAssignments).Get([]byte(id)) == nil {
			return Errorf(ENOTFOUND, "assignment %q not found", id)
		} else if err := db.audit(tx, now, AuditRBAC, "", "unassign "+id); err != nil {
			return err
		}
		return tx.Bucket(bucketAssignments).Delete([]byte(id))
	})
}

// LoadRBAC returns a snapshot of every permission, role and assignment.
func (db *DB) LoadRBAC() (*RBAC, error) {
	out := &RBAC{Permissions: map[string]*Permission{}, Roles: map[string]*Role{}}
	err := db.view(func(tx *bolt.Tx) error {
		if err := eachJSON(tx.Bucket(bucketPermissions), func(p *Permission) { out.Permissions[p.Name] = p }); err != nil {
			return err
		} else if err := eachJSON(tx.Bucket(bucketRoles), func(r *Role) { out.Roles[r.Name] = r }); err != nil {
			return err
		}
		return eachJSON(tx.Bucket(bucketAssignments), func(a *Assignment) { out.Assignments = append(out.Assignments, a) })
	})
	sort.Slice(out.Assignments, func(i, j int) bool { return out.Assignments[i].Created.Before(out.Assignments[j].Created) })
	return out, err
}

func getJSON(b *bolt.Bucket, key string, v any) bool {
	raw := b.Get([]byte(key))
	return raw != nil && json.Unmarshal(raw, v) == nil
}

// eachJSON decodes every value of b as a T and calls fn with it.
func eachJSON[T any](b *bolt.Bucket, fn func(*T)) error {
	return b.ForEach(func(k, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		fn(&x)
		return nil
	})
}

func without(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// GlobMatch matches s against a pattern in which '*' matches any run of
// characters ('/' included) and every other character is literal.
func GlobMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// knownAction reports whether a (a name or a glob) names at least one
// action, so a misspelling is refused instead of silently granting nothing.
func knownAction(a string) bool {
	for _, known := range Actions {
		if GlobMatch(a, known) {
			return true
		}
	}
	return false
}
