package authn_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/store"
)

func TestAuthenticator_Access(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		tok, err := e.auth.IssueAccess(alice)
		if err != nil {
			t.Fatal(err)
		}
		hdr, payload, _ := jwtParts(t, tok)
		if hdr["alg"] != "EdDSA" || hdr["kid"] == nil || hdr["kid"] == "" {
			t.Errorf("header %v: want alg EdDSA and a kid", hdr)
		}
		if payload["iss"] != testIssuer || payload["sub"] != "alice" {
			t.Errorf("payload %v: want iss %s, sub alice", payload, testIssuer)
		}
		if exp, iat := payload["exp"].(float64), payload["iat"].(float64); exp-iat != authn.DefaultAccessTTL.Seconds() {
			t.Errorf("exp - iat = %v s, want %v", exp-iat, authn.DefaultAccessTTL.Seconds())
		}
		p, err := e.auth.Authenticate(context.Background(), tok)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if p.Subject != "alice" || p.Email != "alice@example.com" || !slices.Equal(p.Groups, []string{"dev", "ops"}) || p.Kind != authn.KindAccess || p.TokenID != "" {
			t.Errorf("principal %+v", p)
		}
		if len(p.Roles) != 0 || p.IsAdmin() {
			t.Errorf("principal %+v: no role is assigned to alice", p)
		}
		// Roles come from the assignments of the subject and its groups,
		// at the time of each request.
		for _, as := range []store.Assignment{{Subject: "alice", Role: "writer"}, {Group: "ops", Role: "reader"}, {Group: "nobody", Role: "admin"}} {
			if _, err := e.db.Assign(as); err != nil {
				t.Fatal(err)
			}
		}
		if p, err = e.auth.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		} else if !slices.Equal(p.Roles, []string{"reader", "writer"}) || p.IsAdmin() {
			t.Errorf("roles %v, want [reader writer]", p.Roles)
		}
		// Surrounding whitespace is not part of the credential.
		if _, err := e.auth.Authenticate(context.Background(), " "+tok+"\n"); err != nil {
			t.Errorf("Authenticate with whitespace: %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		e := newEnv(t, authn.Config{AccessTTL: 10 * time.Minute})
		tok, err := e.auth.IssueAccess(alice)
		if err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(10 * time.Minute)
		if _, err := e.auth.Authenticate(context.Background(), tok); err != nil {
			t.Fatalf("at expiry (within the skew): %v", err)
		}
		e.clk.Advance(time.Minute)
		wantUnauthorized(t, e.auth, "a minute after expiry", tok)
	})

	t.Run("Forged", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		ctx := context.Background()
		good, err := e.auth.IssueAccess(alice)
		if err != nil {
			t.Fatal(err)
		}
		hdr, payload, sig := jwtParts(t, good)
		kid := hdr["kid"].(string)
		parts := strings.Split(good, ".")

		// Tokens correctly signed by this server's key, but for another
		// audience or issuer: another Authenticator over the same store
		// signs with the same key.
		otherAud, err := e.reopen(t, authn.Config{Issuer: testIssuer, Audience: "someone-else"}).IssueAccess(alice)
		if err != nil {
			t.Fatal(err)
		}
		otherIss, err := e.reopen(t, authn.Config{Issuer: "https://evil.test"}).IssueAccess(alice)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.auth.Authenticate(ctx, good); err != nil {
			t.Fatalf("the genuine token fails: %v", err)
		}

		admin := map[string]any{}
		for k, v := range payload {
			admin[k] = v
		}
		admin["sub"] = "admin"
		tampered := parts[0] + "." + b64(mustJSON(t, admin)) + "." + sig
		flipped := []byte(parts[2])
		flipped[3] ^= 1
		if flipped[3] == parts[2][3] {
			t.Fatal("flip failed")
		}
		refreshPair, err := e.auth.IssuePair(alice)
		if err != nil {
			t.Fatal(err)
		}
		otcRandom := authn.APITokenPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		otherKey := signJWT(t, jwa.EdDSA, newEd25519(t), kid, payload)
		noKid := signJWT(t, jwa.EdDSA, newEd25519(t), "", payload)
		hs256 := signJWT(t, jwa.HS256, []byte("secret"), kid, payload)

		for _, tc := range []struct{ name, cred string }{
			{"OtherKeySameKID", otherKey},
			{"OtherKeyNoKID", noKid},
			{"HS256SameKID", hs256},
			{"AlgNone", noneJWT(t, kid, payload)},
			{"AlgNoneNoSignaturePart", strings.TrimSuffix(noneJWT(t, kid, payload), ".")},
			{"AlgNoneKeepSignature", noneJWT(t, kid, payload) + sig},
			{"TamperedPayload", tampered},
			{"TamperedSignature", parts[0] + "." + parts[1] + "." + string(flipped)},
			{"NoSignature", parts[0] + "." + parts[1] + "."},
			{"WrongAudience", otherAud},
			{"WrongIssuer", otherIss},
			{"RefreshToken", refreshPair.RefreshToken},
			{"RandomAPIToken", otcRandom},
			{"BarePrefix", authn.APITokenPrefix},
			{"Garbage", "garbage"},
			{"GarbageDots", "a.b.c"},
			{"Dots", ".."},
			{"Binary", "\x00\xff\xfe.\x01.\x02"},
			{"Empty", ""},
			{"Space", "   "},
			{"Long", strings.Repeat("A", 1<<16)},
		} {
			t.Run(tc.name, func(t *testing.T) { wantUnauthorized(t, e.auth, tc.name, tc.cred) })
		}
	})

	t.Run("AccessTokenIsNotRefresh", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		tok, err := e.auth.IssueAccess(alice)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.Refresh(tok)
		wantCode(t, "Refresh(access token)", err, store.EUNAUTHORIZED)
	})
}

