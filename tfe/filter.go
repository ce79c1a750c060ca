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
	} else if f.wildcard != "" && !store.GlobMatch(f.wildcard, name) {
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
