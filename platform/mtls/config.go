package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"google.golang.org/grpc/credentials"

	"github.com/bastion-bank/bastion/platform/errs"
)

// errNoCA is returned by the mutual-TLS configurations of a Source built
// without a CA file: they cannot verify anybody, so they refuse everybody.
var errNoCA = errs.New(errs.Internal, "mtls: no platform CA configured")

// ServerConfig is the configuration of a gRPC service: TLS 1.3 only, and a
// client certificate from the platform CA carrying a SPIFFE ID of the trust
// domain is required. Each handshake takes the certificate and CA pool in
// force, so a rotation needs no restart.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// No resumption: every connection proves its client certificate
		// against the CA in force now, not the one of an earlier session.
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.current()
			if m.pool == nil {
				return nil, errNoCA
			}
			return &tls.Config{
				MinVersion:             tls.VersionTLS13,
				SessionTicketsDisabled: true,
				Certificates:           []tls.Certificate{*m.cert},
				ClientAuth:             tls.RequireAndVerifyClientCert,
				ClientCAs:              m.pool,
				NextProtos:             []string{"h2"},
				VerifyConnection: func(cs tls.ConnectionState) error {
					_, err := ServiceFromState(cs, s.td)
					return err
				},
			}, nil
		},
	}
}

// ClientConfig is the configuration for calling the service serverName: TLS
// 1.3 only; the server's chain is verified against the platform CA in force
// and its SPIFFE ID must be exactly spiffe://<td>/<serverName>. The client
// presents the current certificate of the Source.
//
// crypto/tls can only verify a client's peer against a fixed RootCAs pool,
// which would pin the CA of the day the connection was configured. So the
// built-in check (which would also want serverName among the DNS names) is
// switched off and VerifyConnection does the whole verification instead:
// chain, validity, server usage, then identity. It runs on every handshake,
// resumed or not, and the handshake fails if it returns an error.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		NextProtos: []string{"h2"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.current().cert, nil
		},
		InsecureSkipVerify: true, // replaced by VerifyConnection, see above
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyServer(cs, serverName)
		},
	}
}

// verifyServer checks that the peer's chain leads to the CA in force and
// that its leaf is exactly the service the caller meant to reach.
func (s *Source) verifyServer(cs tls.ConnectionState, want string) error {
	pool := s.current().pool
	if pool == nil {
		return errNoCA
	}
	got, err := verifiedName(cs.PeerCertificates, pool, x509.ExtKeyUsageServerAuth, s.td)
	if err != nil {
		return err
	}
	if got != want {
		return errs.Wrap(errs.Unauthenticated, "server is not the service called", fmt.Errorf("server is %q, want %q", got, want))
	}
	return nil
}

// PublicServerConfig is the configuration of the public HTTPS edge: TLS 1.2
// minimum (1.3 is negotiated whenever the client offers it), only
// forward-secret AEAD suites for 1.2, HTTP/2 and HTTP/1.1, no client
// certificate, and the certificate in force at each handshake.
func (s *Source) PublicServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
		ClientAuth: tls.NoClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.current().cert, nil
		},
	}
}

// ServerCredentials are gRPC server credentials from ServerConfig.
func (s *Source) ServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(s.ServerConfig())
}

// ClientCredentials are gRPC client credentials from ClientConfig, for
// calling the service serverName.
func (s *Source) ClientCredentials(serverName string) credentials.TransportCredentials {
	return credentials.NewTLS(s.ClientConfig(serverName))
}
