package tfe

import (
	"net/http"
	"sort"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (a *API) routeWorkspaces() {
	a.handle(http.MethodGet, "/organizations/:org/workspaces", a.listWorkspaces)
	a.handle(http.MethodPost, "/organizations/:org/workspaces", a.createWorkspace)
	a.handle(http.MethodGet, "/organizations/:org/workspaces/:name", a.getWorkspace)
	a.handle(http.MethodPatch, "/organizations/:org/workspaces/:name", a.updateWorkspace)
	a.handle(http.MethodDelete, "/organizations/:org/workspaces/:name", a.deleteWorkspace)
	a.handle(http.MethodPost, "/organizations/:org/workspaces/:name/actions/safe-delete", a.safeDeleteWorkspace)
	a.handle(http.MethodGet, "/workspaces/:wsid", a.getWorkspace)
	a.handle(http.MethodPatch, "/workspaces/:wsid", a.updateWorkspace)
	a.handle(http.MethodDelete, "/workspaces/:wsid", a.deleteWorkspace)
	a.handle(http.MethodPost, "/workspaces/:wsid/actions/safe-delete", a.safeDeleteWorkspace)
}

// workspaceName is the workspace name of a unit ID.
func workspaceName(unitID string) string { return store.EncodeID(unitID) }

// unitOfName maps a workspace name to its unit ID. Returns EINVALID.
func unitOfName(name string) (string, error) { return store.DecodeID(name) }

// unitOfWSID maps a workspace ID ("ws-<name>") to its unit ID. An ID
// without the prefix is not a workspace: ENOTFOUND.
func unitOfWSID(wsid string) (string, error) {
	name, ok := strings.CutPrefix(wsid, "ws-")
	if !ok {
		return "", store.Errorf(store.ENOTFOUND, "workspace %q not found", wsid)
	}
	id, err := store.DecodeID(name)
	if err != nil {
		return "", store.Errorf(store.ENOTFOUND, "workspace %q not found", wsid)
	}
	return id, nil
}

// unitOf reads the unit named by the :wsid or :org/:name route parameters
// after checking that the caller may do action on it. An unknown or
// unreadable workspace is ENOTFOUND; a readable one the caller may not
// change is EFORBIDDEN.
func (a *API) unitOf(r *http.Request, p httprouter.Params, action string) (*store.Unit, error) {
	var id string
	var err error
	if wsid := p.ByName("wsid"); wsid != "" {
		id, err = unitOfWSID(wsid)
	} else if id, err = unitOfName(p.ByName("name")); err != nil {
		err = store.Errorf(store.ENOTFOUND, "workspace %q not found", p.ByName("name"))
	}
	if err != nil {
		return nil, err
	}
	if err := a.srv.Authorize(r, action, id); store.ErrorCode(err) == store.ENOTFOUND {
		return nil, store.Errorf(store.ENOTFOUND, "workspace %q not found", workspaceName(id))
	} else if err != nil {
		return nil, err
	}
	u, err := a.store.GetUnit(id)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return nil, store.Errorf(store.ENOTFOUND, "workspace %q not found", workspaceName(id))
	}
	return u, err
}

// workspace renders a unit as a workspace document.
func workspace(u *store.Unit, org, root, tfVersion string) resource {
	name := workspaceName(u.ID)
	if tfVersion == "" {
		tfVersion = "latest"
	}
	if org == "" {
		org = "default"
	}
	attrs := map[string]any{
		"name": name, "execution-mode": "local", "locked": u.Locked, "terraform-version": tfVersion,
		"operations": false, "auto-apply": false, "structured-run-output-enabled": false,
		"vcs-repo": nil, "working-directory": "", "description": "", "source": "tfe-api",
		"created-at": timestamp(u.Created), "updated-at": timestamp(u.Updated),
		"tag-names": tagNames(u), "resource-count": 0, "global-remote-state": false,
		"actions":            map[string]any{"is-destroyable": true},
		"setting-overwrites": map[string]any{"execution-mode": true, "agent-pool": true},
		"permissions": map[string]any{
			"can-update": true, "can-destroy": true, "can-lock": true, "can-unlock": true,
			"can-force-unlock": true, "can-read-settings": true, "can-queue-run": false,
			"can-queue-apply": false, "can-queue-destroy": false, "can-update-variable": false,
			"can-force-delete": true, "can-read-state-versions": true, "can-create-state-versions": true,
		},
	}
	if u.Lock != nil {
		attrs["lock-reason"] = u.Lock.Info
	}
	return resource{
		ID: "ws-" + name, Type: "workspaces", Attributes: attrs,
		Relationships: map[string]any{"organization": map[string]any{"data": map[string]string{"id": org, "type": "organizations"}}},
		Links:         map[string]any{"self": root + "/workspaces/ws-" + name},
	}
}

