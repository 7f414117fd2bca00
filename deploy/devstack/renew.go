package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/platform/pki"
)

// The export layout (Config.ExportDir), one directory per process so that an
// orchestrator can mount each into its own container and nothing more:
//
//	<export>/<process>/ca.pem, <process>.pem, <process>-key.pem
//	<export>/page-token/page-token.key   (for auth, accounts and transactions)
//	<export>/totp-key/totp.key           (for auth: it seals TOTP secrets)
//
// The CA key, the other processes' keys, the database passwords and the
// admin password are never exported; they stay in the dev directory, which
// only the preparing job mounts.
const (
	PageTokenDir  = "page-token"
	PageTokenFile = "page-token.key"
	TOTPKeyDir    = "totp-key"
	TOTPKeyFile   = "totp.key"
)

// AdminTOTPFile is the bootstrap admin's TOTP secret in the secrets
// directory (base32, as an authenticator app takes it): Prepare writes it
// when the stack has a bootstrap admin, auth enrols the admin with it
// (BANK_ADMIN_TOTP_SECRET_FILE), and deploy/cmd/totp prints its codes. It
// is never exported.
const AdminTOTPFile = "admin-totp"

// PublicCert is the file stem of the edge's public serving certificate in
// the dev PKI (pki.EnsureServing): what clients see on the public port,
// kept apart from the gateway's platform identity, which services accept.
const PublicCert = "gateway-public"

// PKIFiles are the files of name's export directory: the CA, the process's
// platform identity and, for the gateway, the public serving certificate.
func PKIFiles(name string) []string {
	files := []string{"ca.pem", name + ".pem", name + "-key.pem"}
	if name == "gateway" {
		files = append(files, PublicCert+".pem", PublicCert+"-key.pem")
	}
	return files
}

// RenewEvery is how often the dev runner looks at the certificates. pki.Ensure
// renews a leaf when less than a third of its 7 days is left, so a check every
// few minutes renews days before expiry, and costs a few file reads.
const RenewEvery = 10 * time.Minute

// RenewPKI re-issues what pki.Ensure finds due (a leaf with less than a third
// of its life left, or missing, damaged or foreign; everything when the CA
// is), then brings the export directory, if any, up to date. It returns the
// names ("ca", "auth", …) whose certificate changed. Running processes load
// the new files for new connections (platform/mtls), so nothing restarts.
func RenewPKI(cfg Config, opts pki.Options) ([]string, error) {
	dir := filepath.Join(cfg.Dir, "pki")
	names := append([]string{"ca", PublicCert}, Processes...)
	before := make(map[string][]byte, len(names))
	for _, n := range names {
		before[n], _ = os.ReadFile(filepath.Join(dir, n+".pem"))
	}
	if err := pki.Ensure(dir, Processes, opts); err != nil {
		return nil, fmt.Errorf("dev PKI: %w", err)
	}
	if err := pki.EnsureServing(dir, PublicCert, opts); err != nil {
		return nil, fmt.Errorf("dev PKI: public certificate: %w", err)
	}
	var renewed []string
	for _, n := range names {
		if now, err := os.ReadFile(filepath.Join(dir, n+".pem")); err != nil || !bytes.Equal(now, before[n]) {
			renewed = append(renewed, n)
		}
	}
	if cfg.ExportDir != "" {
		if _, err := Export(cfg.Dir, cfg.ExportDir); err != nil {
			return renewed, err
		}
	}
	return renewed, nil
}

// KeepRenewed calls RenewPKI every interval until ctx ends, and tells report
// what it renewed or why it could not (it tries again at the next tick). It
// is how a stack left running for more than a week keeps its mTLS working.
func KeepRenewed(ctx context.Context, cfg Config, every time.Duration, opts pki.Options, report func(renewed []string, err error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		renewed, err := RenewPKI(cfg, opts)
		if err != nil || len(renewed) > 0 {
			report(renewed, err)
		}
	}
}

// Export copies into exportDir each process's own certificate and key with
// the CA certificate, and the page-token key, in the layout above. Only files
// whose content differs are written, each atomically (a temporary file renamed
// into place), key before certificate, CA certificate last: a process reading
// while the export runs never sees a partial file, and a moment of mismatched
// material (a new key, the old certificate) is refused by platform/mtls, which
// keeps the last good pair and loads the new one at its next look. It returns
// the files written, relative to exportDir.
func Export(devDir, exportDir string) ([]string, error) {
	pkiDir := filepath.Join(devDir, "pki")
	var written []string
	copyIn := func(sub, src, name string) error {
		changed, err := syncFile(filepath.Join(src, name), filepath.Join(exportDir, sub, name))
		if changed {
			written = append(written, filepath.Join(sub, name))
		}
		return err
	}
	for _, p := range Processes {
		if err := os.MkdirAll(filepath.Join(exportDir, p), 0o700); err != nil {
			return written, err
		}
		// Key, certificate, CA: the order in which a rotation's new
		// material becomes loadable.
		files := []string{p + "-key.pem", p + ".pem", "ca.pem"}
		if p == "gateway" {
			files = append([]string{PublicCert + "-key.pem", PublicCert + ".pem"}, files...)
		}
		for _, f := range files {
			if err := copyIn(p, pkiDir, f); err != nil {
				return written, err
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(exportDir, PageTokenDir), 0o700); err != nil {
		return written, err
	}
	if err := copyIn(PageTokenDir, filepath.Join(devDir, "secrets"), PageTokenFile); err != nil {
		return written, err
	}
	if err := os.MkdirAll(filepath.Join(exportDir, TOTPKeyDir), 0o700); err != nil {
		return written, err
	}
	if err := copyIn(TOTPKeyDir, filepath.Join(devDir, "secrets"), TOTPKeyFile); err != nil {
		return written, err
	}
	return written, nil
}

// syncFile makes dst a copy of src, mode 0600 (or 0644 for a certificate),
// unless it already is one, and reports whether it wrote.
func syncFile(src, dst string) (bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("export %s: %w", filepath.Base(src), err)
	}
	mode := fs.FileMode(0o600)
	if isCertificate(filepath.Base(src)) {
		mode = 0o644
	}
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
		info, err := os.Stat(dst)
		if err == nil && info.Mode().Perm() == mode {
			return false, nil
		}
	}
	return true, writeAtomic(dst, data, mode)
}

// isCertificate reports whether a PKI file name is public material.
func isCertificate(name string) bool {
	return strings.HasSuffix(name, ".pem") && !strings.HasSuffix(name, "-key.pem")
}

// writeAtomic writes data to a temporary file next to path, created 0600 so
// a key is never readable by others even for a moment, and renames it over
// path: a reader sees the old file or the new one, never part of one.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
