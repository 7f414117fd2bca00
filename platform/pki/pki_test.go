package pki_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/pki"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureIssuesSPIFFEIdentities(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := pki.Ensure(dir, []string{"gateway", "auth"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"gateway", "auth"} {
		c := readCert(t, filepath.Join(dir, name+".pem"))
		if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://bastion.local/"+name {
			t.Errorf("%s URIs = %v", name, c.URIs)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s does not chain to the CA for client auth: %v", name, err)
		}
		if life := c.NotAfter.Sub(c.NotBefore); life > 8*24*time.Hour {
			t.Errorf("%s lives %v, want short validity", name, life)
		}
		info, _ := os.Stat(filepath.Join(dir, name+"-key.pem"))
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode = %v, want 0600", name, info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, want 0700", info.Mode().Perm())
	}
}

func TestEnsureIsIdempotentAndRenews(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := time.Now()
	opts := pki.Options{Now: func() time.Time { return clock }}
	if err := pki.Ensure(dir, []string{"auth"}, opts); err != nil {
		t.Fatal(err)
	}
	first := readCert(t, filepath.Join(dir, "auth.pem")).SerialNumber
	firstCA := readCert(t, filepath.Join(dir, "ca.pem")).SerialNumber
	if err := pki.Ensure(dir, []string{"auth"}, opts); err != nil {
		t.Fatal(err)
	}
	if readCert(t, filepath.Join(dir, "auth.pem")).SerialNumber.Cmp(first) != 0 {
		t.Error("a second Ensure re-issued a valid certificate")
	}
	clock = clock.Add(6 * 24 * time.Hour) // less than a third of the leaf's life left
	if err := pki.Ensure(dir, []string{"auth"}, opts); err != nil {
		t.Fatal(err)
	}
	if readCert(t, filepath.Join(dir, "auth.pem")).SerialNumber.Cmp(first) == 0 {
		t.Error("Ensure kept a leaf close to expiry")
	}
	if readCert(t, filepath.Join(dir, "ca.pem")).SerialNumber.Cmp(firstCA) != 0 {
		t.Error("Ensure replaced a CA that was still fresh")
	}
	clock = clock.Add(20 * 24 * time.Hour)
	if err := pki.Ensure(dir, []string{"auth"}, opts); err != nil {
		t.Fatal(err)
	}
	if readCert(t, filepath.Join(dir, "ca.pem")).SerialNumber.Cmp(firstCA) == 0 {
		t.Error("Ensure kept a CA close to expiry")
	}
}

func TestEnsureReplacesForeignLeaves(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := pki.Ensure(d, []string{"auth"}, pki.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(b, "auth.pem"))
	key, _ := os.ReadFile(filepath.Join(b, "auth-key.pem"))
	os.WriteFile(filepath.Join(a, "auth.pem"), raw, 0o644)
	os.WriteFile(filepath.Join(a, "auth-key.pem"), key, 0o600)
	if err := pki.Ensure(a, []string{"auth"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(a, "ca.pem"))
	if err := readCert(t, filepath.Join(a, "auth.pem")).CheckSignatureFrom(ca); err != nil {
		t.Errorf("a leaf of another CA was kept: %v", err)
	}
}

func TestRefusesBadNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "../etc", "Auth", "a/b", "a b"} {
		if err := pki.Ensure(t.TempDir(), []string{name}, pki.Options{}); err == nil {
			t.Errorf("Ensure(%q) succeeded", name)
		}
		if err := pki.Issue(t.TempDir(), name, pki.Options{}); err == nil {
			t.Errorf("Issue(%q) succeeded", name)
		}
	}
	if err := pki.Issue(t.TempDir(), "auth", pki.Options{}); err == nil {
		t.Error("Issue without a CA succeeded")
	}
}

func TestEnsureRepairsDamagedFiles(t *testing.T) {
	t.Parallel()
	for name, damage := range map[string]func(dir string){
		"garbage certificate": func(dir string) { os.WriteFile(filepath.Join(dir, "auth.pem"), []byte("junk"), 0o644) },
		"garbage key":         func(dir string) { os.WriteFile(filepath.Join(dir, "auth-key.pem"), []byte("junk"), 0o600) },
		"missing key":         func(dir string) { os.Remove(filepath.Join(dir, "auth-key.pem")) },
		"swapped key": func(dir string) {
			other, _ := os.ReadFile(filepath.Join(dir, "gateway-key.pem"))
			os.WriteFile(filepath.Join(dir, "auth-key.pem"), other, 0o600)
		},
		"key is not PKCS#8": func(dir string) {
			os.WriteFile(filepath.Join(dir, "auth-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600)
		},
		"certificate is not DER": func(dir string) {
			os.WriteFile(filepath.Join(dir, "auth.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), 0o644)
		},
		"CA damaged": func(dir string) { os.WriteFile(filepath.Join(dir, "ca-key.pem"), []byte("junk"), 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := pki.Ensure(dir, []string{"auth", "gateway"}, pki.Options{}); err != nil {
				t.Fatal(err)
			}
			damage(dir)
			if err := pki.Ensure(dir, []string{"auth", "gateway"}, pki.Options{}); err != nil {
				t.Fatalf("Ensure after %s: %v", name, err)
			}
			ca := readCert(t, filepath.Join(dir, "ca.pem"))
			if err := readCert(t, filepath.Join(dir, "auth.pem")).CheckSignatureFrom(ca); err != nil {
				t.Errorf("after %s the leaf does not chain: %v", name, err)
			}
		})
	}
	if err := pki.Ensure("/proc/forbidden/pki", []string{"auth"}, pki.Options{}); err == nil {
		t.Error("Ensure in an unwritable place succeeded")
	}
}
