package tfe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"

	"github.com/opentaco/opentaco/store"
)

// UploadURLTTL is how long a signed state upload URL stays valid.
const UploadURLTTL = 5 * time.Minute

// signer makes and checks the signed URLs that Terraform PUTs state to
// without a bearer token: an HMAC over the path and the expiry, keyed by a
// secret kept in the database (so URLs survive a restart).
type signer struct {
	key []byte
	now func() time.Time
}

func (s *signer) mac(path string, expires int64) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(path))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// sign returns path with expires and sig query parameters.
func (s *signer) sign(path string) string {
	exp := s.now().Add(UploadURLTTL).Unix()
	q := url.Values{"expires": {strconv.FormatInt(exp, 10)}, "sig": {s.mac(path, exp)}}
	return path + "?" + q.Encode()
}

// verify checks the signature of a request for path. Returns EFORBIDDEN.
func (s *signer) verify(path string, q url.Values) error {
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return store.Errorf(store.EFORBIDDEN, "upload URL is not signed")
	}
	want := s.mac(path, exp)
	if !hmac.Equal([]byte(want), []byte(q.Get("sig"))) {
		return store.Errorf(store.EFORBIDDEN, "upload URL signature is invalid")
	} else if s.now().Unix() > exp {
		return store.Errorf(store.EFORBIDDEN, "upload URL has expired")
	}
	return nil
}
