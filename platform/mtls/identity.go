package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"regexp"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/bastion-bank/bastion/platform/errs"
)

// errNotVerified is returned when no verified chain backs the peer: an
// identity is only worth something once its chain was checked.
var errNotVerified = errs.Reasoned(errs.Unauthenticated, "peer_not_verified", "peer identity not verified")

// serviceSegment is one SPIFFE path segment as the SPIFFE ID spec allows it,
// without "." and "..": the name is compared against access rules and
// must not be open to interpretation.
var serviceSegment = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ServiceFromState returns the service name in the SPIFFE ID of a verified
// peer's leaf certificate. It fails if the chain was not verified (as on the
// client side of ClientConfig, which verifies by hand), or if the leaf has no
// SPIFFE ID, more than one URI, or an ID of another trust domain.
func ServiceFromState(cs tls.ConnectionState, trustDomain string) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errNotVerified
	}
	return serviceName(cs.VerifiedChains[0][0], trustDomain)
}

// ServiceFromPeer returns the calling service's name from a gRPC server
// context whose transport is ServerCredentials.
func ServiceFromPeer(ctx context.Context, trustDomain string) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errNotVerified
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", errNotVerified
	}
	return ServiceFromState(info.State, trustDomain)
}

// serviceName returns <name> from a leaf whose only URI SAN is
// spiffe://<td>/<name>, following the X509-SVID rules: exactly one URI, not
// a CA, no port, user, query, fragment or escaping, one path segment.
func serviceName(c *x509.Certificate, td string) (string, error) {
	refuse := func(why string, args ...any) (string, error) {
		return "", errs.Wrap(errs.Unauthenticated, "peer identity refused", fmt.Errorf(why, args...))
	}
	if c.IsCA {
		return refuse("a CA certificate is not a service identity")
	}
	if len(c.URIs) != 1 {
		return refuse("certificate has %d URI SANs, want exactly one SPIFFE ID", len(c.URIs))
	}
	u := c.URIs[0]
	if u.Scheme != "spiffe" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || u.RawFragment != "" || u.RawPath != "" {
		return refuse("URI SAN %q is not a plain SPIFFE ID", u.String())
	}
	if u.Host != td {
		return refuse("SPIFFE ID %q is not of trust domain %q", u.String(), td)
	}
	name, ok := cutSlash(u.Path)
	if !ok || !serviceSegment.MatchString(name) || name == "." || name == ".." {
		return refuse("SPIFFE ID %q does not name one service", u.String())
	}
	return name, nil
}

func cutSlash(path string) (string, bool) {
	if len(path) < 2 || path[0] != '/' {
		return "", false
	}
	return path[1:], true
}

// parseChain parses a chain as tls.ConnectionState or tls.Certificate
// carries it: DER, leaf first.
func parseChain(der [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(der))
	for _, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// verifiedName verifies chain (leaf first, then intermediates) against
// roots for usage, now, and returns the service name of the leaf.
func verifiedName(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, td string) (string, error) {
	if len(chain) == 0 {
		return "", errs.New(errs.Unauthenticated, "peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return "", errs.Wrap(errs.Unauthenticated, "peer certificate not trusted", err)
	}
	return serviceName(chain[0], td)
}
