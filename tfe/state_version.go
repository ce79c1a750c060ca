package tfe

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
)

func (a *API) routeStateVersions() {
	a.handle(http.MethodPost, "/workspaces/:wsid/state-versions", a.createStateVersion)
	a.handle(http.MethodGet, "/workspaces/:wsid/state-versions", a.listStateVersions)
	a.handle(http.MethodGet, "/workspaces/:wsid/current-state-version", a.currentStateVersion)
	a.handle(http.MethodGet, "/state-versions", a.listStateVersions)
	a.handle(http.MethodGet, "/state-versions/:svid", a.getStateVersion)
	a.handle(http.MethodGet, "/state-versions/:svid/download", a.downloadStateVersion)
	// Signed: no bearer token (go-tfe sends none to upload URLs).
	a.handle(http.MethodPut, "/state-versions/:svid/upload", a.uploadState)
	a.handle(http.MethodPut, "/state-versions/:svid/json-upload", a.uploadJSONState)
	a.routeOutputs()
}

// svID names unit version n: "sv-<workspace name>.v<n>".
func svID(unitID string, n int64) string {
	return "sv-" + workspaceName(unitID) + ".v" + strconv.FormatInt(n, 10)
}

// parseSVID splits a state-version ID: "sv-<name>.v<n>" names unit
// version n; "sv-<name>.p<hex>" a version declared through the upload flow
// (pending, or finalized under that ID). Returns the unit ID, n (0 for the
// second form) and ENOTFOUND for anything else.
func parseSVID(svid string) (string, int64, error) {
	notFound := store.Errorf(store.ENOTFOUND, "state version %q not found", svid)
	rest, ok := strings.CutPrefix(svid, "sv-")
	i := strings.LastIndex(rest, ".")
	if !ok || i < 0 || i == len(rest)-1 {
		return "", 0, notFound
	}
	id, err := store.DecodeID(rest[:i])
	if err != nil {
		return "", 0, notFound
	}
	switch suffix := rest[i+1:]; suffix[0] {
	case 'v':
		if n, err := strconv.ParseInt(suffix[1:], 10, 64); err == nil && n > 0 {
			return id, n, nil
		}
	case 'p':
		if _, err := hex.DecodeString(suffix[1:]); err == nil && len(suffix) > 1 {
			return id, 0, nil
		}
	}
	return "", 0, notFound
}

// pendingPrefix is the start of the ID of a version declared for unitID.
func pendingPrefix(unitID string) string { return "sv-" + workspaceName(unitID) + ".p" }

// stateVersionDoc renders a stored unit version.
func (a *API) stateVersionDoc(r *http.Request, unitID string, v *store.Version) resource {
	id := v.TFEID
	if id == "" {
		id = svID(unitID, v.Version)
	}
	root := baseURL(r) + apiRoot(r)
	return resource{
		ID: id, Type: "state-versions",
		Attributes: map[string]any{
			"status": "finalized", "serial": v.Serial, "lineage": v.Lineage, "md5": v.MD5, "size": v.Size,
			"created-at": timestamp(v.Timestamp), "resources-processed": true, "state-version": 4,
			"hosted-state-download-url": root + "/state-versions/" + id + "/download",
		},
		Relationships: map[string]any{"workspace": map[string]any{"data": map[string]string{"id": "ws-" + workspaceName(unitID), "type": "workspaces"}}},
		Links:         map[string]any{"self": apiRoot(r) + "/state-versions/" + id},
	}
}

// pendingDoc renders a declared version waiting for its bytes, with the
// signed upload URLs.
func (a *API) pendingDoc(r *http.Request, p *store.PendingVersion) (resource, error) {
	sg, err := a.signer()
	if err != nil {
		return resource{}, err
	}
	base, path := baseURL(r), apiRoot(r)+"/state-versions/"+p.ID
	return resource{
		ID: p.ID, Type: "state-versions",
		Attributes: map[string]any{
			"status": "pending", "serial": p.Serial, "lineage": p.Lineage, "md5": p.MD5,
			"created-at": timestamp(p.Created), "resources-processed": false,
			"hosted-state-upload-url":      base + sg.sign(path+"/upload"),
			"hosted-json-state-upload-url": base + sg.sign(path+"/json-upload"),
			"hosted-state-download-url":    base + path + "/download",
		},
		Relationships: map[string]any{"workspace": map[string]any{"data": map[string]string{"id": "ws-" + workspaceName(p.UnitID), "type": "workspaces"}}},
	}, nil
}

func (a *API) signer() (*signer, error) {
	key, err := a.store.Secret("tfe-upload-url")
	if err != nil {
		return nil, err
	}
	return &signer{key: key, now: a.now}, nil
}