// tagNames lists a unit's labels as Terraform Cloud tag names, sorted.
func tagNames(u *store.Unit) []string {
	names := make([]string, 0, len(u.Labels))
	for k := range u.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (a *API) writeWorkspace(w http.ResponseWriter, r *http.Request, status int, u *store.Unit, org, tfVersion string) {
	writeOne(w, status, workspace(u, org, apiRoot(r), tfVersion))
}

func (a *API) getWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionRead)
	if err != nil {
		return err
	}
	a.writeWorkspace(w, r, http.StatusOK, u, p.ByName("org"), "")
	return nil
}

// workspaceBody is the JSON:API body of a workspace create or update.
type workspaceBody struct {
	Data struct {
		Attributes struct {
			Name             string `json:"name"`
			TerraformVersion string `json:"terraform-version"`
		} `json:"attributes"`
		Relationships struct {
			Tags struct {
				Data []struct {
					Attributes struct {
						Name string `json:"name"`
					} `json:"attributes"`
				} `json:"data"`
			} `json:"tags"`
			TagBindings struct {
				Data []tagBinding `json:"data"`
			} `json:"tag-bindings"`
		} `json:"relationships"`
	} `json:"data"`
}

// labels returns the tags of a create body as labels.
func (b *workspaceBody) labels() map[string]string {
	out := map[string]string{}
	for _, t := range b.Data.Relationships.Tags.Data {
		if t.Attributes.Name != "" {
			out[t.Attributes.Name] = ""
		}
	}
	for _, t := range b.Data.Relationships.TagBindings.Data {
		if t.Attributes.Key != "" {
			out[t.Attributes.Key] = t.Attributes.Value
		}
	}
	return out
}

// createWorkspace creates the unit of a new workspace. An existing one is
// 422 (name taken), as Terraform Cloud answers.
func (a *API) createWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	var body workspaceBody
	if err := a.decodeDoc(r, &body); err != nil {
		return err
	}
	name := body.Data.Attributes.Name
	if name == "" {
		return store.Errorf(store.EINVALID, "workspace name is required")
	}
	id, err := unitOfName(name)
	if err != nil {
		return store.Errorf(store.EINVALID, "workspace name %q: %s", name, store.ErrorMessage(err))
	} else if err := a.srv.Authorize(r, store.ActionWrite, id); err != nil {
		// 403 whether or not the unit exists: a create reveals nothing.
		return store.Errorf(store.EFORBIDDEN, "you may not create workspace %q", name)
	}
	u, err := a.srv.StoreFor(r).CreateUnit(id)
	if store.ErrorCode(err) == store.ECONFLICT {
		return store.Errorf(store.EINVALID, "workspace name %q has already been taken", name)
	} else if err != nil {
		return err
	}
	if labels := body.labels(); len(labels) > 0 {
		if u, err = a.srv.StoreFor(r).UpdateLabels(id, labels, nil); err != nil {
			return err
		}
	}
	a.writeWorkspace(w, r, http.StatusCreated, u, p.ByName("org"), body.Data.Attributes.TerraformVersion)
	return nil
}

// updateWorkspace accepts the settings Terraform sends (terraform-version)
// and echoes them; renaming is not supported.
func (a *API) updateWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionWrite)
	if err != nil {
		return err
	}
	var body workspaceBody
	if err := a.decodeDoc(r, &body); err != nil {
		return err
	}
	if n := body.Data.Attributes.Name; n != "" && n != workspaceName(u.ID) {
		return store.Errorf(store.EINVALID, "renaming a workspace is not supported (it is the unit ID)")
	}
	a.writeWorkspace(w, r, http.StatusOK, u, p.ByName("org"), body.Data.Attributes.TerraformVersion)
	return nil
}

// deleteWorkspace deletes the unit with its history; a locked one is 409.
func (a *API) deleteWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionDelete)
	if err != nil {
		return err
	}
	if err := a.srv.StoreFor(r).DeleteUnit(u.ID, false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// safeDeleteWorkspace deletes only a workspace whose state manages no
// resources (an encrypted state cannot be inspected, so it is refused).
func (a *API) safeDeleteWorkspace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionDelete)
	if err != nil {
		return err
	}
	data, ver, err := a.store.ReadState(u.ID, 0)
	if err != nil {
		return err
	} else if ver != nil && (ver.Encrypted || store.HasResources(data)) {
		return store.Errorf(store.ECONFLICT, "workspace %q still manages resources; destroy them first or delete with -force", workspaceName(u.ID))
	}
	return a.deleteWorkspace(w, r, p)
}

// listWorkspaces lists units as workspaces, filtered by search[name],
// search[wildcard-name], search[tags] and filter[tagged][i][key|value].
func (a *API) listWorkspaces(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	readable, err := a.srv.Readable(r)
	if err != nil {
		return err
	}
	units, err := a.store.ListUnits("")
	if err != nil {
		return err
	}
	f := workspaceFilterOf(r)
	var out []resource
	for _, u := range units {
		if readable(u.ID) && f.match(u) {
			out = append(out, workspace(u, p.ByName("org"), apiRoot(r), ""))
		}
	}
	writeList(w, pageOf(r), out)
	return nil
}
