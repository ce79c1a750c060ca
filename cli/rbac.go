package cli

import (
	"strings"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

// RBACCmd groups the access-control commands (admins: rbac.manage).
type RBACCmd struct {
	Ls         RBACLsCmd         `cmd:"" aliases:"list" help:"List roles, permissions and assignments."`
	Role       RBACRoleCmd       `cmd:"" help:"Create or replace a role (--delete removes it)."`
	Permission RBACPermissionCmd `cmd:"" help:"Create or replace a permission from rules (--delete removes it)."`
	Assign     RBACAssignCmd     `cmd:"" help:"Give a role to a subject or an OIDC group."`
	Revoke     RBACRevokeCmd     `cmd:"" help:"Remove an assignment by ID."`
	Test       RBACTestCmd       `cmd:"" help:"Say whether a subject may do an action on a unit, and why."`
}

// RBACLsCmd lists the RBAC data.
type RBACLsCmd struct{}

func (c *RBACLsCmd) Run(g *Globals) error {
	cl := g.client()
	roles, err := cl.Roles(g.ctx)
	if err != nil {
		return err
	}
	perms, err := cl.Permissions(g.ctx)
	if err != nil {
		return err
	}
	as, err := cl.Assignments(g.ctx)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(httpapi.RBACList{Roles: roles.Roles, Permissions: perms.Permissions, Assignments: as.Assignments})
	}
	var rows [][]string
	for _, r := range roles.Roles {
		rows = append(rows, []string{"role", r.Name, strings.Join(r.Permissions, ","), yesNo(r.BuiltIn)})
	}
	for _, p := range perms.Permissions {
		rows = append(rows, []string{"permission", p.Name, rulesText(p.Rules), yesNo(p.BuiltIn)})
	}
	for _, a := range as.Assignments {
		who := "subject " + a.Subject
		if a.Group != "" {
			who = "group " + a.Group
		}
		rows = append(rows, []string{"assignment", a.ID, who + " → " + a.Role, "no"})
	}
	return g.printTable([]string{"KIND", "NAME", "DETAIL", "BUILT IN"}, rows)
}

func rulesText(rules []store.Rule) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = r.Effect + " " + strings.Join(r.Actions, ",") + " on " + strings.Join(r.Resources, ",")
	}
	return strings.Join(parts, "; ")
}

// RBACRoleCmd puts or deletes a role.
type RBACRoleCmd struct {
	Name        string   `arg:"" help:"Role name."`
	Permissions []string `name:"permission" short:"p" help:"Permission of the role (repeatable)."`
	Description string   `help:"What the role is for."`
	Delete      bool     `help:"Delete the role instead."`
	Force       bool     `help:"With --delete: also remove its assignments."`
}

func (c *RBACRoleCmd) Run(g *Globals) error {
	if c.Delete {
		return g.client().DeleteRole(g.ctx, c.Name, c.Force)
	}
	r, err := g.client().PutRole(g.ctx, store.Role{Name: c.Name, Description: c.Description, Permissions: c.Permissions})
	if err != nil {
		return err
	}
	return g.printJSON(r)
}

// RBACPermissionCmd puts or deletes a permission. Rules are written
// "allow unit.read,unit.write on team-a/*" (repeatable, in order).
type RBACPermissionCmd struct {
	Name        string   `arg:"" help:"Permission name."`
	Rules       []string `name:"rule" short:"r" help:"Rule: 'allow|deny ACTIONS on GLOBS' (comma-separated lists; repeatable, in order)." sep:"none"`
	Description string   `help:"What the permission is for."`
	Delete      bool     `help:"Delete the permission instead."`
	Force       bool     `help:"With --delete: also remove it from roles."`
}

func (c *RBACPermissionCmd) Run(g *Globals) error {
	if c.Delete {
		return g.client().DeletePermission(g.ctx, c.Name, c.Force)
	}
	p := store.Permission{Name: c.Name, Description: c.Description}
	for _, text := range c.Rules {
		r, err := parseRule(text)
		if err != nil {
			return err
		}
		p.Rules = append(p.Rules, r)
	}
	out, err := g.client().PutPermission(g.ctx, p)
	if err != nil {
		return err
	}
	return g.printJSON(out)
}

// parseRule reads "allow unit.read,unit.write on team-a/*".
func parseRule(text string) (store.Rule, error) {
	f := strings.Fields(text)
	if len(f) != 4 || f[2] != "on" {
		return store.Rule{}, store.Errorf(store.EINVALID, "rule %q: write 'allow|deny ACTIONS on GLOBS'", text)
	}
	r := store.Rule{Effect: f[0], Actions: strings.Split(f[1], ","), Resources: strings.Split(f[3], ",")}
	return r, store.ValidateRule(r)
}

// RBACAssignCmd gives a role to a subject or group.
type RBACAssignCmd struct {
	Role    string `arg:"" help:"Role to give."`
	Subject string `help:"Subject (user or service account) to give it to." xor:"who" required:""`
	Group   string `help:"OIDC group to give it to." xor:"who" required:""`
}

func (c *RBACAssignCmd) Run(g *Globals) error {
	a, err := g.client().Assign(g.ctx, store.Assignment{Role: c.Role, Subject: c.Subject, Group: c.Group})
	if err != nil {
		return err
	}
	return g.printJSON(a)
}

// RBACRevokeCmd removes an assignment.
type RBACRevokeCmd struct {
	ID string `arg:"" help:"Assignment ID (see rbac ls)."`
}

func (c *RBACRevokeCmd) Run(g *Globals) error { return g.client().Unassign(g.ctx, c.ID) }

// RBACTestCmd explains a decision.
type RBACTestCmd struct {
	Subject  string   `arg:"" help:"Subject to test."`
	Action   string   `arg:"" help:"Action, e.g. unit.write."`
	Resource string   `arg:"" optional:"" help:"Unit ID (empty for rbac.manage, token.manage)."`
	Groups   []string `name:"group" help:"Groups the subject would have (repeatable)."`
}

// Run prints the decision; the exit code is 0 when allowed, 3 when not.
func (c *RBACTestCmd) Run(g *Globals) error {
	d, err := g.client().TestRBAC(g.ctx, httpapi.RBACTest{Subject: c.Subject, Groups: c.Groups, Action: c.Action, Resource: c.Resource})
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		if err := g.printJSON(d); err != nil {
			return err
		}
	} else if err := g.printTable([]string{"ALLOWED", "REASON", "MATCHED"}, [][]string{{yesNo(d.Allowed), d.Reason, strings.Join(d.Matched, ",")}}); err != nil {
		return err
	}
	if !d.Allowed {
		return store.Errorf(store.EFORBIDDEN, "%s may not %s %s", c.Subject, c.Action, c.Resource)
	}
	return nil
}
