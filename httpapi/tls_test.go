package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opentaco/opentaco/httpapi"
)

// tlsFiles reads the TLS material under dataDir/tls.
type tlsFiles struct{ ca, caKey, cert, key []byte }

func readTLSFiles(t *testing.T, dataDir string) tlsFiles {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dataDir, "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return tlsFiles{read("ca.pem"), read("ca-key.pem"), read("cert.pem"), read("key.pem")}
}

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustSelfSigned(t *testing.T, dataDir string, extra []string) (*tls.Config, string) {
	t.Helper()
	cfg, caPath, err := httpapi.SelfSignedTLS(dataDir, extra)
	if err != nil {
		t.Fatalf("SelfSignedTLS(%v): %v", extra, err)
	} else if cfg == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("SelfSignedTLS config = %+v; want one certificate", cfg)
	} else if caPath != filepath.Join(dataDir, "tls", "ca.pem") {
		t.Fatalf("CA path = %q; want %q", caPath, filepath.Join(dataDir, "tls", "ca.pem"))
	}
	return cfg, caPath
}

// serveTLS serves cfg on a real listener on 127.0.0.1:0 and returns its
// port.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		// The refused handshakes of the tests would otherwise be logged.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// clientTrusting returns an HTTPS client whose only root is the CA at
// caPath. Every host name dials the server on 127.0.0.1:port.
func clientTrusting(t *testing.T, caPath, port string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s", caPath)
	}
	return clientWithRoots(pool, port)
}

func clientWithRoots(pool *x509.CertPool, port string) *http.Client {
	var d net.Dialer
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
			},
		},
	}
}

func httpsGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	} else if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return errors.New("unexpected answer " + resp.Status + " " + string(body))
	}
	return nil
}

