package authn

import (
	"fmt"
	"sort"

	"github.com/opentaco/opentaco/store"
)

// Decision is the outcome of an authorisation check.
type Decision struct {
	Allowed bool     `json:"allowed"`
	Reason  string   `json:"reason"`
	Matched []string `json:"matched"` // "role/permission#rule" of every matching rule
}

// Policy is what one principal may do: the rules of all its roles,
// evaluated with "deny anywhere beats any allow".
type Policy struct {
	admin bool // --auth-disable's anonymous admin: everything
	rules []policyRule
}

type policyRule struct {
	store.Rule
	source string
}

// rolesFor returns the roles assigned to a subject or to any of its groups.
func rolesFor(rb *store.RBAC, subject string, groups []string) []string {
	set := map[string]bool{}
	for _, as := range rb.Assignments {
		if as.Subject != "" && as.Subject == subject {
			set[as.Role] = true
		}
		for _, g := range groups {
			if as.Group != "" && as.Group == g {
				set[as.Role] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// PolicyFor compiles the policy of p from the current RBAC data.
func PolicyFor(db *store.DB, p *Principal) (*Policy, error) {
	if p != nil && p.Kind == KindAnonymous {
		return &Policy{admin: true}, nil
	}
	rb, err := db.LoadRBAC()
	if err != nil {
		return nil, err
	}
	return compile(rb, p.Subject, p.Groups), nil
}

func compile(rb *store.RBAC, subject string, groups []string) *Policy {
	pol := &Policy{}
	for _, rn := range rolesFor(rb, subject, groups) {
		role := rb.Roles[rn]
		if role == nil {
			continue
		}
		for _, pn := range role.Permissions {
			perm := rb.Permissions[pn]
			if perm == nil {
				continue
			}
			for i, r := range perm.Rules {
				pol.rules = append(pol.rules, policyRule{Rule: r, source: fmt.Sprintf("%s/%s#%d", rn, pn, i+1)})
			}
		}
	}
	return pol
}

// Decide says whether the policy allows action on resource (a unit ID, or
// "" for actions that are not about a unit).
func (pol *Policy) Decide(action, resource string) Decision {
	if pol.admin {
		return Decision{Allowed: true, Reason: "authentication is disabled: anonymous admin", Matched: []string{}}
	}
	d := Decision{Matched: []string{}}
	var allowedBy, deniedBy string
	for _, r := range pol.rules {
		if !matchAny(r.Actions, action) || !matchAny(r.Resources, resource) {
			continue
		}
		d.Matched = append(d.Matched, r.source)
		if r.Effect == "deny" && deniedBy == "" {
			deniedBy = r.source
		} else if r.Effect == "allow" && allowedBy == "" {
			allowedBy = r.source
		}
	}
	switch {
	case deniedBy != "":
		d.Reason = "denied by " + deniedBy
	case allowedBy != "":
		d.Allowed, d.Reason = true, "allowed by "+allowedBy
	default:
		d.Reason = "no rule allows " + action
	}
	return d
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if store.GlobMatch(g, s) {
			return true
		}
	}
	return false
}

// Test evaluates an action for a subject by name (POST /v1/rbac/test).
// Groups are those of the assignments only, since a subject's OIDC groups
// are known only while it is logged in.
func Test(db *store.DB, subject string, groups []string, action, resource string) (Decision, error) {
	rb, err := db.LoadRBAC()
	if err != nil {
		return Decision{}, err
	}
	return compile(rb, subject, groups).Decide(action, resource), nil
}
