package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
	"github.com/opentaco/opentaco/tfe"
)

// ServeCmd runs the server.
type ServeCmd struct {
	Listen                string   `help:"Address to listen on." env:"OPENTACO_LISTEN" default:"127.0.0.1:8080"`
	DataDir               string   `help:"Directory for the database (created 0700)." env:"OPENTACO_DATA_DIR" default:"./opentaco-data" type:"path"`
	MaxVersions           int      `help:"Versions kept per unit (0 = all; the current one is never pruned)." env:"OPENTACO_MAX_VERSIONS" default:"100"`
	MaxStateSize          int64    `help:"Largest accepted state body in bytes (decoded)." env:"OPENTACO_MAX_STATE_SIZE" default:"536870912"`
	AuthDisable           bool     `help:"Run without authentication: every caller is an anonymous admin (loopback only)." env:"OPENTACO_AUTH_DISABLE"`
	AuthDisableAnyAddress bool     `help:"Allow --auth-disable on a non-loopback address." env:"OPENTACO_AUTH_DISABLE_ANY_ADDRESS"`
	LogLevel              string   `help:"Log level: debug, info, warn, error." env:"OPENTACO_LOG_LEVEL" default:"info" enum:"debug,info,warn,error"`
	LogFormat             string   `help:"Log format: json or console." env:"OPENTACO_LOG_FORMAT" default:"json" enum:"json,console"`
	TLSCert               string   `help:"TLS certificate file (PEM); serves HTTPS." env:"OPENTACO_TLS_CERT" type:"path"`
	TLSKey                string   `help:"TLS key file (PEM)." env:"OPENTACO_TLS_KEY" type:"path"`
	TLSSelfSigned         bool     `help:"Serve HTTPS with a CA and certificate created once in the data dir (trust <data-dir>/tls/ca.pem via SSL_CERT_FILE)." env:"OPENTACO_TLS_SELF_SIGNED"`
	TLSHost               []string `help:"Extra host name or IP for the self-signed certificate (repeatable)." env:"OPENTACO_TLS_HOST"`

	PublicURL        string        `help:"URL clients reach the server at (issuer of access tokens); default from --listen." env:"OPENTACO_PUBLIC_URL"`
	OIDCIssuer       string        `name:"oidc-issuer" help:"OpenID provider issuer URL; without it the built-in admin token is used." env:"OPENTACO_OIDC_ISSUER"`
	OIDCClientID     string        `name:"oidc-client-id" help:"OAuth client ID at the provider." env:"OPENTACO_OIDC_CLIENT_ID"`
	OIDCClientSecret string        `name:"oidc-client-secret" help:"OAuth client secret at the provider." env:"OPENTACO_OIDC_CLIENT_SECRET"`
	OIDCGroupsClaim  string        `name:"oidc-groups-claim" help:"ID token claim holding the user's groups." env:"OPENTACO_OIDC_GROUPS_CLAIM" default:"groups"`
	OIDCScopes       []string      `name:"oidc-scopes" help:"Scopes to request." env:"OPENTACO_OIDC_SCOPES" default:"openid,profile,email"`
	OIDCAdminGroup   []string      `name:"oidc-admin-group" help:"OIDC group whose members get the admin role (repeatable)." env:"OPENTACO_OIDC_ADMIN_GROUP"`
	AccessTokenTTL   time.Duration `help:"Lifetime of access tokens." env:"OPENTACO_ACCESS_TOKEN_TTL" default:"1h"`
	RefreshTokenTTL  time.Duration `help:"Lifetime of refresh tokens." env:"OPENTACO_REFRESH_TOKEN_TTL" default:"720h"`
	RotateSigningKey bool          `help:"Add a new token signing key at start; the old public key stays published until its tokens expire." env:"OPENTACO_ROTATE_SIGNING_KEY"`
}

