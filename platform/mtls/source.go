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
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Files names the PEM files of one identity.
type Files struct {
	CA   string // the platform CA bundle; empty for a public-only server certificate
	Cert string // the leaf, optionally followed by intermediates
	Key  string
}

// FilesIn returns dir/ca.pem, dir/<name>.pem and dir/<name>-key.pem, the
// layout platform/pki writes.
func FilesIn(dir, name string) Files {
	return Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
}

// recheck bounds how often the files are examined for changes: often enough
// that a rotation takes effect within a second, rarely enough that a busy
// server does not stat three files per handshake.
const recheck = 500 * time.Millisecond

// material is one consistent load of the files.
type material struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil when Files.CA is empty
}

// Source holds one identity's certificate and the CA pool, reloading them
// when the files change on disk. New handshakes use the new material;
// connections already open keep theirs.
type Source struct {
	files Files
	td    string

	// OnReloadError is told about a reload that failed, once per change of
	// the files; the last good material stays in use. Set it right after
	// NewSource, before the Source is used: it is read without a lock.
	OnReloadError func(error)

	mu      sync.Mutex
	mat     material
	stamp   string    // the files' identity when mat was loaded
	failed  string    // the files' identity at the last failed reload
	checked time.Time // the last look at the files
}

// NewSource loads the files now and returns an error if they are unreadable
// or invalid: a process must not start with material that cannot work.
func NewSource(f Files, trustDomain string) (*Source, error) {
	if trustDomain == "" || strings.ContainsAny(trustDomain, "/:@?# ") {
		return nil, errs.New(errs.Invalid, "mtls: a trust domain name is required")
	}
	s := &Source{files: f, td: trustDomain}
	stamp := s.stampNow()
	mat, err := load(f, trustDomain)
	if err != nil {
		return nil, err
	}
	s.mat, s.stamp, s.checked = mat, stamp, time.Now()
	return s, nil
}

// LogReloadErrors sets OnReloadError to log each failed reload on logger at
// error level as "<what> reload failed; keeping the old one", with the error.
// Every process words the line the same way because the certificate
// runbook (docs/runbooks.md) tells operators to watch for it after a
// rotation. Like OnReloadError, call it right after NewSource.
func (s *Source) LogReloadErrors(logger *slog.Logger, what string) {
	s.OnReloadError = func(err error) {
		logger.Error(what+" reload failed; keeping the old one", "error", err.Error())
	}
}

// TrustDomain returns the SPIFFE trust domain the source checks peers against.
func (s *Source) TrustDomain() string { return s.td }

// stampNow identifies the files' current versions by path, modification time
// and size. pki replaces files by rename, so every rotation changes it.
func (s *Source) stampNow() string {
	var b strings.Builder
	for _, p := range []string{s.files.CA, s.files.Cert, s.files.Key} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err != nil {
			fmt.Fprintf(&b, "%s:missing;", p)
		} else {
			fmt.Fprintf(&b, "%s:%d:%d;", p, st.ModTime().UnixNano(), st.Size())
		}
	}
	return b.String()
}

// load reads the files and checks that they can work together: the key
// matches the certificate and, for a platform identity, the certificate
// chains to the CA and names a service of the trust domain. A half-finished
// rotation (new key, old certificate; new CA, old leaf) fails here and is
// retried when the next file lands.
func load(f Files, td string) (material, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return material{}, errs.Wrap(errs.Internal, "mtls: load certificate and key", err)
	}
	if f.CA == "" {
		return material{cert: &cert}, nil
	}
	raw, err := os.ReadFile(f.CA)
	if err != nil {
		return material{}, errs.Wrap(errs.Internal, "mtls: read CA", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return material{}, errs.New(errs.Internal, "mtls: no certificate in the CA file")
	}
	chain, err := parseChain(cert.Certificate)
	if err == nil {
		_, err = verifiedName(chain, pool, x509.ExtKeyUsageAny, td)
	}
	if err != nil {
		return material{}, errs.Wrap(errs.Internal, "mtls: the certificate is not a valid identity under the CA", err)
	}
	return material{cert: &cert, pool: pool}, nil
}

// current returns the material in force, reloading it first if the files
// changed since the last look (at most every recheck).
func (s *Source) current() material {
	s.mu.Lock()
	mat, err := s.refreshLocked(time.Now())
	s.mu.Unlock()
	// Outside the lock: the callback may log, block or even handshake.
	if err != nil && s.OnReloadError != nil {
		s.OnReloadError(err)
	}
	return mat
}

// refreshLocked reloads changed files. A failure is reported once per
// version of the files, not on every handshake, and keeps the last good
// material: a broken rotation must not take the process off the network.
func (s *Source) refreshLocked(now time.Time) (material, error) {
	if now.Sub(s.checked) < recheck {
		return s.mat, nil
	}
	s.checked = now
	stamp := s.stampNow()
	if stamp == s.stamp || stamp == s.failed {
		return s.mat, nil
	}
	mat, err := load(s.files, s.td)
	if err != nil {
		s.failed = stamp
		return s.mat, err
	}
	s.mat, s.stamp, s.failed = mat, stamp, ""
	return s.mat, nil
}
