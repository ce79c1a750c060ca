package cloud

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/opentaco/opentaco/e2e/e2etest"
)

// TestCloud_Discovery is BR-12: discovery, the API version header on ping
// and the entitlement set, then `init` with the cloud block.
func TestCloud_Discovery(t *testing.T) {
	t.Parallel()
	srv := startServer(t)

	disco := srv.Do(t, http.MethodGet, "/.well-known/terraform.json", "", nil, "Accept", "application/json")
	e2etest.Expect(t, "discovery (no credentials)", disco, http.StatusOK)
	if mt, _, err := mime.ParseMediaType(disco.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("discovery Content-Type %q, want application/json", disco.Header.Get("Content-Type"))
	}
	var services map[string]json.RawMessage
	e2etest.MustJSON(t, disco.Body, &services)
	base, _ := url.Parse(srv.URL + "/.well-known/terraform.json")
	for _, key := range []string{"tfe.v2", "tfe.v2.1", "state.v2"} {
		var v string
		if err := json.Unmarshal(services[key], &v); err != nil || v == "" {
			t.Errorf("discovery %q = %s, want a URL string", key, services[key])
			continue
		}
		if !strings.HasSuffix(v, "/") {
			t.Errorf("discovery %q = %q, want a trailing slash", key, v)
		}
		// The advertised root must be the API: its ping carries the header.
		u, err := base.Parse(v)
		if err != nil {
			t.Errorf("discovery %q = %q: %v", key, v, err)
			continue
		}
		checkPing(t, srv, key+" → "+u.String(), u.String()+"ping")
	}
	var login struct {
		Client     string   `json:"client"`
		GrantTypes []string `json:"grant_types"`
		Authz      string   `json:"authz"`
		Token      string   `json:"token"`
		Ports      []int    `json:"ports"`
	}
	if err := json.Unmarshal(services["login.v1"], &login); err != nil || login.Client == "" || login.Token == "" {
		t.Errorf("discovery login.v1 = %s, want an object with client and token", services["login.v1"])
	} else if len(login.Ports) != 0 && (len(login.Ports) != 2 || login.Ports[0] < 1024 || login.Ports[1] > 65535 || login.Ports[0] > login.Ports[1]) {
		t.Errorf("discovery login.v1 ports %v, want [min, max] within 1024–65535", login.Ports)
	}
	if _, ok := services["versions.v1"]; ok {
		t.Errorf("discovery publishes versions.v1, which makes the remote backend call it (TFE.md §1.1)")
	}

	checkPing(t, srv, "/api/v2/ping", srv.URL+"/api/v2/ping")
	checkPing(t, srv, "/tfe/api/v2/ping", srv.URL+"/tfe/api/v2/ping")

	for _, root := range []string{"/tfe/api/v2", "/api/v2"} {
		r := srv.Do(t, http.MethodGet, root+"/organizations/"+org+"/entitlement-set", tok, nil, "Accept", "application/vnd.api+json")
		e2etest.Expect(t, root+" entitlement-set", r, http.StatusOK)
		es := one(t, r, "entitlement-sets")
		if ops, ok := es.boolean("operations"); !ok || ops {
			t.Errorf("%s entitlement-set: operations = %v, want false", root, es.Attributes["operations"])
		}
	}

	e2etest.ForEachTool(t, func(t *testing.T, tl e2etest.Tool) {
		ws := "disco-" + tl.Short()
		c := newConfig(t, srv, "r", cloudBlock(srv.Host, ws), tok)
		res := c.mustRun(t, tl, "init")
		if tl.Name == "terraform" && !strings.Contains(res.Out(), "HCP Terraform has been successfully initialized!") {
			t.Errorf("init output lacks \"HCP Terraform has been successfully initialized!\":\n%s", e2etest.Tail(res.Out(), 2000))
		}
	})
}

// checkPing requires a 2xx ping carrying TFP-API-Version ≥ 2.5.
func checkPing(t *testing.T, srv *server, what, u string) {
	t.Helper()
	r := srv.Do(t, http.MethodGet, u, tok, nil, "Accept", "application/vnd.api+json")
	if r.Status < 200 || r.Status > 299 {
		t.Errorf("ping %s: status %d, want 2xx", what, r.Status)
	}
	v := r.Header.Get("TFP-API-Version")
	major, minor, ok := strings.Cut(v, ".")
	maj, err1 := strconv.Atoi(major)
	mnr, err2 := strconv.Atoi(minor)
	if !ok || err1 != nil || err2 != nil || maj < 2 || (maj == 2 && mnr < 5) {
		t.Errorf("ping %s: TFP-API-Version %q, want 2.5 or later", what, v)
	}
}