func (c *ServeCmd) Run(g *Globals) error {
	log, err := c.logger(g.stderr)
	if err != nil {
		return err
	}
	if err := c.checkAuth(log); err != nil {
		return err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := store.Open(filepath.Join(c.DataDir, "opentaco.db"), store.Options{MaxVersions: c.MaxVersions})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetPublicHosts(append([]string{c.publicURL()}, c.TLSHost...)); err != nil { // remote-state edges (SPEC §5)
		return err
	}
	auth, err := c.authenticator(db, log)
	if err != nil {
		return err
	}
	srv := httpapi.NewServer(httpapi.Config{Store: db, Logger: log, MaxStateSize: c.MaxStateSize, AuthDisabled: c.AuthDisable, Auth: auth})
	tfe.Register(srv)
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsCfg, err := c.tlsConfig(log); err != nil {
		ln.Close()
		return err
	} else if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	log.Log().Str("addr", ln.Addr().String()).Str("scheme", scheme).Str("data_dir", c.DataDir).Msg("listening")
	return serveUntilDone(g.ctx, &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}, ln, log)
}

// tlsConfig returns the TLS configuration the flags ask for, or nil.
func (c *ServeCmd) tlsConfig(log zerolog.Logger) (*tls.Config, error) {
	switch {
	case c.TLSSelfSigned && c.TLSCert != "":
		return nil, errors.New("--tls-self-signed and --tls-cert exclude each other")
	case c.TLSSelfSigned:
		cfg, caPath, err := httpapi.SelfSignedTLS(c.DataDir, c.TLSHost)
		if err != nil {
			return nil, fmt.Errorf("self-signed TLS: %w", err)
		}
		log.Log().Str("ca_file", caPath).Msg("self-signed TLS: trust this CA, e.g. export SSL_CERT_FILE=" + caPath)
		return cfg, nil
	case c.TLSCert != "" || c.TLSKey != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	return nil, nil
}

// serveUntilDone serves until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, hs *http.Server, ln net.Listener, log zerolog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// checkAuth refuses an unauthenticated server on a non-loopback address.
func (c *ServeCmd) checkAuth(log zerolog.Logger) error {
	if !c.AuthDisable {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || ip != nil && ip.IsLoopback()
	if !loopback && !c.AuthDisableAnyAddress {
		return fmt.Errorf("refusing --auth-disable on non-loopback address %q; add --auth-disable-any-address if you really mean it", c.Listen)
	}
	log.Warn().Msg("authentication is disabled: every caller is an anonymous admin")
	return nil
}

// authenticator builds the credential checker, and the bootstrap admin
// token when no OIDC provider is configured. Nil with --auth-disable.
func (c *ServeCmd) authenticator(db *store.DB, log zerolog.Logger) (*authn.Authenticator, error) {
	if c.AuthDisable {
		return nil, nil
	}
	cfg := authn.Config{Store: db, Issuer: c.publicURL(), AccessTTL: c.AccessTokenTTL, RefreshTTL: c.RefreshTokenTTL}
	if c.OIDCIssuer != "" {
		if c.OIDCClientID == "" {
			return nil, errors.New("--oidc-issuer needs --oidc-client-id")
		}
		cfg.OIDC = &authn.OIDCConfig{Issuer: c.OIDCIssuer, ClientID: c.OIDCClientID, ClientSecret: c.OIDCClientSecret, GroupsClaim: c.OIDCGroupsClaim, Scopes: c.OIDCScopes}
	}
	auth, err := authn.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("authentication: %w", err)
	}
	for _, g := range c.OIDCAdminGroup {
		if _, err := db.Assign(store.Assignment{Group: g, Role: "admin"}); err != nil {
			return nil, fmt.Errorf("--oidc-admin-group %q: %w", g, err)
		}
	}
	if c.RotateSigningKey {
		if err := auth.RotateSigningKey(); err != nil {
			return nil, err
		}
		log.Info().Msg("added a new token signing key")
	}
	if cfg.OIDC == nil {
		path, err := auth.Bootstrap(c.DataDir)
		if err != nil {
			return nil, fmt.Errorf("bootstrap admin token: %w", err)
		}
		log.Log().Str("token_file", path).Msg("built-in admin: log in with `opentaco login --token-file " + path + "`")
	}
	return auth, nil
}

// publicURL is --public-url, or the scheme and address of --listen.
func (c *ServeCmd) publicURL() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	scheme := "http"
	if c.TLSSelfSigned || c.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + c.Listen
}

func (c *ServeCmd) logger(w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(c.LogLevel)
	if err != nil {
		return zerolog.Logger{}, err
	}
	if c.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
