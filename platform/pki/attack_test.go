package pki_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/pki"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesBadNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "../etc", "Auth", "a/b", "a b", ".hidden", "ca", "-x", "auth.pem"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := pki.Ensure(dir, []string{"gateway", name}, pki.Options{}); errs.KindOf(err) != errs.Invalid {
				t.Errorf("Ensure(%q) = %v, want an Invalid error", name, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("Ensure(%q) wrote %d files before refusing", name, len(entries))
			}
			ensure(t, dir, []string{"gateway"}, pki.Options{})
			ca := serialOf(t, dir, "ca")
			if err := pki.Issue(dir, name, pki.Options{}); errs.KindOf(err) != errs.Invalid {
				t.Errorf("Issue(%q) = %v, want an Invalid error", name, err)
			}
			if serialOf(t, dir, "ca").Cmp(ca) != 0 {
				t.Errorf("Issue(%q) replaced the CA", name)
			}
		})
	}
}

// TestEnsureReplacesWhatItCannotTrust plants material that looks right but
// is not: each must be replaced by a leaf that chains to the CA on disk and
// carries the expected identity.
func TestEnsureReplacesWhatItCannotTrust(t *testing.T) {
	t.Parallel()
	foreign := t.TempDir()
	ensure(t, foreign, []string{"auth"}, pki.Options{})
	otherDomain := t.TempDir()
	ensure(t, otherDomain, []string{"auth"}, pki.Options{TrustDomain: "evil.local"})
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"leaf of a foreign CA", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(foreign, "auth.pem"), filepath.Join(dir, "auth.pem"))
			copyFile(t, filepath.Join(foreign, "auth-key.pem"), filepath.Join(dir, "auth-key.pem"))
		}},
		{"leaf of another service", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "gateway.pem"), filepath.Join(dir, "auth.pem"))
			copyFile(t, filepath.Join(dir, "gateway-key.pem"), filepath.Join(dir, "auth-key.pem"))
		}},
		{"foreign CA and leaf of another trust domain", func(t *testing.T, dir string) {
			for _, f := range []string{"ca.pem", "ca-key.pem", "auth.pem", "auth-key.pem"} {
				copyFile(t, filepath.Join(otherDomain, f), filepath.Join(dir, f))
			}
		}},
		{"garbage certificate", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "auth.pem"), []byte("junk"), 0o644) }},
		{"garbage key", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "auth-key.pem"), []byte("junk"), 0o600)
		}},
		{"missing key", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "auth-key.pem")) }},
		{"missing certificate", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "auth.pem")) }},
		{"key of another certificate", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "gateway-key.pem"), filepath.Join(dir, "auth-key.pem"))
		}},
		{"key is not PKCS#8", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "auth-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600)
		}},
		{"certificate is not DER", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "auth.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), 0o644)
		}},
		{"key in a certificate block", func(t *testing.T, dir string) {
			raw, _ := os.ReadFile(filepath.Join(dir, "auth.pem"))
			os.WriteFile(filepath.Join(dir, "auth-key.pem"), raw, 0o600)
		}},
		{"CA key damaged", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "ca-key.pem"), []byte("junk"), 0o600) }},
		{"CA missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "ca.pem")) }},
		{"leaf planted as the CA", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "gateway.pem"), filepath.Join(dir, "ca.pem"))
			copyFile(t, filepath.Join(dir, "gateway-key.pem"), filepath.Join(dir, "ca-key.pem"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			names := []string{"auth", "gateway"}
			ensure(t, dir, names, pki.Options{})
			tt.damage(t, dir)
			ensure(t, dir, names, pki.Options{})
			ca := readCert(t, filepath.Join(dir, "ca.pem"))
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			for _, n := range names {
				leaf := readCert(t, filepath.Join(dir, n+".pem"))
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
					t.Errorf("after %s, %s does not chain to the CA: %v", tt.name, n, err)
				}
				if want := pki.SPIFFEID("bastion.local", n).String(); len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
					t.Errorf("after %s, %s URIs = %v, want [%s]", tt.name, n, leaf.URIs, want)
				}
			}
		})
	}
}

// TestWritesAreAtomic reads the files while they are rotated again and again:
// a reader must never see a partial file.
func TestWritesAreAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ensure(t, dir, []string{"auth"}, pki.Options{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	var torn []string
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, f := range []string{"auth.pem", "auth-key.pem"} {
				raw, err := os.ReadFile(filepath.Join(dir, f))
				if b, _ := pem.Decode(raw); err != nil || b == nil {
					torn = append(torn, f)
				}
			}
		}
	})
	for range 30 {
		if err := pki.Issue(dir, "auth", pki.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if len(torn) != 0 {
		t.Errorf("a reader saw %d partial or missing files during rotation: %v", len(torn), torn[:min(len(torn), 5)])
	}
}

func TestReportsWriteFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ensure(t, dir, []string{"auth"}, pki.Options{})
	// A directory where the certificate should go: the rename cannot succeed.
	if err := os.Mkdir(filepath.Join(dir, "blocked.pem"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pki.Issue(dir, "blocked", pki.Options{}); errs.KindOf(err) != errs.Internal {
		t.Errorf("Issue(blocked) = %v, want an Internal error", err)
	}
	if err := pki.Ensure(dir, []string{"blocked"}, pki.Options{}); errs.KindOf(err) != errs.Internal {
		t.Errorf("Ensure(blocked) = %v, want an Internal error", err)
	}
	if err := pki.Ensure(filepath.Join(dir, "auth.pem", "sub"), []string{"auth"}, pki.Options{}); errs.KindOf(err) != errs.Internal {
		t.Errorf("Ensure(under a file) = %v, want an Internal error", err)
	}
}
