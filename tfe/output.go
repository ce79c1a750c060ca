package tfe

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/store"
)

func (a *API) routeOutputs() {
	a.handle(http.MethodGet, "/workspaces/:wsid/current-state-version-outputs", a.currentOutputs)
	a.handle(http.MethodGet, "/state-versions/:svid/outputs", a.versionOutputs)
	a.handle(http.MethodGet, "/state-version-outputs/:outid", a.getOutput)
}

// outputID names one output of one version; it is opaque to clients.
func outputID(unitID string, n int64, name string) string {
	raw := unitID + "\x00" + strconv.FormatInt(n, 10) + "\x00" + name
	return "wsout-" + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseOutputID(id string) (string, int64, string, error) {
	notFound := store.Errorf(store.ENOTFOUND, "state version output %q not found", id)
	enc, ok := strings.CutPrefix(id, "wsout-")
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	parts := strings.Split(string(raw), "\x00")
	if !ok || err != nil || len(parts) != 3 {
		return "", 0, "", notFound
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", 0, "", notFound
	}
	return parts[0], n, parts[2], nil
}

// outputDoc renders one output. In lists a sensitive value is null, as in
// Terraform Cloud; the single-output read carries it.
func outputDoc(unitID string, n int64, name string, o store.Output, withSensitive bool) resource {
	var value any = o.Value
	if o.Sensitive && !withSensitive || len(o.Value) == 0 {
		value = nil
	}
	var detailed any = o.Type
	if len(o.Type) == 0 {
		detailed = "dynamic"
	}
	return resource{ID: outputID(unitID, n, name), Type: "state-version-outputs", Attributes: map[string]any{
		"name": name, "sensitive": o.Sensitive, "type": coarseType(o.Type), "value": value, "detailed-type": detailed,
	}}
}

// coarseType is Terraform Cloud's rough label of a cty type.
func coarseType(t json.RawMessage) string {
	var s string
	if json.Unmarshal(t, &s) == nil {
		if s == "bool" {
			return "boolean"
		}
		return s
	}
	var parts []json.RawMessage
	if json.Unmarshal(t, &parts) == nil && len(parts) > 0 && json.Unmarshal(parts[0], &s) == nil {
		switch s {
		case "list", "tuple", "set":
			return "array"
		}
		return "object"
	}
	return "string"
}

func (a *API) writeOutputs(w http.ResponseWriter, id string, n int64) error {
	outs, ver, err := a.store.Outputs(id, n)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(outs))
	for k := range outs {
		names = append(names, k)
	}
	sort.Strings(names)
	list := make([]resource, 0, len(names))
	for _, k := range names {
		list = append(list, outputDoc(id, ver.Version, k, outs[k], false))
	}
	writeDoc(w, http.StatusOK, map[string]any{"data": list})
	return nil
}

// currentOutputs is 200 with an empty list for a workspace without state
// (a 404 makes `terraform output` fail).
func (a *API) currentOutputs(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionRead)
	if err != nil {
		return err
	} else if u.CurrentVersion == 0 {
		writeDoc(w, http.StatusOK, map[string]any{"data": []resource{}})
		return nil
	}
	return a.writeOutputs(w, u.ID, 0)
}

func (a *API) versionOutputs(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, n, _, err := a.resolveFor(r, p.ByName("svid"))
	if err != nil {
		return err
	} else if n == 0 {
		writeDoc(w, http.StatusOK, map[string]any{"data": []resource{}})
		return nil
	}
	return a.writeOutputs(w, id, n)
}

func (a *API) getOutput(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, n, name, err := parseOutputID(p.ByName("outid"))
	if err != nil {
		return err
	} else if err := a.srv.Authorize(r, store.ActionRead, id); err != nil {
		return store.Errorf(store.ENOTFOUND, "state version output %q not found", p.ByName("outid"))
	}
	outs, _, err := a.store.Outputs(id, n)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return store.Errorf(store.ENOTFOUND, "state version output %q not found", p.ByName("outid"))
	} else if err != nil {
		return err
	}
	o, ok := outs[name]
	if !ok {
		return store.Errorf(store.ENOTFOUND, "state version output %q not found", p.ByName("outid"))
	}
	writeOne(w, http.StatusOK, outputDoc(id, n, name, o, true))
	return nil
}