func TestAuthenticator_KeyRotation(t *testing.T) {
	e := newEnv(t, authn.Config{AccessTTL: time.Hour})
	ctx := context.Background()
	old, err := e.auth.IssueAccess(alice)
	if err != nil {
		t.Fatal(err)
	}
	oldHdr, _, _ := jwtParts(t, old)
	oldKID := oldHdr["kid"].(string)
	doc, err := e.auth.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	if kids := jwksKIDs(t, doc); !slices.Equal(kids, []string{oldKID}) {
		t.Fatalf("JWKS kids %v, want [%s]", kids, oldKID)
	}
	if strings.Contains(string(doc), `"d"`) {
		t.Fatalf("JWKS holds private key material: %s", doc)
	}

	// A restart keeps the key.
	if tok, err := e.reopen(t, e.cfg).IssueAccess(alice); err != nil {
		t.Fatal(err)
	} else if hdr, _, _ := jwtParts(t, tok); hdr["kid"] != oldKID {
		t.Fatalf("after a restart kid %v, want %s", hdr["kid"], oldKID)
	}

	e.clk.Advance(time.Minute)
	if err := e.auth.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.auth.IssueAccess(alice)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := jwtParts(t, fresh)
	newKID, _ := hdr["kid"].(string)
	if newKID == "" || newKID == oldKID {
		t.Fatalf("after rotation kid %q, want a new one (old %s)", newKID, oldKID)
	}
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if _, err := e.auth.Authenticate(ctx, tok); err != nil {
			t.Errorf("%s token after rotation: %v", name, err)
		}
	}
	doc, _ = e.auth.JWKS()
	if kids := jwksKIDs(t, doc); !slices.Contains(kids, oldKID) || !slices.Contains(kids, newKID) || len(kids) != 2 {
		t.Fatalf("JWKS kids %v, want %s and %s", kids, oldKID, newKID)
	}

	// A restart before the old key's tokens have expired keeps it.
	e.clk.Advance(30 * time.Minute)
	a2 := e.reopen(t, e.cfg)
	if _, err := a2.Authenticate(ctx, old); err != nil {
		t.Errorf("old token after a restart within its lifetime: %v", err)
	}
	if tok, _ := a2.IssueAccess(alice); tok != "" {
		if h, _, _ := jwtParts(t, tok); h["kid"] != newKID {
			t.Errorf("after a restart the active kid is %v, want %s", h["kid"], newKID)
		}
	}

	// Once AccessTTL + 1 min have passed since the rotation, a restart
	// drops the old key; the new one stays.
	e.clk.Advance(31*time.Minute + time.Second)
	a3 := e.reopen(t, e.cfg)
	doc, _ = a3.JWKS()
	if kids := jwksKIDs(t, doc); !slices.Equal(kids, []string{newKID}) {
		t.Fatalf("JWKS kids %v after the old key's tokens expired, want [%s]", kids, newKID)
	}
	wantUnauthorized(t, a3, "old token after its key was dropped", old)
	late, err := a3.IssueAccess(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a3.Authenticate(ctx, late); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
	keys, err := e.db.SigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KID != newKID || keys[0].Retired != nil {
		t.Errorf("stored keys %+v, want only the active %s", keys, newKID)
	}
}

