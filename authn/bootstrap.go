package authn

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/opentaco/opentaco/store"
)

// AdminSubject is the subject of the built-in admin.
const AdminSubject = "admin"

// AdminTokenFile is where the bootstrap admin token is written.
const AdminTokenFile = "admin.token"

// Bootstrap makes sure the built-in admin has a working API token in
// <dataDir>/admin.token (mode 0600), creating one when the file is missing
// or its token no longer works. It returns the file's path; the token
// itself is never logged.
func (a *Authenticator) Bootstrap(dataDir string) (string, error) {
	if _, err := a.store.Assign(store.Assignment{Subject: AdminSubject, Role: "admin"}); err != nil {
		return "", err
	}
	path := filepath.Join(dataDir, AdminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		if p, err := a.authenticateAPIToken(strings.TrimSpace(string(b))); err == nil && p.Subject == AdminSubject {
			return path, os.Chmod(path, 0o600)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	secret, _, err := a.CreateAPIToken(&Principal{Subject: AdminSubject}, "bootstrap admin", 0)
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) { // a crash leftover keeps its mode
		return "", err
	}
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
