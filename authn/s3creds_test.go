package authn_test

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

func TestAuthenticator_S3Credentials(t *testing.T) {
	e := newEnv(t, authn.Config{})
	creds, err := e.auth.IssueS3Credentials(alice)
	if err != nil {
		t.Fatal(err)
	}
	if creds.Version != 1 || !strings.HasPrefix(creds.AccessKeyID, "OTAK") || creds.SecretAccessKey == "" || creds.SessionToken == "" {
		t.Fatalf("credentials %+v", creds)
	}
	if want := epoch.Add(authn.S3CredsTTL).Format(time.RFC3339); creds.Expiration != want {
		t.Errorf("Expiration %s, want %s", creds.Expiration, want)
	}
	// The credential_process document spelling.
	var doc map[string]any
	b, _ := json.Marshal(creds)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("credential_process document lacks %s: %s", k, b)
		}
	}
	if strings.Contains(creds.SessionToken, creds.SecretAccessKey) {
		t.Fatal("the session token carries the secret")
	}

	t.Run("OK", func(t *testing.T) {
		p, secret, err := e.auth.VerifyS3Session(creds.AccessKeyID, creds.SessionToken)
		if err != nil {
			t.Fatal(err)
		}
		if secret != creds.SecretAccessKey {
			t.Errorf("secret %q, want the issued %q", secret, creds.SecretAccessKey)
		}
		if p.Subject != "alice" || p.Email != alice.Email || !slices.Equal(p.Groups, alice.Groups) {
			t.Errorf("principal %+v", p)
		}
		// Verification survives a restart (the key is in the database).
		if _, secret2, err := e.reopen(t, e.cfg).VerifyS3Session(creds.AccessKeyID, creds.SessionToken); err != nil || secret2 != secret {
			t.Errorf("after a restart: %q, %v", secret2, err)
		}
	})

	enc, mac, _ := strings.Cut(creds.SessionToken, ".")
	body, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("session token body: %v", err)
	}
	var sess map[string]any
	if err := json.Unmarshal(body, &sess); err != nil {
		t.Fatal(err)
	}
	sess["sub"] = "admin"
	forgedBody := base64.RawURLEncoding.EncodeToString(mustJSON(t, sess))
	other, _ := e.auth.IssueS3Credentials(&authn.Principal{Subject: "bob"})

	for _, tc := range []struct{ name, akid, token string }{
		{"TamperedBody", creds.AccessKeyID, forgedBody + "." + mac},
		{"TamperedMAC", creds.AccessKeyID, enc + "." + strings.Repeat("0", len(mac))},
		{"NoMAC", creds.AccessKeyID, enc},
		{"Empty", creds.AccessKeyID, ""},
		{"Garbage", creds.AccessKeyID, "!!!.???"},
		{"WrongAccessKeyID", other.AccessKeyID, creds.SessionToken},
		{"EmptyAccessKeyID", "", creds.SessionToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, secret, err := e.auth.VerifyS3Session(tc.akid, tc.token)
			if p != nil || secret != "" {
				t.Errorf("got principal %+v, secret %q", p, secret)
			}
			wantCode(t, tc.name, err, store.EUNAUTHORIZED)
		})
	}

	t.Run("Expired", func(t *testing.T) {
		e.clk.Advance(authn.S3CredsTTL)
		if _, _, err := e.auth.VerifyS3Session(creds.AccessKeyID, creds.SessionToken); err != nil {
			t.Fatalf("at the expiry instant: %v", err)
		}
		e.clk.Advance(time.Second)
		_, _, err := e.auth.VerifyS3Session(creds.AccessKeyID, creds.SessionToken)
		wantCode(t, "expired", err, store.EUNAUTHORIZED)
	})
}
