package tfe

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/httpapi"
)

// LoginPorts is the loopback port range Terraform may use for the
// `terraform login` callback.
var LoginPorts = [2]int{10000, 10010}

func (a *API) routeDiscovery() {
	a.srv.Mount(http.MethodGet, "/.well-known/terraform.json", httpapi.SurfaceTFE, a.discovery, renderError)
	a.handle(http.MethodGet, "/ping", a.ping)
	a.handle(http.MethodGet, "/organizations/:org/entitlement-set", a.entitlements)
	a.handle(http.MethodGet, "/account/details", a.accountDetails)
	a.handle(http.MethodGet, "/organizations/:org", a.organization)
}

func (a *API) discovery(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	root := roots[0] + "/"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(map[string]any{
		"tfe.v2": root, "tfe.v2.1": root, "tfe.v2.2": root, "state.v2": root,
		"login.v1": map[string]any{
			"client": "terraform-cli", "grant_types": []string{"authz_code"},
			"authz": "/oauth/authorization", "token": "/oauth/token", "ports": LoginPorts,
		},
	})
}

func (a *API) ping(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// entitlements says "state storage, no remote operations", which makes
// Terraform run everything locally.
func (a *API) entitlements(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	attrs := map[string]any{"operations": false, "state-storage": true}
	for _, k := range []string{"private-module-registry", "sentinel", "teams", "vcs-integrations", "agents", "audit-logging", "cost-estimation", "run-tasks", "sso"} {
		attrs[k] = false
	}
	writeOne(w, http.StatusOK, resource{ID: "org-" + p.ByName("org"), Type: "entitlement-sets", Attributes: attrs})
	return nil
}

func (a *API) accountDetails(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	name := httpapi.Who(r)
	writeOne(w, http.StatusOK, resource{ID: "user-" + name, Type: "users", Attributes: map[string]any{"username": name}})
	return nil
}

func (a *API) organization(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	org := p.ByName("org")
	writeOne(w, http.StatusOK, resource{ID: org, Type: "organizations", Attributes: map[string]any{
		"name": org, "external-id": "org-" + org, "permissions": map[string]any{"can-create-workspace": true},
	}})
	return nil
}
