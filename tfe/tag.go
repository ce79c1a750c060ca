package tfe

import (
	"net/http"
	"sort"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (a *API) routeTags() {
	a.handle(http.MethodGet, "/workspaces/:wsid/tag-bindings", a.listTagBindings)
	a.handle(http.MethodPatch, "/workspaces/:wsid/tag-bindings", a.patchTagBindings)
	a.handle(http.MethodGet, "/workspaces/:wsid/effective-tag-bindings", a.listTagBindings)
	a.handle(http.MethodPost, "/workspaces/:wsid/relationships/tags", a.addTags)
	a.handle(http.MethodDelete, "/workspaces/:wsid/relationships/tags", a.removeTags)
	a.handle(http.MethodGet, "/organizations/:org/projects", a.listProjects)
	a.handle(http.MethodPost, "/organizations/:org/projects", a.createProject)
	a.handle(http.MethodGet, "/projects/:prj", a.getProject)
}

// tagBinding is one key/value tag in a request body.
type tagBinding struct {
	Attributes struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"attributes"`
}

func tagBindings(u *store.Unit) []resource {
	out := []resource{}
	for _, k := range tagNames(u) {
		out = append(out, resource{ID: "tb-" + k, Type: "tag-bindings", Attributes: map[string]any{"key": k, "value": u.Labels[k]}})
	}
	return out
}

func (a *API) listTagBindings(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionRead)
	if err != nil {
		return err
	}
	writeDoc(w, http.StatusOK, map[string]any{"data": tagBindings(u)})
	return nil
}

// patchTagBindings merges the given bindings into the unit's labels.
func (a *API) patchTagBindings(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionWrite)
	if err != nil {
		return err
	}
	var body struct {
		Data []tagBinding `json:"data"`
	}
	if err := a.decodeDoc(r, &body); err != nil {
		return err
	}
	set := map[string]string{}
	for _, b := range body.Data {
		if b.Attributes.Key == "" {
			return store.Errorf(store.EINVALID, "a tag binding needs a key")
		}
		set[b.Attributes.Key] = b.Attributes.Value
	}
	if u, err = a.srv.StoreFor(r).UpdateLabels(u.ID, set, nil); err != nil {
		return err
	}
	writeDoc(w, http.StatusOK, map[string]any{"data": tagBindings(u)})
	return nil
}

// tagsBody is the body of the legacy tag relationship calls.
type tagsBody struct {
	Data []struct {
		ID         string `json:"id"`
		Attributes struct {
			Name string `json:"name"`
		} `json:"attributes"`
	} `json:"data"`
}

func (b *tagsBody) names() []string {
	var out []string
	for _, t := range b.Data {
		name := t.Attributes.Name
		if name == "" {
			name = strings.TrimPrefix(t.ID, "tag-")
		}
		if name != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (a *API) addTags(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	return a.changeTags(w, r, p, true)
}

func (a *API) removeTags(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	return a.changeTags(w, r, p, false)
}

func (a *API) changeTags(w http.ResponseWriter, r *http.Request, p httprouter.Params, add bool) error {
	u, err := a.unitOf(r, p, store.ActionWrite)
	if err != nil {
		return err
	}
	var body tagsBody
	if err := a.decodeDoc(r, &body); err != nil {
		return err
	}
	set, remove := map[string]string{}, []string(nil)
	for _, n := range body.names() {
		if !add {
			remove = append(remove, n)
		} else if _, ok := u.Labels[n]; !ok {
			set[n] = ""
		}
	}
	if _, err := a.srv.StoreFor(r).UpdateLabels(u.ID, set, remove); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Projects are names only: every project exists, so a `project` in the
// cloud block neither crashes Terraform nor needs state on the server.
func project(org, name string) resource {
	return resource{ID: "prj-" + name, Type: "projects", Attributes: map[string]any{"name": name},
		Relationships: map[string]any{"organization": map[string]any{"data": map[string]string{"id": org, "type": "organizations"}}}}
}

func (a *API) listProjects(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	out := []resource{}
	for _, n := range strings.Split(r.URL.Query().Get("filter[names]"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, project(p.ByName("org"), n))
		}
	}
	if len(out) == 0 {
		out = append(out, project(p.ByName("org"), "Default Project"))
	}
	writeList(w, pageOf(r), out)
	return nil
}

func (a *API) createProject(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	var body struct {
		Data struct {
			Attributes struct {
				Name string `json:"name"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := a.decodeDoc(r, &body); err != nil {
		return err
	} else if body.Data.Attributes.Name == "" {
		return store.Errorf(store.EINVALID, "project name is required")
	}
	writeOne(w, http.StatusCreated, project(p.ByName("org"), body.Data.Attributes.Name))
	return nil
}

func (a *API) getProject(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	name, ok := strings.CutPrefix(p.ByName("prj"), "prj-")
	if !ok || name == "" {
		return store.Errorf(store.ENOTFOUND, "project %q not found", p.ByName("prj"))
	}
	writeOne(w, http.StatusOK, project("default", name))
	return nil
}
