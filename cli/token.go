package cli

import (
	"time"

	"github.com/opentaco/opentaco/store"
)

// TokenCmd groups the API token commands.
type TokenCmd struct {
	Create TokenCreateCmd `cmd:"" help:"Create an API token acting as you; the secret is printed once."`
	Ls     TokenLsCmd     `cmd:"" aliases:"list" help:"List your API tokens (--all: everyone's, for admins)."`
	Revoke TokenRevokeCmd `cmd:"" help:"Revoke an API token; it stops working at once."`
}

// TokenCreateCmd creates an API token.
type TokenCreateCmd struct {
	Name      string        `arg:"" help:"A name that says what the token is for."`
	ExpiresIn time.Duration `name:"expires-in" placeholder:"DURATION" help:"Lifetime, e.g. 720h (default: no expiry)."`
}

// Run prints the secret alone on stdout (or the whole answer with -o
// json) and the metadata on stderr.
func (c *TokenCreateCmd) Run(g *Globals) error {
	if c.ExpiresIn < 0 {
		return store.Errorf(store.EINVALID, "--expires-in must not be negative")
	}
	t, err := g.client().CreateToken(g.ctx, c.Name, c.ExpiresIn)
	if err != nil {
		return err
	}
	expires := "never expires"
	if t.Expires != nil {
		expires = "expires " + shortTime(*t.Expires)
	}
	g.notef("Created API token %s %q for %s (%s). The secret is shown only this once.", t.ID, t.Name, t.Owner, expires)
	if g.jsonOutput() {
		return g.printJSON(t)
	}
	_, err = g.stdout.Write([]byte(t.Token + "\n"))
	return err
}

// TokenLsCmd lists API tokens.
type TokenLsCmd struct {
	All bool `help:"List every user's tokens (admins only)."`
}

func (c *TokenLsCmd) Run(g *Globals) error {
	list, err := g.client().ListTokens(g.ctx, c.All)
	if err != nil {
		return err
	} else if g.jsonOutput() {
		return g.printJSON(list)
	}
	rows := make([][]string, len(list.Tokens))
	for i, t := range list.Tokens {
		rows[i] = []string{t.ID, t.Name, t.Owner, shortTime(t.Created), timePtr(t.Expires), timePtr(t.LastUsed), yesNo(t.Revoked)}
	}
	return g.printTable([]string{"ID", "NAME", "OWNER", "CREATED", "EXPIRES", "LAST USED", "REVOKED"}, rows)
}

func timePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return shortTime(*t)
}

// TokenRevokeCmd revokes an API token.
type TokenRevokeCmd struct {
	ID string `arg:"" help:"Token ID (at-..., see 'token ls')."`
}

func (c *TokenRevokeCmd) Run(g *Globals) error {
	if err := g.client().RevokeToken(g.ctx, c.ID); err != nil {
		return err
	}
	g.notef("Revoked API token %s.", c.ID)
	return nil
}