// ---------------------------------------------------------------------------
// BR-13

// rawState is a small version-4 state with one output v.
func rawState(serial int64, lineage, v string) []byte {
	return fmt.Appendf(nil, `{
  "version": 4,
  "terraform_version": "1.11.4",
  "serial": %d,
  "lineage": %q,
  "outputs": {
    "v": {
      "value": %q,
      "type": "string"
    }
  },
  "resources": [],
  "check_results": null
}
`, serial, lineage, v)
}

// jsonState is the `terraform show -json` form that goes to the JSON
// upload URL.
func jsonState(v string) []byte {
	return fmt.Appendf(nil, `{"format_version":"1.0","terraform_version":"1.11.4","values":{"outputs":{"v":{"sensitive":false,"value":%q,"type":"string"}},"root_module":{}}}`, v)
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// svCreate is the body of POST /workspaces/{id}/state-versions as
// Terraform sends it; inline adds the base64 state (the legacy form).
func svCreate(serial int64, md5sum, lineage, v string, inline []byte) []byte {
	attrs := map[string]any{
		"serial":             serial,
		"md5":                md5sum,
		"lineage":            lineage,
		"force":              false,
		"json-state-outputs": base64.StdEncoding.EncodeToString(fmt.Appendf(nil, `{"v":{"sensitive":false,"value":%q,"type":"string"}}`, v)),
	}
	if inline != nil {
		attrs["state"] = base64.StdEncoding.EncodeToString(inline)
		attrs["json-state"] = base64.StdEncoding.EncodeToString(jsonState(v))
	}
	b, _ := json.Marshal(map[string]any{"data": map[string]any{"type": "state-versions", "attributes": attrs}})
	return b
}

// uploadURLs checks a pending create answer and returns its two upload
// URLs.
func uploadURLs(t *testing.T, srv *server, sv *resource) (raw, js string) {
	t.Helper()
	if st := sv.str("status"); st != "pending" {
		t.Errorf("created state version %s: status %q, want pending", sv.ID, st)
	}
	raw, js = sv.str("hosted-state-upload-url"), sv.str("hosted-json-state-upload-url")
	for name, u := range map[string]string{"hosted-state-upload-url": raw, "hosted-json-state-upload-url": js} {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Host != srv.Host {
			t.Fatalf("state version %s: %s = %q, want an absolute https URL on %s", sv.ID, name, u, srv.Host)
		}
	}
	return raw, js
}

// put uploads b to a signed URL the way go-tfe does: no Authorization.
func put(t *testing.T, srv *server, u string, b []byte) e2etest.Response {
	t.Helper()
	return srv.Do(t, http.MethodPut, u, "", b, "Content-Type", "application/octet-stream", "Accept", "application/json, */*")
}

// tamper changes one character of the URL's signature: the query value
// whose name mentions "sig" (else the longest query value, else the
// longest path segment).
func tamper(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	key := ""
	for k, vs := range q {
		if strings.Contains(strings.ToLower(k), "sig") {
			key = k
			break
		}
		if key == "" || len(vs[0]) > len(q.Get(key)) {
			key = k
		}
	}
	if key != "" && q.Get(key) != "" {
		q.Set(key, flipOne(q.Get(key)))
		p.RawQuery = q.Encode()
		return p.String()
	}
	segs := strings.Split(p.Path, "/")
	longest := 0
	for i, s := range segs {
		if len(s) > len(segs[longest]) {
			longest = i
		}
	}
	segs[longest] = flipOne(segs[longest])
	p.Path = strings.Join(segs, "/")
	p.RawPath = ""
	return p.String()
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// flipOne changes the middle character of s to another of its class.
func flipOne(s string) string {
	b := []byte(s)
	i := len(b) / 2
	switch c := b[i]; {
	case c >= '0' && c <= '9':
		b[i] = '0' + (c-'0'+1)%10
	case c >= 'a' && c <= 'f': // stay a hex digit
		b[i] = 'a' + (c-'a'+1)%6
	case c >= 'A' && c <= 'F':
		b[i] = 'A' + (c-'A'+1)%6
	case c >= 'a' && c <= 'z':
		b[i] = 'a' + (c-'a'+1)%26
	case c >= 'A' && c <= 'Z':
		b[i] = 'A' + (c-'A'+1)%26
	case c == '-':
		b[i] = '_'
	default:
		b[i] = 'A'
	}
	return string(b)
}

// TestCloud_UploadFlow is BR-13 by hand: the state-less create, the
// unauthenticated PUT to the signed URL, finalization, the JSON upload,
// the refusals (md5 mismatch, tampered signature, serial attribute that
// disagrees with the bytes), the legacy inline form, and retried creates.
// Versions are compared by serial and md5; that a state version keeps
// the ID its create answered with is checked on its own.
func TestCloud_UploadFlow(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	ws := "upload__api"
	wsID := srv.createWorkspace(t, ws).ID
	const lineage = "6b1e7c1a-0000-4000-8000-000000000001"
	svPath := "/workspaces/" + wsID + "/state-versions"

	// current returns the current state version, nil when there is none.
	current := func() *resource {
		t.Helper()
		r := srv.api(t, http.MethodGet, "/workspaces/"+wsID+"/current-state-version", tok, nil)
		if r.Status == http.StatusNotFound {
			return nil
		}
		e2etest.Expect(t, "current-state-version", r, http.StatusOK)
		return one(t, r, "state-versions")
	}
	// wantCurrent checks that the current version holds state b, and that
	// it is the version created as id (when id is not empty).
	wantCurrent := func(what string, b []byte, id string) {
		t.Helper()
		cur := current()
		if cur == nil {
			t.Errorf("%s: no current state version, want serial %d", what, e2etest.ParseState(t, b).Serial)
			return
		}
		serial, _ := cur.num("serial")
		if serial != e2etest.ParseState(t, b).Serial || cur.str("md5") != md5hex(b) {
			t.Errorf("%s: current is %s with serial %d md5 %s, want serial %d md5 %s", what, cur.ID, serial, cur.str("md5"), e2etest.ParseState(t, b).Serial, md5hex(b))
		}
		if id != "" && cur.ID != id {
			t.Errorf("%s: current-state-version has id %s, but the version was created as %s (a state version must keep its ID: BR-13 2c, TFE.md §4.5 \"return the same document\")", what, cur.ID, id)
		}
	}
	getSV := func(id string) *resource {
		t.Helper()
		r := srv.api(t, http.MethodGet, "/state-versions/"+id, tok, nil)
		e2etest.Expect(t, "GET state version "+id, r, http.StatusOK)
		return one(t, r, "state-versions")
	}
	nVersions := func() int {
		t.Helper()
		return len(srv.versions(t, ws))
	}
	ok2xx := func(what string, r e2etest.Response) {
		t.Helper()
		if r.Status < 200 || r.Status > 299 {
			t.Errorf("%s: %s, want 2xx", what, r)
		}
	}
	if cur := current(); cur != nil {
		t.Fatalf("new workspace has current state version %s", cur.ID)
	}

	lock := srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/actions/lock", tok, []byte(`{"data":{"type":"","attributes":{"reason":"Locked by Terraform"}}}`))
	e2etest.Expect(t, "lock", lock, http.StatusOK)
	if l, _ := one(t, lock, "workspaces").boolean("locked"); !l {
		t.Fatalf("lock answer: locked = %v, want true", l)
	}

	// 2a–2d: create without state, PUT without credentials, finalized.
	s1 := rawState(1, lineage, "one")
	r := srv.api(t, http.MethodPost, svPath, tok, svCreate(1, md5hex(s1), lineage, "one", nil))
	e2etest.Expect(t, "create state version 1 (no state)", r, http.StatusCreated)
	sv1 := one(t, r, "state-versions")
	raw1, json1 := uploadURLs(t, srv, sv1)
	if cur := current(); cur != nil {
		t.Errorf("a pending version is already current (%s)", cur.ID)
	}
	if up := put(t, srv, raw1, s1); up.Status < 200 || up.Status > 299 {
		t.Fatalf("PUT state to the signed URL without credentials: %s, want 2xx", up)
	}
	got := getSV(sv1.ID)
	if st := got.str("status"); st != "finalized" {
		t.Errorf("state version %s after the PUT: status %q, want finalized", sv1.ID, st)
	}
	if n, _ := got.num("serial"); n != 1 {
		t.Errorf("state version %s: serial %v, want 1", sv1.ID, got.Attributes["serial"])
	}
	wantCurrent("after the upload of serial 1", s1, sv1.ID)
	dl := got.str("hosted-state-download-url")
	if hostOf(dl) == "" && !strings.HasPrefix(dl, "/") {
		t.Fatalf("hosted-state-download-url %q is neither absolute nor host-relative", dl)
	}
	if d := srv.Do(t, http.MethodGet, dl, tok, nil, "Accept", "application/json"); d.Status != http.StatusOK || string(d.Body) != string(s1) {
		t.Errorf("GET hosted-state-download-url: %d, %d bytes; want 200 and the %d uploaded bytes", d.Status, len(d.Body), len(s1))
	}
	// Terraform PUTs the JSON state too, possibly after the raw one.
	ok2xx("PUT JSON state after the raw state", put(t, srv, json1, jsonState("one")))
	if n := nVersions(); n != 1 {
		t.Errorf("/v1 versions after the first upload: %d, want 1", n)
	}
	if b := srv.download(t, ws, 0); string(b) != string(s1) {
		t.Errorf("/v1 download differs from the uploaded bytes")
	}

	// A retried create (same serial and md5) returns the existing version.
	r = srv.api(t, http.MethodPost, svPath, tok, svCreate(1, md5hex(s1), lineage, "one", nil))
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Errorf("retried create of serial 1: %s, want 200 or 201 with the existing version", r)
	} else if again := one(t, r, "state-versions"); again.str("status") != "finalized" || again.str("md5") != md5hex(s1) {
		t.Errorf("retried create of serial 1 answered %s (status %q, md5 %s), want the existing finalized version %s", again.ID, again.str("status"), again.str("md5"), sv1.ID)
	}
	if n := nVersions(); n != 1 {
		t.Errorf("/v1 versions after the retried create: %d, want 1", n)
	}

	// Step 3: the uploaded bytes do not match the declared md5.
	s2 := rawState(2, lineage, "two")
	r = srv.api(t, http.MethodPost, svPath, tok, svCreate(2, md5hex(s2), lineage, "two", nil))
	e2etest.Expect(t, "create state version 2", r, http.StatusCreated)
	sv2 := one(t, r, "state-versions")
	raw2, _ := uploadURLs(t, srv, sv2)
	expect4xx(t, "PUT of bytes whose md5 differs from the declared one", put(t, srv, raw2, rawState(2, lineage, "TWO")))
	wantCurrent("after the md5 mismatch", s1, "")
	if n := nVersions(); n != 1 {
		t.Errorf("/v1 versions after the md5 mismatch: %d, want 1", n)
	}

	// A tampered signature is refused; a JSON upload alone does not
	// finalize; the untampered URL then works.
	s3 := rawState(3, lineage, "three")
	r = srv.api(t, http.MethodPost, svPath, tok, svCreate(3, md5hex(s3), lineage, "three", nil))
	e2etest.Expect(t, "create state version 3", r, http.StatusCreated)
	sv3 := one(t, r, "state-versions")
	raw3, json3 := uploadURLs(t, srv, sv3)
	bad := tamper(t, raw3)
	t.Logf("tampered %s → %s", raw3, bad)
	expect4xx(t, "PUT to an upload URL with a tampered signature", put(t, srv, bad, s3))
	expect4xx(t, "PUT to the JSON upload URL with a tampered signature", put(t, srv, tamper(t, json3), jsonState("three")))
	// The signature of one version does not open another's upload URL.
	if u2, u3 := mustURL(t, raw2), mustURL(t, raw3); true {
		u2.RawQuery = u3.RawQuery
		expect4xx(t, "PUT to version 2's upload path with version 3's signature", put(t, srv, u2.String(), s2))
	}
	wantCurrent("after the tampered PUT", s1, "")
	ok2xx("PUT JSON state before the raw state", put(t, srv, json3, jsonState("three")))
	if st := getSV(sv3.ID).str("status"); st == "finalized" {
		t.Errorf("the JSON upload alone finalized state version %s", sv3.ID)
	}
	wantCurrent("after the JSON upload alone", s1, "")
	ok2xx("PUT to the untampered URL", put(t, srv, raw3, s3))
	wantCurrent("after the upload of serial 3", s3, sv3.ID)

	// The serial attribute disagrees with the bytes: 422, never current.
	s4 := rawState(4, lineage, "four")
	r = srv.api(t, http.MethodPost, svPath, tok, svCreate(10, md5hex(s4), lineage, "four", nil))
	e2etest.Expect(t, "create state version with serial attribute 10", r, http.StatusCreated)
	sv4 := one(t, r, "state-versions")
	raw4, _ := uploadURLs(t, srv, sv4)
	if up := put(t, srv, raw4, s4); up.Status != http.StatusUnprocessableEntity {
		t.Errorf("PUT of bytes with serial 4 for a create that declared serial 10: %s, want 422", up)
	}
	wantCurrent("after the serial mismatch (upload)", s3, "")
	if rr := srv.api(t, http.MethodGet, "/state-versions/"+sv4.ID, tok, nil); rr.Status == http.StatusOK {
		if st := one(t, rr, "state-versions").str("status"); st == "finalized" {
			t.Errorf("state version %s with a disagreeing serial is finalized", sv4.ID)
		}
	}
	s5 := rawState(5, lineage, "five")
	if rr := srv.api(t, http.MethodPost, svPath, tok, svCreate(6, md5hex(s5), lineage, "five", s5)); rr.Status != http.StatusUnprocessableEntity {
		t.Errorf("inline create of bytes with serial 5 declaring serial 6: %s, want 422", rr)
	}
	wantCurrent("after the serial mismatch (inline)", s3, "")
	// Inline state whose md5 differs from the declared one.
	if rr := srv.api(t, http.MethodPost, svPath, tok, svCreate(5, md5hex(s4), lineage, "five", s5)); rr.Status != http.StatusUnprocessableEntity {
		t.Errorf("inline create whose md5 is not that of the state: %s, want 422", rr)
	}
	// No md5 at all.
	noMD5 := fmt.Appendf(nil, `{"data":{"type":"state-versions","attributes":{"serial":5,"lineage":%q}}}`, lineage)
	if rr := srv.api(t, http.MethodPost, svPath, tok, noMD5); rr.Status != http.StatusUnprocessableEntity {
		t.Errorf("create without md5: %s, want 422", rr)
	}
	wantCurrent("after the refusals", s3, "")
	if n := nVersions(); n != 2 {
		t.Errorf("/v1 versions after the refusals: %d, want 2", n)
	}

	// Step 4: the legacy inline form is finalized at once.
	s6 := rawState(6, lineage, "six")
	r = srv.api(t, http.MethodPost, svPath, tok, svCreate(6, md5hex(s6), lineage, "six", s6))
	e2etest.Expect(t, "inline create of serial 6", r, http.StatusCreated)
	sv6 := one(t, r, "state-versions")
	if st := sv6.str("status"); st != "finalized" {
		t.Errorf("inline create: status %q, want finalized", st)
	}
	wantCurrent("after the inline create", s6, sv6.ID)
	if b := srv.download(t, ws, 0); string(b) != string(s6) {
		t.Errorf("/v1 download after the inline create differs from the inline bytes")
	}
	r = srv.api(t, http.MethodPost, svPath, tok, svCreate(6, md5hex(s6), lineage, "six", s6))
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Errorf("retried inline create: %s, want 200 or 201", r)
	} else if again := one(t, r, "state-versions"); again.ID != sv6.ID {
		t.Errorf("retried inline create answered %s, want the existing %s", again.ID, sv6.ID)
	}
	if n := nVersions(); n != 3 {
		t.Errorf("/v1 versions at the end: %d, want 3 (serials 1, 3, 6)", n)
	}
	var serials []int64
	for _, sv := range srv.stateVersions(t, wsID) {
		if sv.str("status") == "finalized" {
			n, _ := sv.num("serial")
			serials = append(serials, n)
		}
	}
	if fmt.Sprint(serials) != "[6 3 1]" {
		t.Errorf("finalized state versions listed with serials %v, want [6 3 1] (newest first)", serials)
	}

	// Stale pending versions must not keep the holder from unlocking
	// (Terraform retries forever on "still pending", TFE.md §5).
	un := srv.api(t, http.MethodPost, "/workspaces/"+wsID+"/actions/unlock", tok, nil)
	e2etest.Expect(t, "unlock", un, http.StatusOK)
	if l, _ := one(t, un, "workspaces").boolean("locked"); l {
		t.Errorf("unlock answer: locked = true")
	}
}
