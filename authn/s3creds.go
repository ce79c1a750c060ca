package authn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/opentaco/opentaco/store"
)

// S3Credentials is the AWS credential_process document (SPEC §8).
type S3Credentials struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration"`
}

// s3Session is what a session token carries; it is signed, so the S3
// endpoint can recompute the secret without storing anything.
type s3Session struct {
	AccessKeyID string   `json:"akid"`
	Subject     string   `json:"sub"`
	Email       string   `json:"email,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Expires     int64    `json:"exp"`
}

// S3CredsTTL is how long issued S3 credentials live.
const S3CredsTTL = time.Hour

// IssueS3Credentials derives short-lived S3 credentials for p: the secret
// is an HMAC of the signed session under a server key kept in the
// database, and expiry is enforced by whoever verifies.
func (a *Authenticator) IssueS3Credentials(p *Principal) (*S3Credentials, error) {
	key, err := a.store.Secret("s3-credentials")
	if err != nil {
		return nil, err
	}
	id := make([]byte, 10)
	_, _ = rand.Read(id)
	exp := a.now().Add(S3CredsTTL).UTC()
	sess := s3Session{AccessKeyID: "OTAK" + strings.ToUpper(hex.EncodeToString(id)), Subject: p.Subject, Email: p.Email, Groups: p.Groups, Expires: exp.Unix()}
	body, _ := json.Marshal(sess)
	enc := base64.RawURLEncoding.EncodeToString(body)
	token := enc + "." + macHex(key, "session", enc)
	return &S3Credentials{
		Version: 1, AccessKeyID: sess.AccessKeyID, SessionToken: token,
		SecretAccessKey: macHex(key, "secret", token), Expiration: exp.Format(time.RFC3339),
	}, nil
}

// VerifyS3Session checks a session token and returns its principal and
// the secret key the request must have been signed with. Returns
// EUNAUTHORIZED (forged, expired, mismatched key ID).
func (a *Authenticator) VerifyS3Session(accessKeyID, token string) (*Principal, string, error) {
	key, err := a.store.Secret("s3-credentials")
	if err != nil {
		return nil, "", err
	}
	enc, mac, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(macHex(key, "session", enc))) {
		return nil, "", store.Errorf(store.EUNAUTHORIZED, "invalid S3 session token")
	}
	body, err := base64.RawURLEncoding.DecodeString(enc)
	var sess s3Session
	if err != nil || json.Unmarshal(body, &sess) != nil || sess.AccessKeyID != accessKeyID {
		return nil, "", store.Errorf(store.EUNAUTHORIZED, "invalid S3 session token")
	} else if a.now().Unix() > sess.Expires {
		return nil, "", store.Errorf(store.EUNAUTHORIZED, "S3 credentials have expired")
	}
	p := &Principal{Subject: sess.Subject, Email: sess.Email, Groups: sess.Groups, Kind: KindAccess, Scopes: []string{}}
	p.Roles = a.rolesOf(p.Subject, p.Groups)
	return p, macHex(key, "secret", token), nil
}

func macHex(key []byte, purpose, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}
