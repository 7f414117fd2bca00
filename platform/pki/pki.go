// Package pki generates Bastion's development PKI: one CA and, for each
// process, an ECDSA P-256 certificate whose identity is a SPIFFE-style URI
// SAN (spiffe://bastion.local/<name>). Validity is short on purpose, and
// Ensure re-issues what is missing, foreign or close to expiry, so the dev
// runner can call it on every start.
//
// Production deployments should take identities from their own issuer
// (cert-manager, SPIRE); the rest of the platform only needs the files.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// Options tune generation. The zero value gives the defaults.
type Options struct {
	TrustDomain  string        // default "bastion.local"
	CAValidity   time.Duration // default 30 days
	LeafValidity time.Duration // default 7 days
	Now          func() time.Time
	DNSNames     []string // extra SANs; the name itself and "localhost" are always included
	IPs          []net.IP // extra SANs; 127.0.0.1 and ::1 are always included
}

func (o Options) withDefaults() Options {
	if o.TrustDomain == "" {
		o.TrustDomain = "bastion.local"
	}
	if o.CAValidity <= 0 {
		o.CAValidity = 30 * 24 * time.Hour
	}
	if o.LeafValidity <= 0 {
		o.LeafValidity = 7 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// SPIFFEID returns spiffe://<trustDomain>/<name>.
func SPIFFEID(trustDomain, name string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/" + name}
}

// Ensure makes dir hold a valid CA (ca.pem, ca-key.pem) and a valid leaf for
// each name (<name>.pem, <name>-key.pem). Existing material is kept while it
// is valid for more than a third of its lifetime and chains to the CA on disk;
// a missing or expiring CA regenerates everything.
func Ensure(dir string, names []string, opts Options) error {
	opts = opts.withDefaults()
	for _, n := range names {
		if !validName.MatchString(n) {
			return fmt.Errorf("pki: invalid name %q", n)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, caKey, err := loadPair(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil || !fresh(ca, opts.Now()) {
		if ca, caKey, err = newCA(dir, opts); err != nil {
			return err
		}
	}
	for _, n := range names {
		leaf, _, err := loadPair(filepath.Join(dir, n+".pem"), filepath.Join(dir, n+"-key.pem"))
		if err == nil && fresh(leaf, opts.Now()) && leaf.CheckSignatureFrom(ca) == nil && hasID(leaf, opts.TrustDomain, n) {
			continue
		}
		if err := issue(dir, n, ca, caKey, opts); err != nil {
			return err
		}
	}
	return nil
}

// Issue (re)issues the leaf for name with the CA already in dir.
func Issue(dir, name string, opts Options) error {
	opts = opts.withDefaults()
	if !validName.MatchString(name) {
		return fmt.Errorf("pki: invalid name %q", name)
	}
	ca, caKey, err := loadPair(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return fmt.Errorf("pki: load CA: %w", err)
	}
	return issue(dir, name, ca, caKey, opts)
}

// fresh reports whether more than a third of the certificate's life remains.
func fresh(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return now.After(c.NotBefore) && c.NotAfter.Sub(now) > life/3
}

func hasID(c *x509.Certificate, td, name string) bool {
	want := SPIFFEID(td, name).String()
	return slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return u.String() == want })
}

func newCA(dir string, o Options) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := o.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Bastion dev"}, CommonName: "Bastion dev CA (" + o.TrustDomain + ")"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(o.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: o.TrustDomain}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(dir, "ca", der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func issue(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, o Options) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := o.Now()
	notAfter := now.Add(o.LeafValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"Bastion dev"}, CommonName: name},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     append([]string{name, "localhost"}, o.DNSNames...),
		IPAddresses:  append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, o.IPs...),
		URIs:         []*url.URL{SPIFFEID(o.TrustDomain, name)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(dir, name, der, key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

// writePair writes the key first, then the certificate, each atomically, so a
// reloading reader sees either the old pair or the new one in full.
func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, nil, errors.New("pki: not PEM")
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("pki: key does not match certificate")
	}
	return cert, key, nil
}