// createBody is the body of POST /workspaces/{id}/state-versions.
type createBody struct {
	Data struct {
		Attributes struct {
			Serial      *int64 `json:"serial"`
			MD5         string `json:"md5"`
			Lineage     string `json:"lineage"`
			Force       bool   `json:"force"`
			State       string `json:"state"`
			JSONOutputs string `json:"json-state-outputs"`
		} `json:"attributes"`
	} `json:"data"`
}

// createStateVersion declares a state version. With an inline base64
// state it is stored at once; otherwise it waits, pending, for its bytes
// at the signed upload URL. Serial and lineage are recorded, not enforced
// (state push -force sends force:false with a foreign lineage).
func (a *API) createStateVersion(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionWrite)
	if err != nil {
		return err
	}
	var body createBody
	if err := a.decodeDoc(r, &body); err != nil {
		return err
	}
	attrs := body.Data.Attributes
	if attrs.Serial == nil || attrs.MD5 == "" {
		return store.Errorf(store.EINVALID, "serial and md5 are required")
	}
	outs, err := decodeOutputs(attrs.JSONOutputs)
	if err != nil {
		return err
	}
	if _, err := hex.DecodeString(attrs.MD5); err != nil || len(attrs.MD5) != 32 {
		return store.Errorf(store.EINVALID, "md5 %q is not 32 hex digits", attrs.MD5)
	}
	pv := store.PendingVersion{ID: pendingPrefix(u.ID), UnitID: u.ID, Serial: *attrs.Serial, MD5: strings.ToLower(attrs.MD5),
		Lineage: attrs.Lineage, Outputs: outs, LockID: lockID(r), Who: httpapi.Who(r)}
	var state []byte
	if attrs.State != "" {
		if state, err = inlineState(attrs.State, pv.MD5, pv.Serial); err != nil {
			return err
		}
	}
	pending, cur, err := a.srv.StoreFor(r).CreatePending(pv)
	if err != nil {
		return lockConflict(err, workspaceName(u.ID), "locked by someone else")
	} else if cur != nil { // a retried create of the current version
		writeOne(w, http.StatusCreated, a.stateVersionDoc(r, u.ID, cur))
		return nil
	} else if state == nil {
		doc, err := a.pendingDoc(r, pending)
		if err == nil {
			writeOne(w, http.StatusCreated, doc)
		}
		return err
	}
	v, err := a.srv.StoreFor(r).FinalizePending(pending.ID, state)
	if err != nil {
		return lockConflict(err, workspaceName(u.ID), "locked by someone else")
	}
	writeOne(w, http.StatusCreated, a.stateVersionDoc(r, u.ID, v))
	return nil
}

// inlineState decodes the legacy base64 state and checks it against the
// declared MD5 and serial. Returns EINVALID.
func inlineState(b64, wantMD5 string, serial int64) ([]byte, error) {
	state, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, store.Errorf(store.EINVALID, "state is not valid base64")
	}
	sum := md5.Sum(state)
	if got := hex.EncodeToString(sum[:]); got != wantMD5 {
		return nil, store.Errorf(store.EINVALID, "state has MD5 %s, but %s was declared", got, wantMD5)
	}
	info, err := store.ParseState(state)
	if err != nil {
		return nil, err
	} else if info.Serial != serial {
		return nil, store.Errorf(store.EINVALID, "state has serial %d, but %d was declared", info.Serial, serial)
	}
	return state, nil
}

// decodeOutputs decodes json-state-outputs (base64 of a JSON object).
func decodeOutputs(b64 string) (json.RawMessage, error) {
	if b64 == "" {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, store.Errorf(store.EINVALID, "json-state-outputs is not valid base64")
	}
	var outs map[string]store.Output
	if err := json.Unmarshal(raw, &outs); err != nil {
		return nil, store.Errorf(store.EINVALID, "json-state-outputs is not a JSON object of outputs")
	}
	return raw, nil
}

