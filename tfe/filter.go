package tfe

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/opentaco/opentaco/store"
)

// workspaceFilter is the set of list filters Terraform sends.
type workspaceFilter struct {
	name     string            // substring of the name
	wildcard string            // name pattern with '*'
	tags     []string          // all must be present (as label keys)
	tagged   map[string]string // key → value, all must match
}

func workspaceFilterOf(r *http.Request) workspaceFilter {
	q := r.URL.Query()
	f := workspaceFilter{name: q.Get("search[name]"), wildcard: q.Get("search[wildcard-name]"), tagged: map[string]string{}}
	for _, t := range strings.Split(q.Get("search[tags]"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			f.tags = append(f.tags, t)
		}
	}
	for i := 0; ; i++ {
		prefix := "filter[tagged][" + strconv.Itoa(i) + "]"
		key, ok := q[prefix+"[key]"]
		if !ok || len(key) == 0 {
			break
		}
		f.tagged[key[0]] = q.Get(prefix + "[value]")
	}
	return f
}

func (f workspaceFilter) match(u *store.Unit) bool {
	name := workspaceName(u.ID)
	if f.name != "" && !strings.Contains(name, f.name) {
		return false
	} else if f.wildcard != "" && !wildcardMatch(f.wildcard, name) {
		return false
	}
	for _, t := range f.tags {
		if _, ok := u.Labels[t]; !ok {
			return false
		}
	}
	for k, v := range f.tagged {
		if got, ok := u.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// wildcardMatch matches name against a pattern in which '*' is any run of
// characters.
func wildcardMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(name, part)
		if i < 0 {
			return false
		}
		name = name[i+len(part):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}