func TestSelfSignedTLS(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		cfg, _ := mustSelfSigned(t, dir, nil)
		if cfg.MinVersion < tls.VersionTLS12 {
			t.Fatalf("MinVersion = %x; want at least TLS 1.2", cfg.MinVersion)
		}
		if fi, err := os.Stat(filepath.Join(dir, "tls")); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
			t.Fatalf("tls dir = %v, %v; want a 0700 directory", fi, err)
		}
		for name, want := range map[string]fs.FileMode{"ca.pem": 0o644, "cert.pem": 0o644, "ca-key.pem": 0o600, "key.pem": 0o600} {
			fi, err := os.Stat(filepath.Join(dir, "tls", name))
			if err != nil {
				t.Fatal(err)
			} else if fi.Mode().Perm() != want {
				t.Errorf("%s mode = %v; want %v", name, fi.Mode().Perm(), want)
			}
		}
		entries, err := os.ReadDir(filepath.Join(dir, "tls"))
		if err != nil {
			t.Fatal(err)
		} else if len(entries) != 4 {
			t.Errorf("tls dir holds %d entries; want the 4 PEM files (no temporaries)", len(entries))
		}
		f := readTLSFiles(t, dir)
		ca, leaf := parsePEMCert(t, f.ca), parsePEMCert(t, f.cert)
		if !ca.IsCA || ca.CheckSignatureFrom(ca) != nil {
			t.Fatalf("ca.pem is not a self-signed CA: %+v", ca.Subject)
		}
		if err := leaf.CheckSignatureFrom(ca); err != nil {
			t.Fatalf("server certificate not issued by the CA: %v", err)
		}
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			if err := leaf.VerifyHostname(h); err != nil {
				t.Errorf("server certificate does not cover %s: %v", h, err)
			}
		}
		if !bytes.Equal(cfg.Certificates[0].Certificate[0], leaf.Raw) {
			t.Fatal("config certificate is not cert.pem")
		}
	})
	t.Run("Reuse", func(t *testing.T) {
		dir := t.TempDir()
		mustSelfSigned(t, dir, nil)
		first := readTLSFiles(t, dir)
		cfg, _ := mustSelfSigned(t, dir, nil)
		if second := readTLSFiles(t, dir); !bytes.Equal(second.ca, first.ca) || !bytes.Equal(second.caKey, first.caKey) ||
			!bytes.Equal(second.cert, first.cert) || !bytes.Equal(second.key, first.key) {
			t.Fatal("second call replaced the TLS material")
		}
		if !bytes.Equal(cfg.Certificates[0].Certificate[0], parsePEMCert(t, first.cert).Raw) {
			t.Fatal("second call serves another certificate than cert.pem")
		}
	})
	for _, extra := range []string{"example.test", "10.1.2.3"} {
		t.Run("ExtraHost/"+extra, func(t *testing.T) {
			dir := t.TempDir()
			mustSelfSigned(t, dir, nil)
			first := readTLSFiles(t, dir)
			cfg, _ := mustSelfSigned(t, dir, []string{extra})
			second := readTLSFiles(t, dir)
			if !bytes.Equal(second.ca, first.ca) || !bytes.Equal(second.caKey, first.caKey) {
				t.Fatal("a new host list replaced the CA")
			}
			if bytes.Equal(second.cert, first.cert) {
				t.Fatal("a new host list kept the old server certificate")
			}
			ca, leaf := parsePEMCert(t, second.ca), parsePEMCert(t, second.cert)
			if err := leaf.CheckSignatureFrom(ca); err != nil {
				t.Fatalf("new server certificate not issued by the CA: %v", err)
			}
			for _, h := range []string{"localhost", "127.0.0.1", "::1", extra} {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Errorf("new server certificate does not cover %s: %v", h, err)
				}
			}
			if !bytes.Equal(cfg.Certificates[0].Certificate[0], leaf.Raw) {
				t.Fatal("config certificate is not the new cert.pem")
			}
			// The same host list again, or a subset of it, reuses it.
			mustSelfSigned(t, dir, []string{extra})
			mustSelfSigned(t, dir, nil)
			if third := readTLSFiles(t, dir); !bytes.Equal(third.cert, second.cert) {
				t.Fatal("an unchanged host list re-issued the server certificate")
			}
		})
	}
	t.Run("Trusted", func(t *testing.T) {
		dir := t.TempDir()
		cfg, caPath := mustSelfSigned(t, dir, []string{"example.test"})
		port := serveTLS(t, cfg)
		c := clientTrusting(t, caPath, port)
		for _, host := range []string{"localhost", "127.0.0.1", "example.test"} {
			if err := httpsGet(c, "https://"+net.JoinHostPort(host, port)+"/"); err != nil {
				t.Errorf("GET via %s with ca.pem as the only root: %v", host, err)
			}
		}
		// Plain http.Get over the real listener, without any dial override.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = c.Transport.(*http.Transport).TLSClientConfig
		plain := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for _, host := range []string{"localhost", "127.0.0.1"} {
			if err := httpsGet(plain, "https://"+net.JoinHostPort(host, port)+"/"); err != nil {
				t.Errorf("GET https://%s with ca.pem as the only root: %v", net.JoinHostPort(host, port), err)
			}
		}
		tr.CloseIdleConnections()
		// A name the certificate does not cover, or a client without the
		// CA, is refused.
		var hostErr x509.HostnameError
		if err := httpsGet(c, "https://"+net.JoinHostPort("other.test", port)+"/"); !errors.As(err, &hostErr) {
			t.Errorf("GET via other.test = %v; want a hostname error", err)
		}
		var authErr x509.UnknownAuthorityError
		if err := httpsGet(clientWithRoots(x509.NewCertPool(), port), "https://"+net.JoinHostPort("localhost", port)+"/"); !errors.As(err, &authErr) {
			t.Errorf("GET without the CA = %v; want an unknown authority error", err)
		}
	})
	t.Run("ErrDataDir", func(t *testing.T) {
		// A data dir that is a file cannot hold the tls directory.
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := httpapi.SelfSignedTLS(file, nil); err == nil {
			t.Fatal("SelfSignedTLS under a file succeeded")
		}
	})
}