// uploadState receives the bytes of a pending version at its signed URL.
func (a *API) uploadState(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if err := a.verifySigned(r); err != nil {
		return err
	}
	data, err := httpapi.ReadBody(r, a.srv.MaxStateSize())
	if err != nil {
		return err
	}
	defer httpapi.ReleaseLarge(len(data))
	// No principal here (the URL is the authorisation): the store audits
	// the write as the principal that declared the version.
	db := a.store.As(store.Actor{RequestID: httpapi.RequestID(r)})
	if _, err := db.FinalizePending(p.ByName("svid"), data); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// uploadJSONState accepts the `terraform show -json` form at its signed
// URL. It is not needed for anything, so it is read and dropped.
func (a *API) uploadJSONState(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if err := a.verifySigned(r); err != nil {
		return err
	}
	if _, err := httpapi.ReadBody(r, a.srv.MaxStateSize()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) verifySigned(r *http.Request) error {
	sg, err := a.signer()
	if err != nil {
		return err
	}
	return sg.verify(r.URL.Path, r.URL.Query())
}

// resolve maps a state-version ID to its unit and version. A declared
// version whose bytes have not arrived gives version 0 and its pending
// record; once finalized, its ID names the unit version that recorded it.
func (a *API) resolve(svid string) (string, int64, *store.PendingVersion, error) {
	id, n, err := parseSVID(svid)
	if err != nil || n > 0 {
		return id, n, nil, err
	}
	if p, err := a.store.GetPending(svid); err == nil {
		return p.UnitID, p.Version, p, nil
	} else if store.ErrorCode(err) != store.ENOTFOUND {
		return "", 0, nil, err
	}
	vs, err := a.store.ListVersions(id) // the pending record has expired
	if err != nil && store.ErrorCode(err) != store.ENOTFOUND {
		return "", 0, nil, err
	}
	for _, v := range vs {
		if v.TFEID == svid {
			return id, v.Version, nil, nil
		}
	}
	return "", 0, nil, store.Errorf(store.ENOTFOUND, "state version %q not found", svid)
}

// resolveFor is resolve for a caller who must be allowed to read the unit;
// an unreadable one is ENOTFOUND.
func (a *API) resolveFor(r *http.Request, svid string) (string, int64, *store.PendingVersion, error) {
	id, n, p, err := a.resolve(svid)
	if err != nil {
		return "", 0, nil, err
	} else if err := a.srv.Authorize(r, store.ActionRead, id); err != nil {
		return "", 0, nil, store.Errorf(store.ENOTFOUND, "state version %q not found", svid)
	}
	return id, n, p, nil
}

func (a *API) getStateVersion(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	svid := p.ByName("svid")
	id, n, pending, err := a.resolveFor(r, svid)
	if err != nil {
		return err
	} else if n == 0 {
		doc, err := a.pendingDoc(r, pending)
		if err == nil {
			writeOne(w, http.StatusOK, doc)
		}
		return err
	}
	v, err := a.version(id, n, svid)
	if err != nil {
		return err
	}
	writeOne(w, http.StatusOK, a.stateVersionDoc(r, id, v))
	return nil
}

// version returns version n of unit id; anything missing is ENOTFOUND
// under the state-version ID.
func (a *API) version(id string, n int64, svid string) (*store.Version, error) {
	vs, err := a.store.ListVersions(id)
	if err != nil && store.ErrorCode(err) != store.ENOTFOUND {
		return nil, err
	}
	for _, v := range vs {
		if v.Version == n {
			return v, nil
		}
	}
	return nil, store.Errorf(store.ENOTFOUND, "state version %q not found", svid)
}

func (a *API) downloadStateVersion(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	svid := p.ByName("svid")
	id, n, _, err := a.resolveFor(r, svid)
	if err != nil {
		return err
	} else if n == 0 {
		return store.Errorf(store.ENOTFOUND, "state version %q has no state uploaded yet", svid)
	}
	data, _, err := a.store.ReadState(id, n)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return store.Errorf(store.ENOTFOUND, "state version %q not found", svid)
	} else if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	httpapi.ReleaseLarge(len(data))
	return nil
}

// currentStateVersion is 404 for a workspace without state: the only way
// to say "empty" that clients accept.
func (a *API) currentStateVersion(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	u, err := a.unitOf(r, p, store.ActionRead)
	if err != nil {
		return err
	} else if u.CurrentVersion == 0 {
		return store.Errorf(store.ENOTFOUND, "workspace %q has no state yet", workspaceName(u.ID))
	}
	v, err := a.version(u.ID, u.CurrentVersion, svID(u.ID, u.CurrentVersion))
	if err != nil {
		return err
	}
	writeOne(w, http.StatusOK, a.stateVersionDoc(r, u.ID, v))
	return nil
}

// listStateVersions lists a workspace's versions newest first, from
// /workspaces/{id}/state-versions or /state-versions?filter[workspace][name]=.
func (a *API) listStateVersions(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	var id string
	if p.ByName("wsid") != "" {
		u, err := a.unitOf(r, p, store.ActionRead)
		if err != nil {
			return err
		}
		id = u.ID
	} else {
		name := r.URL.Query().Get("filter[workspace][name]")
		if name == "" {
			return store.Errorf(store.EINVALID, "filter[workspace][name] is required")
		}
		u, err := a.unitOf(r, httprouter.Params{{Key: "name", Value: name}}, store.ActionRead)
		if err != nil {
			return err
		}
		id = u.ID
	}
	vs, err := a.store.ListVersions(id)
	if err != nil {
		return err
	}
	out := make([]resource, 0, len(vs))
	for _, v := range vs {
		out = append(out, a.stateVersionDoc(r, id, v))
	}
	writeList(w, pageOf(r), out)
	return nil
}