func TestAuthenticator_Refresh(t *testing.T) {
	ctx := context.Background()

	t.Run("Rotate", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		p1, err := e.auth.IssuePair(alice)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p1.RefreshToken, "otr_") || p1.TokenType != "Bearer" || p1.ExpiresIn != int(authn.DefaultAccessTTL.Seconds()) {
			t.Fatalf("pair %+v", p1)
		}
		e.clk.Advance(time.Second)
		p2, err := e.auth.Refresh(p1.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if p2.RefreshToken == p1.RefreshToken || p2.AccessToken == p1.AccessToken || !strings.HasPrefix(p2.RefreshToken, "otr_") {
			t.Fatalf("refresh did not rotate: %+v then %+v", p1, p2)
		}
		for name, tok := range map[string]string{"old access": p1.AccessToken, "new access": p2.AccessToken} {
			p, err := e.auth.Authenticate(ctx, tok)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if p.Subject != "alice" || p.Email != alice.Email || !slices.Equal(p.Groups, alice.Groups) {
				t.Errorf("%s: principal %+v", name, p)
			}
		}
		// The successor rotates in turn.
		e.clk.Advance(time.Minute)
		p3, err := e.auth.Refresh(p2.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh of the successor: %v", err)
		}
		if p3.RefreshToken == p2.RefreshToken {
			t.Fatal("successor did not rotate")
		}
		// The identity travels down the family.
		p, err := e.auth.Authenticate(ctx, p3.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if p.Subject != "alice" || p.Email != alice.Email || !slices.Equal(p.Groups, alice.Groups) {
			t.Errorf("access token of the second refresh: principal %+v, want alice", p)
		}
	})

	t.Run("GraceThenReuse", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		p1, _ := e.auth.IssuePair(alice)
		p2, err := e.auth.Refresh(p1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		// A racing second refresh of the same token gets the same pair.
		for _, d := range []time.Duration{0, 5 * time.Second, 5 * time.Second} {
			e.clk.Advance(d)
			again, err := e.auth.Refresh(p1.RefreshToken)
			if err != nil {
				t.Fatalf("reuse %s into the grace window: %v", d, err)
			}
			if *again != *p2 {
				t.Fatalf("reuse within the grace window gave %+v, want the same successor %+v", again, p2)
			}
		}
		// After the window, reuse is theft: refused, and the family is
		// revoked, the successor included.
		e.clk.Advance(time.Second)
		_, err = e.auth.Refresh(p1.RefreshToken)
		wantCode(t, "reuse after the grace window", err, store.EUNAUTHORIZED)
		_, err = e.auth.Refresh(p2.RefreshToken)
		wantCode(t, "successor after the family was revoked", err, store.EUNAUTHORIZED)
		_, err = e.auth.Refresh(p1.RefreshToken)
		wantCode(t, "reuse again", err, store.EUNAUTHORIZED)
		// Another family of the same subject is untouched.
		other, _ := e.auth.IssuePair(alice)
		if _, err := e.auth.Refresh(other.RefreshToken); err != nil {
			t.Errorf("another family: %v", err)
		}
	})

	t.Run("Racing", func(t *testing.T) {
		// Refreshes of one token racing each other all get one pair.
		e := newEnv(t, authn.Config{})
		p1, _ := e.auth.IssuePair(alice)
		const n = 8
		pairs := make([]*authn.TokenPair, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pairs[i], errs[i] = e.auth.Refresh(p1.RefreshToken)
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("racing refresh %d: %v", i, errs[i])
			}
			if *pairs[i] != *pairs[0] {
				t.Fatalf("racing refreshes gave different pairs: %+v and %+v", pairs[0], pairs[i])
			}
		}
		if _, err := e.auth.Refresh(pairs[0].RefreshToken); err != nil {
			t.Errorf("the one successor: %v", err)
		}
	})

	t.Run("ReuseAfterRestart", func(t *testing.T) {
		// The grace cache lives in memory; a restart within the window
		// must not turn a spent token into a working one.
		e := newEnv(t, authn.Config{})
		p1, _ := e.auth.IssuePair(alice)
		if _, err := e.auth.Refresh(p1.RefreshToken); err != nil {
			t.Fatal(err)
		}
		a2 := e.reopen(t, e.cfg)
		_, err := a2.Refresh(p1.RefreshToken)
		wantCode(t, "reuse within the window after a restart", err, store.EUNAUTHORIZED)
	})

	t.Run("SuccessorSpentThenOriginalReused", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		p1, _ := e.auth.IssuePair(alice)
		p2, _ := e.auth.Refresh(p1.RefreshToken)
		e.clk.Advance(time.Minute)
		p3, err := e.auth.Refresh(p2.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.Refresh(p1.RefreshToken)
		wantCode(t, "reuse of the first token", err, store.EUNAUTHORIZED)
		_, err = e.auth.Refresh(p3.RefreshToken)
		wantCode(t, "newest token after the family was revoked", err, store.EUNAUTHORIZED)
	})

	t.Run("Expired", func(t *testing.T) {
		e := newEnv(t, authn.Config{RefreshTTL: 2 * time.Hour})
		p1, _ := e.auth.IssuePair(alice)
		e.clk.Advance(2*time.Hour + time.Second)
		_, err := e.auth.Refresh(p1.RefreshToken)
		wantCode(t, "expired refresh token", err, store.EUNAUTHORIZED)
	})

	t.Run("Unknown", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		for _, tok := range []string{"", "otr_nope", "otc_nope", "garbage"} {
			_, err := e.auth.Refresh(tok)
			wantCode(t, "Refresh("+tok+")", err, store.EUNAUTHORIZED)
		}
	})

	t.Run("Logout", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		p1, _ := e.auth.IssuePair(alice)
		p2, _ := e.auth.Refresh(p1.RefreshToken)
		e.clk.Advance(time.Minute)
		if err := e.auth.Logout(p1.RefreshToken); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		_, err := e.auth.Refresh(p2.RefreshToken)
		wantCode(t, "refresh after logout", err, store.EUNAUTHORIZED)
		if err := e.auth.Logout("otr_unknown"); err != nil {
			t.Errorf("Logout(unknown) = %v, want nil", err)
		}
		// Logout with the newest token works the same.
		q1, _ := e.auth.IssuePair(alice)
		q2, _ := e.auth.Refresh(q1.RefreshToken)
		if err := e.auth.Logout(q2.RefreshToken); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.Refresh(q2.RefreshToken)
		wantCode(t, "refresh after logout with the newest token", err, store.EUNAUTHORIZED)
	})
}

