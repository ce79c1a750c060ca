package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

// openPaths need no credential (SPEC §6). A credential sent to them is
// used when valid and ignored when not: Terraform sends its stored token to
// discovery and login, and a stale one must not block a new login.
var openPaths = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true,
	"/v1/auth/config": true, "/v1/auth/exchange": true, "/v1/auth/token": true,
	"/oidc/jwks.json": true, "/.well-known/terraform.json": true,
}

// signedUpload matches the TFE upload URLs, which carry their own signed,
// expiring authorisation.
var signedUpload = regexp.MustCompile(`^/(tfe/)?api/v2/state-versions/[^/]+/(upload|json-upload)$`)

func isOpen(r *http.Request) bool {
	p := r.URL.Path
	return openPaths[p] || strings.HasPrefix(p, "/oauth/") || r.Method == http.MethodPut && signedUpload.MatchString(p)
}

// authenticate attaches the caller's principal to the request. A missing
// or bad credential on a protected route is answered 401 here, in the
// surface's error shape, and ok is false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	cred := authn.Credential(r)
	if s.auth == nil {
		return r.WithContext(authn.WithPrincipal(r.Context(), anonymous(cred))), true
	}
	p, err := s.auth.Authenticate(r.Context(), cred)
	switch {
	case err == nil:
		return r.WithContext(authn.WithPrincipal(r.Context(), p)), true
	case isOpen(r):
		return r, true
	case store.ErrorCode(err) != store.EUNAUTHORIZED:
		s.writeError(w, r, err, surfaceV1)
		return r, false
	}
	requestInfoFrom(r.Context()).route = "auth"
	challenge(w, http.StatusUnauthorized)
	for prefix, render := range s.renderers {
		if strings.HasPrefix(r.URL.Path, prefix) {
			render(w, r, http.StatusUnauthorized, store.EUNAUTHORIZED, store.ErrorMessage(err))
			return r, false
		}
	}
	s.writeError(w, r, err, surfaceV1)
	return r, false
}

// anonymous is the principal of every caller under --auth-disable: an
// admin. A caller that presents a credential gets a name derived from its
// digest, so two tokens are two lock holders; the credential itself is
// never logged.
func anonymous(cred string) *authn.Principal {
	p := &authn.Principal{Subject: "anonymous", Kind: authn.KindAnonymous, Roles: []string{"admin"}, Groups: []string{}, Scopes: []string{}}
	if cred != "" {
		sum := sha256.Sum256([]byte(cred))
		p.Subject = "anonymous-" + hex.EncodeToString(sum[:4])
	}
	return p
}
