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
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
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

// validName keeps names usable as file names and as SPIFFE path segments:
// no separators, no dots, nothing that could escape dir.
var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// caName is the file stem of the CA; a leaf of that name would overwrite it.
const caName = "ca"

func checkName(name string) error {
	if !validName.MatchString(name) || name == caName {
		return errs.Wrap(errs.Invalid, "pki: invalid certificate name", fmt.Errorf("%q does not match %s or is the CA's own name", name, validName))
	}
	return nil
}

// SPIFFEID returns spiffe://<trustDomain>/<name>.
func SPIFFEID(trustDomain, name string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/" + name}
}

// Ensure makes dir hold a valid CA (ca.pem, ca-key.pem) and a valid leaf for
// each name (<name>.pem, <name>-key.pem). Existing material is kept while it
// is valid for more than a third of its lifetime, chains to the CA on disk and
// names the trust domain; a missing or expiring CA regenerates everything, so
// that a restart never runs on half-rotated trust.
func Ensure(dir string, names []string, opts Options) error {
	opts = opts.withDefaults()
	for _, n := range names {
		if err := checkName(n); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errs.Wrap(errs.Internal, "pki: create directory", err)
	}
	now := opts.Now()
	ca, caKey, err := loadPair(dir, caName)
	if err == nil && fresh(ca, now) && ca.IsCA && hasURI(ca, caURI(opts.TrustDomain)) {
		err = tightenKey(dir, caName)
	} else {
		ca, caKey, err = newCA(dir, opts)
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		leaf, _, err := loadPair(dir, n)
		if err == nil && fresh(leaf, now) && leaf.CheckSignatureFrom(ca) == nil && hasURI(leaf, SPIFFEID(opts.TrustDomain, n)) {
			err = tightenKey(dir, n)
		} else {
			err = issue(dir, n, ca, caKey, opts)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// EnsureServing makes dir hold a valid public serving certificate
// (<name>.pem, <name>-key.pem) signed by the CA that Ensure keeps there, so
// clients that trust the dev CA trust it too. Unlike a platform identity it
// allows server authentication only and names no SPIFFE identity: the edge
// serves the public with it, while its platform identity, which services
// accept as the gateway, never leaves the process. It is kept while fresh
// and still such a certificate, and re-issued otherwise; the CA must exist.
func EnsureServing(dir, name string, opts Options) error {
	opts = opts.withDefaults()
	if err := checkName(name); err != nil {
		return err
	}
	ca, caKey, err := loadPair(dir, caName)
	if err != nil {
		return errs.Wrap(errs.Internal, "pki: load CA (run Ensure first)", err)
	}
	leaf, _, err := loadPair(dir, name)
	if err == nil && fresh(leaf, opts.Now()) && leaf.CheckSignatureFrom(ca) == nil && IsServingOnly(leaf) {
		return tightenKey(dir, name)
	}
	return issueServing(dir, name, ca, caKey, opts)
}

// IsServingOnly reports whether c can only authenticate a server and names
// no platform identity: no URI SAN, and server authentication as its only
// extended key usage. A public endpoint should serve nothing else.
func IsServingOnly(c *x509.Certificate) bool {
	return len(c.URIs) == 0 && len(c.UnknownExtKeyUsage) == 0 &&
		len(c.ExtKeyUsage) == 1 && c.ExtKeyUsage[0] == x509.ExtKeyUsageServerAuth
}

// Issue (re)issues the leaf for name with the CA already in dir, whatever the
// state of the old leaf. Rotation drills and tests use it; it refuses to sign
// with a CA that is not valid now, since the leaf would be dead on arrival.
func Issue(dir, name string, opts Options) error {
	opts = opts.withDefaults()
	if err := checkName(name); err != nil {
		return err
	}
	ca, caKey, err := loadPair(dir, caName)
	if err != nil {
		return errs.Wrap(errs.Internal, "pki: load CA", err)
	}
	if now := opts.Now(); now.Before(ca.NotBefore) || !now.Before(ca.NotAfter) {
		return errs.New(errs.Internal, "pki: the CA is not valid now; run Ensure to regenerate it")
	}
	return issue(dir, name, ca, caKey, opts)
}

// fresh reports whether the certificate is in force and more than a third of
// its life remains: renewing at two thirds leaves time to retry a failed
// rotation before anything expires.
func fresh(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return !now.Before(c.NotBefore) && c.NotAfter.Sub(now) > life/3
}

func hasURI(c *x509.Certificate, want *url.URL) bool {
	for _, u := range c.URIs {
		if u.String() == want.String() {
			return true
		}
	}
	return false
}

// caURI names the trust domain in the CA, so a change of trust domain
// regenerates the CA instead of mixing domains under one root.
func caURI(trustDomain string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain}
}