func TestAuthenticator_APIToken(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		secret, tok, err := e.auth.CreateAPIToken(alice, "ci", 0)
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := strings.CutPrefix(secret, authn.APITokenPrefix)
		if !ok {
			t.Fatalf("secret %q lacks the otc_ prefix", secret)
		}
		if b, err := base64.RawURLEncoding.DecodeString(raw); err != nil || len(b) != 32 {
			t.Fatalf("secret %q: %d random bytes (%v), want 32 base64url bytes", secret, len(b), err)
		}
		if tok.Owner != "alice" || tok.Name != "ci" || tok.Expires != nil || tok.Revoked || !strings.HasPrefix(tok.ID, "at-") {
			t.Fatalf("token %+v", tok)
		}
		if strings.Contains(tok.Hash, secret) || tok.Hash == "" {
			t.Fatalf("stored hash %q", tok.Hash)
		}
		e.clk.Advance(time.Hour)
		p, err := e.auth.Authenticate(ctx, secret)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if p.Subject != "alice" || p.Kind != authn.KindAPIToken || p.TokenID != tok.ID || !slices.Equal(p.Groups, alice.Groups) || p.Email != alice.Email {
			t.Errorf("principal %+v", p)
		}
		got, err := e.db.GetAPIToken(tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsed == nil || !got.LastUsed.Equal(epoch.Add(time.Hour)) {
			t.Errorf("last use %v, want %v", got.LastUsed, epoch.Add(time.Hour))
		}
		e.clk.Advance(2 * time.Minute)
		if _, err := e.auth.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.db.GetAPIToken(tok.ID); got.LastUsed == nil || !got.LastUsed.Equal(epoch.Add(time.Hour+2*time.Minute)) {
			t.Errorf("last use %v after a later use, want %v", got.LastUsed, epoch.Add(time.Hour+2*time.Minute))
		}
	})

	t.Run("NoName", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		_, _, err := e.auth.CreateAPIToken(alice, "", 0)
		wantCode(t, "token without a name", err, store.EINVALID)
	})

	t.Run("Revoke", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		secret, tok, _ := e.auth.CreateAPIToken(alice, "ci", 0)
		other, _, _ := e.auth.CreateAPIToken(alice, "other", 0)
		if _, err := e.auth.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if err := e.db.RevokeAPIToken(tok.ID); err != nil {
			t.Fatal(err)
		}
		wantUnauthorized(t, e.auth, "revoked token", secret)
		if _, err := e.auth.Authenticate(ctx, other); err != nil {
			t.Errorf("another token of the owner: %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		secret, tok, _ := e.auth.CreateAPIToken(alice, "short", 90*time.Second)
		if tok.Expires == nil || !tok.Expires.Equal(epoch.Add(90*time.Second)) {
			t.Fatalf("expires %v, want %v", tok.Expires, epoch.Add(90*time.Second))
		}
		e.clk.Advance(90 * time.Second)
		if _, err := e.auth.Authenticate(ctx, secret); err != nil {
			t.Fatalf("at its expiry instant: %v", err)
		}
		e.clk.Advance(time.Second)
		wantUnauthorized(t, e.auth, "expired token", secret)
	})

	t.Run("List", func(t *testing.T) {
		e := newEnv(t, authn.Config{})
		bob := &authn.Principal{Subject: "bob"}
		for _, c := range []struct {
			p    *authn.Principal
			name string
		}{{alice, "a1"}, {bob, "b1"}, {alice, "a2"}} {
			e.clk.Advance(time.Second)
			if _, _, err := e.auth.CreateAPIToken(c.p, c.name, 0); err != nil {
				t.Fatal(err)
			}
		}
		names := func(owner string) []string {
			ts, err := e.db.ListAPITokens(owner)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, tk := range ts {
				out = append(out, tk.Name)
				if tk.Hash != "" && strings.HasPrefix(tk.Hash, authn.APITokenPrefix) {
					t.Errorf("token %s leaks its secret", tk.ID)
				}
			}
			return out
		}
		if got := names("alice"); !slices.Equal(got, []string{"a2", "a1"}) {
			t.Errorf("alice's tokens %v, want [a2 a1]", got)
		}
		if got := names("bob"); !slices.Equal(got, []string{"b1"}) {
			t.Errorf("bob's tokens %v, want [b1]", got)
		}
		if got := names(""); len(got) != 3 {
			t.Errorf("all tokens %v, want 3", got)
		}
	})
}
