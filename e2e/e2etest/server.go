package e2etest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opentaco/opentaco/authn"
	"github.com/opentaco/opentaco/httpapi"
	"github.com/opentaco/opentaco/store"
	"github.com/opentaco/opentaco/tfe"
)

// ServerOptions choose the wiring StartServer starts; the zero value is
// httpapi.NewServer alone, authentication disabled, on plain http.
type ServerOptions struct {
	// TLS serves https://localhost:<port> over httpapi.SelfSignedTLS
	// instead of http://127.0.0.1:<port>.
	TLS bool
	// TFE adds the Terraform Cloud surface (tfe.Register).
	TFE bool
	// Auth turns authentication on: an authn.Authenticator over the store
	// with the server's URL as issuer.
	Auth bool
	// Bootstrap, with Auth, makes the bootstrap admin token, kept in
	// Server.Admin and sent by the management helpers.
	Bootstrap bool
	// OIDC, with Auth, is called once s.URL and s.Host are known, before
	// the store is opened, and returns the OpenID provider to sign in with.
	OIDC func(s *Server) *authn.OIDCConfig
	// Record keeps every request in Server.Requests.
	Record bool
	// No5xx fails the test if any request was answered with a 5xx: go-tfe
	// retries those, so a deterministic answer (a refusal included) must
	// be a 4xx. It implies Record.
	No5xx bool
	// QuietLog discards the server log (for benchmarks); otherwise it is
	// kept in Server.Log and printed when the test fails.
	QuietLog bool
}

// Server is the real server wiring on a loopback port.
type Server struct {
	URL     string // http://127.0.0.1:<port> or https://localhost:<port>
	Host    string // host:port of URL, as written in cloud blocks
	DataDir string
	DB      *store.DB
	Auth    *authn.Authenticator // nil with authentication disabled
	Admin   string               // the bootstrap admin token, if made
	// Token is the bearer credential of the management helpers (Unit,
	// Versions, Download, LockOf): Admin when bootstrapped, else none.
	Token    string
	CAPath   string         // the CA of the TLS certificate (TLS only)
	Pool     *x509.CertPool // holding that CA (TLS only)
	HTTP     *http.Client   // trusts the CA; http.DefaultClient without TLS
	Log      *SyncBuffer    // the JSON server log
	Requests *RequestLog    // nil unless recorded
}

// StartServer starts httpapi.NewServer over a fresh store in t.TempDir(),
// wired as o says, and stops it when the test ends. It fails the test if
// the server does not stop cleanly, and prints what it recorded and logged
// when the test has failed.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	s := &Server{DataDir: t.TempDir(), Log: &SyncBuffer{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.TLS {
		s.Host = fmt.Sprintf("localhost:%d", ln.Addr().(*net.TCPAddr).Port)
		s.URL = "https://" + s.Host
	} else {
		s.Host = ln.Addr().String()
		s.URL = "http://" + s.Host
	}
	var oidc *authn.OIDCConfig
	if o.Auth && o.OIDC != nil {
		oidc = o.OIDC(s)
	}
	if s.DB, err = store.Open(filepath.Join(s.DataDir, "opentaco.db"), store.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Store: s.DB, Logger: zerolog.New(s.Log).With().Timestamp().Logger(), AuthDisabled: !o.Auth}
	if o.QuietLog {
		cfg.Logger = zerolog.Nop()
	}
	if o.Auth {
		if s.Auth, err = authn.New(authn.Config{Store: s.DB, Issuer: s.URL, OIDC: oidc}); err != nil {
			t.Fatal(err)
		}
		cfg.Auth = s.Auth
		if o.Bootstrap {
			s.Admin = bootstrap(t, s.Auth, s.DataDir)
			s.Token = s.Admin
		}
	}
	api := httpapi.NewServer(cfg)
	if o.TFE {
		tfe.Register(api)
	}
	var h http.Handler = api
	if o.Record || o.No5xx {
		s.Requests = &RequestLog{}
		h = s.Requests.Wrap(h)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	s.HTTP = http.DefaultClient
	var l net.Listener = ln
	if o.TLS {
		l = tls.NewListener(ln, s.startTLS(t))
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if o.TLS {
			s.HTTP.CloseIdleConnections()
		}
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
		if err := s.DB.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		if o.No5xx {
			for _, r := range s.Requests.All() {
				if r.Status >= 500 {
					t.Errorf("server answered %d to %s %s (a deterministic answer, a refusal included, must never be a 5xx)", r.Status, r.Method, r.Path)
				}
			}
		}
		if t.Failed() {
			if s.Requests != nil {
				t.Logf("requests:\n%s", Tail(s.Requests.String(), 20000))
			}
			if !o.QuietLog {
				t.Logf("server log:\n%s", Tail(s.Log.String(), 20000))
			}
		}
	})
	return s
}

// startTLS makes the self-signed certificate in s.DataDir, sets CAPath,
// Pool and an HTTP client trusting the CA, and returns the server side.
func (s *Server) startTLS(t testing.TB) *tls.Config {
	t.Helper()
	tlsCfg, caPath, err := httpapi.SelfSignedTLS(s.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	s.CAPath, s.Pool = caPath, x509.NewCertPool()
	if !s.Pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA file %s holds no certificate", caPath)
	}
	s.HTTP = &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Pool, MinVersion: tls.VersionTLS12}},
		Timeout:   30 * time.Second,
	}
	return tlsCfg
}

// bootstrap makes the bootstrap admin token and returns it.
func bootstrap(t testing.TB, auth *authn.Authenticator, dataDir string) string {
	t.Helper()
	path, err := auth.Bootstrap(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
