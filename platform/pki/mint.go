package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// backdate absorbs small clock differences between the processes of a dev
// stack, so a certificate minted a moment ago is not "not yet valid" elsewhere.
const backdate = time.Minute

// newCA creates a self-signed CA that may sign leaves only (path length 0)
// and writes it to dir.
func newCA(dir string, o Options) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, serial, err := keyAndSerial()
	if err != nil {
		return nil, nil, err
	}
	now := o.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Bastion dev"}, CommonName: "Bastion dev CA (" + o.TrustDomain + ")"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(o.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{caURI(o.TrustDomain)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, "pki: create CA", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, "pki: create CA", err)
	}
	if err := writePair(dir, caName, der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// issue signs a platform identity for name with ca and writes it to dir.
// The leaf never outlives its CA, and serves both as server and as client
// certificate because every process both accepts and makes calls.
func issue(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, o Options) error {
	return sign(dir, name, ca, caKey, o, false)
}

// issueServing signs a public serving certificate: server authentication
// only, host names and addresses, and no platform identity, so that whoever
// holds its key can serve HTTPS as the edge but never call a service.
func issueServing(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, o Options) error {
	return sign(dir, name, ca, caKey, o, true)
}

func sign(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, o Options, serving bool) error {
	key, serial, err := keyAndSerial()
	if err != nil {
		return err
	}
	now := o.Now()
	notAfter := now.Add(o.LeafValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Bastion dev"}, CommonName: name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     append([]string{name, "localhost"}, o.DNSNames...),
		IPAddresses:  append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, o.IPs...),
		URIs:         []*url.URL{SPIFFEID(o.TrustDomain, name)},
	}
	if serving {
		tmpl.Subject.CommonName = "localhost"
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = append([]string{"localhost"}, o.DNSNames...)
		tmpl.URIs = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return errs.Wrap(errs.Internal, "pki: sign certificate", err)
	}
	return writePair(dir, name, der, key)
}

// keyAndSerial returns a fresh P-256 key and a random serial in [1, 2^128):
// unpredictable, and well inside the 20 octets RFC 5280 allows.
func keyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, "pki: generate key", err)
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit.Sub(limit, big.NewInt(1)))
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, "pki: generate serial", err)
	}
	return key, n.Add(n, big.NewInt(1)), nil
}
