// Package mtls builds the TLS configurations of Bastion's processes from the
// platform PKI, reloads certificates and the CA from disk without a restart,
// and extracts the calling service's identity from a verified peer chain.
//
// Between processes: TLS 1.3 only, both sides present certificates from the
// platform CA, and each side checks the other's SPIFFE ID
// (spiffe://<trust domain>/<service>), not just the CA: a valid certificate of
// the wrong service is refused.
package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Files names the PEM files of one identity.
type Files struct {
	CA   string // the platform CA bundle; may be empty for a public-only server certificate
	Cert string
	Key  string
}

// FilesIn returns dir/ca.pem, dir/<name>.pem and dir/<name>-key.pem.
func FilesIn(dir, name string) Files {
	return Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
}

// recheck bounds how often the files are examined for changes.
const recheck = 500 * time.Millisecond

// Source holds one identity's certificate and the CA pool, reloading them
// when the files change. New handshakes use the new material.
type Source struct {
	files Files
	td    string
	// OnReloadError is told about a reload that failed; the last good material stays in use.
	OnReloadError func(error)

	mu      sync.Mutex
	cert    *tls.Certificate
	pool    *x509.CertPool
	stamp   string
	checked time.Time
}

// NewSource loads the files now and returns an error if they are unreadable
// or invalid.
func NewSource(f Files, trustDomain string) (*Source, error) {
	if trustDomain == "" {
		return nil, errors.New("mtls: trust domain is required")
	}
	s := &Source{files: f, td: trustDomain}
	stamp, err := s.stampNow()
	if err != nil {
		return nil, err
	}
	if err := s.load(stamp); err != nil {
		return nil, err
	}
	return s, nil
}

// TrustDomain returns the SPIFFE trust domain the source checks peers against.
func (s *Source) TrustDomain() string { return s.td }

func (s *Source) stampNow() (string, error) {
	var b strings.Builder
	for _, p := range []string{s.files.CA, s.files.Cert, s.files.Key} {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("mtls: %w", err)
		}
		fmt.Fprintf(&b, "%s:%d:%d;", p, st.ModTime().UnixNano(), st.Size())
	}
	return b.String(), nil
}

func (s *Source) load(stamp string) error {
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("mtls: load certificate: %w", err)
	}
	var pool *x509.CertPool
	if s.files.CA != "" {
		pem, err := os.ReadFile(s.files.CA)
		if err != nil {
			return fmt.Errorf("mtls: read CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("mtls: no certificate in the CA file")
		}
	}
	s.cert, s.pool, s.stamp, s.checked = &cert, pool, stamp, time.Now()
	return nil
}

// current returns the material in force, reloading it first if the files
// changed since the last look (at most every 500 ms).
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) < recheck {
		return s.cert, s.pool
	}
	s.checked = time.Now()
	stamp, err := s.stampNow()
	if err == nil && stamp != s.stamp {
		err = s.load(stamp)
	}
	if err != nil && s.OnReloadError != nil {
		s.OnReloadError(err)
	}
	return s.cert, s.pool
}

// ServerConfig is the configuration of a gRPC service: TLS 1.3 only, and a
// client certificate from the platform CA carrying a SPIFFE ID of the trust
// domain is required.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := s.current()
			if pool == nil {
				return nil, errors.New("mtls: no CA configured")
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
				NextProtos:   []string{"h2"},
				VerifyConnection: func(cs tls.ConnectionState) error {
					_, err := ServiceFromState(cs, s.td)
					return err
				},
			}, nil
		},
	}
}

// ClientConfig is the configuration for calling the service serverName: TLS
// 1.3 only; the server's chain is verified against the current platform CA
// and its SPIFFE ID must be exactly spiffe://<td>/<serverName>.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	want := "spiffe://" + s.td + "/" + serverName
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		NextProtos: []string{"h2"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
		// The standard verification needs a fixed RootCAs pool; the chain is
		// verified in VerifyConnection against the pool in force instead, so
		// that a rotated CA takes effect without a restart.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := s.current()
			if pool == nil {
				return errors.New("mtls: no CA configured")
			}
			if err := verifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageServerAuth); err != nil {
				return err
			}
			id, err := spiffeID(cs.PeerCertificates[0], s.td)
			if err != nil {
				return err
			}
			if id != want {
				return fmt.Errorf("mtls: server is %s, want %s", id, want)
			}
			return nil
		},
	}
}

// PublicServerConfig is the configuration of the public HTTPS edge: TLS 1.2
// minimum (1.3 preferred), only forward-secret AEAD suites for 1.2, HTTP/2
// and HTTP/1.1, no client certificate, hot-reloaded certificate.
func (s *Source) PublicServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
	}
}

// ServerCredentials are gRPC server credentials from ServerConfig.
func (s *Source) ServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(s.ServerConfig())
}

// ClientCredentials are gRPC client credentials from ClientConfig.
func (s *Source) ClientCredentials(serverName string) credentials.TransportCredentials {
	return credentials.NewTLS(s.ClientConfig(serverName))
}

func verifyChain(certs []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return errors.New("mtls: peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return fmt.Errorf("mtls: verify peer: %w", err)
	}
	return nil
}

// ServiceFromState returns the service name in the SPIFFE ID of a verified
// peer's leaf certificate. It fails if the chain was not verified, or if the
// leaf has no SPIFFE ID, more than one, or one of another trust domain.
func ServiceFromState(cs tls.ConnectionState, trustDomain string) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("mtls: peer certificate not verified")
	}
	id, err := spiffeID(cs.VerifiedChains[0][0], trustDomain)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(id, "spiffe://"+trustDomain+"/"), nil
}

// ServiceFromPeer returns the calling service's name from a gRPC context.
func ServiceFromPeer(ctx context.Context, trustDomain string) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("mtls: no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", errors.New("mtls: peer did not use TLS")
	}
	return ServiceFromState(info.State, trustDomain)
}

// spiffeID returns the single spiffe://<td>/<name> URI of a certificate.
func spiffeID(c *x509.Certificate, td string) (string, error) {
	var found *url.URL
	for _, u := range c.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if found != nil {
			return "", errors.New("mtls: certificate has more than one SPIFFE ID")
		}
		found = u
	}
	if found == nil {
		return "", errors.New("mtls: certificate has no SPIFFE ID")
	}
	name := strings.TrimPrefix(found.Path, "/")
	if found.Host != td || name == "" || strings.Contains(name, "/") || found.RawQuery != "" || found.Fragment != "" || found.User != nil {
		return "", fmt.Errorf("mtls: SPIFFE ID %s is not a service of %s", found, td)
	}
	return found.String(), nil
}
