package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
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
	if b == nil {
		t.Fatalf("%s is not PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serialOf(t *testing.T, dir, name string) *big.Int {
	t.Helper()
	return readCert(t, filepath.Join(dir, name+".pem")).SerialNumber
}

func ensure(t *testing.T, dir string, names []string, opts pki.Options) {
	t.Helper()
	if err := pki.Ensure(dir, names, opts); err != nil {
		t.Fatalf("Ensure(%v) = %v", names, err)
	}
}

func TestEnsureIssuesSPIFFEIdentities(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	extraIP := net.ParseIP("10.1.2.3")
	ensure(t, dir, []string{"gateway", "auth"}, pki.Options{TrustDomain: "bank.test", DNSNames: []string{"auth.internal"}, IPs: []net.IP{extraIP}})
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	if !ca.IsCA || !ca.MaxPathLenZero {
		t.Errorf("CA IsCA = %v, MaxPathLenZero = %v, want true, true", ca.IsCA, ca.MaxPathLenZero)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"gateway", "auth"} {
		c := readCert(t, filepath.Join(dir, name+".pem"))
		if got, want := c.URIs, pki.SPIFFEID("bank.test", name).String(); len(got) != 1 || got[0].String() != want {
			t.Errorf("%s URIs = %v, want [%s]", name, got, want)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s does not chain to the CA for usage %v: %v", name, usage, err)
			}
		}
		if c.IsCA {
			t.Errorf("%s is a CA", name)
		}
		if life := c.NotAfter.Sub(c.NotBefore); life > 7*24*time.Hour+2*time.Minute {
			t.Errorf("%s lives %v, want at most 7 days", name, life)
		}
		if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
			t.Errorf("%s serial %x, want positive and at most 128 bits", name, c.SerialNumber)
		}
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", name, c.PublicKey)
		}
		for _, dns := range []string{name, "localhost", "auth.internal"} {
			if !slices.Contains(c.DNSNames, dns) {
				t.Errorf("%s DNSNames = %v, want %s among them", name, c.DNSNames, dns)
			}
		}
		for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, extraIP} {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				t.Errorf("%s IPAddresses = %v, want %v among them", name, c.IPAddresses, ip)
			}
		}
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v (%v), want 0700", info.Mode().Perm(), err)
	}
}

// TestKeysAreOwnerOnly: every key is 0600 when written, and a loosened key
// is tightened again by the next Ensure.
func TestKeysAreOwnerOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	names := []string{"auth", "gateway"}
	ensure(t, dir, names, pki.Options{})
	keys := []string{"ca-key.pem", "auth-key.pem", "gateway-key.pem"}
	checkModes := func(when string) {
		for _, k := range keys {
			info, err := os.Stat(filepath.Join(dir, k))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode of %s = %v (%v), want 0600", when, k, info.Mode().Perm(), err)
			}
		}
	}
	checkModes("after Ensure")
	for _, k := range keys {
		if err := os.Chmod(filepath.Join(dir, k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ensure(t, dir, names, pki.Options{})
	checkModes("after Ensure on loosened keys")
	if err := pki.Issue(dir, "auth", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	checkModes("after Issue")
}

// snapshot records every file's content and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		info, _ := e.Info()
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = info.ModTime().String() + "\n" + string(raw)
	}
	return out
}

func TestEnsureIsIdempotent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	names := []string{"auth", "gateway"}
	ensure(t, dir, names, pki.Options{})
	before := snapshot(t, dir)
	if len(before) != 6 {
		t.Fatalf("Ensure wrote %v, want 6 files and no temporary ones", slices.Sorted(maps.Keys(before)))
	}
	time.Sleep(10 * time.Millisecond) // a rewrite would show in the modification time
	ensure(t, dir, names, pki.Options{})
	after := snapshot(t, dir)
	for name, was := range before {
		if after[name] != was {
			t.Errorf("a second Ensure rewrote %s", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("a second Ensure left %d files, want %d", len(after), len(before))
	}
}

// TestEnsureRenewsNearExpiry drives the clock through the leaf's and the CA's
// renewal points: kept while more than a third of the life remains, renewed
// after, and a renewed CA takes every leaf with it.
func TestEnsureRenewsNearExpiry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Now()
	clock := start
	opts := pki.Options{Now: func() time.Time { return clock }}
	names := []string{"auth"}
	ensure(t, dir, names, opts)
	leaf, ca := serialOf(t, dir, "auth"), serialOf(t, dir, "ca")
	day := 24 * time.Hour
	// The leaf lives 7 days + 1 minute of backdating: renewal at about 4.7 days.
	steps := []struct {
		at               time.Duration
		wantLeaf, wantCA bool // renewed?
	}{
		{at: 4 * day, wantLeaf: false, wantCA: false},
		{at: 5 * day, wantLeaf: true, wantCA: false},
		{at: 5*day + time.Hour, wantLeaf: false, wantCA: false},
		{at: 21 * day, wantLeaf: true, wantCA: true}, // CA: 30 days, renewal at 20
	}
	for _, s := range steps {
		clock = start.Add(s.at)
		ensure(t, dir, names, opts)
		gotLeaf, gotCA := serialOf(t, dir, "auth"), serialOf(t, dir, "ca")
		if renewed := gotLeaf.Cmp(leaf) != 0; renewed != s.wantLeaf {
			t.Errorf("Ensure at +%v renewed the leaf = %v, want %v", s.at, renewed, s.wantLeaf)
		}
		if renewed := gotCA.Cmp(ca) != 0; renewed != s.wantCA {
			t.Errorf("Ensure at +%v renewed the CA = %v, want %v", s.at, renewed, s.wantCA)
		}
		leaf, ca = gotLeaf, gotCA
	}
	c := readCert(t, filepath.Join(dir, "auth.pem"))
	if err := c.CheckSignatureFrom(readCert(t, filepath.Join(dir, "ca.pem"))); err != nil {
		t.Errorf("after CA renewal the leaf does not chain: %v", err)
	}
}

// TestLeafNeverOutlivesCA: a long leaf validity is cut at the CA's end.
func TestLeafNeverOutlivesCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ensure(t, dir, []string{"auth"}, pki.Options{CAValidity: 48 * time.Hour, LeafValidity: 30 * 24 * time.Hour})
	leaf, ca := readCert(t, filepath.Join(dir, "auth.pem")), readCert(t, filepath.Join(dir, "ca.pem"))
	if leaf.NotAfter.After(ca.NotAfter) {
		t.Errorf("leaf NotAfter = %v, after the CA's %v", leaf.NotAfter, ca.NotAfter)
	}
}

func TestIssueRotatesOneLeaf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ensure(t, dir, []string{"auth", "gateway"}, pki.Options{})
	auth, gw, ca := serialOf(t, dir, "auth"), serialOf(t, dir, "gateway"), serialOf(t, dir, "ca")
	if err := pki.Issue(dir, "auth", pki.Options{}); err != nil {
		t.Fatalf("Issue(auth) = %v", err)
	}
	if serialOf(t, dir, "auth").Cmp(auth) == 0 {
		t.Error("Issue(auth) kept the old certificate")
	}
	if serialOf(t, dir, "gateway").Cmp(gw) != 0 || serialOf(t, dir, "ca").Cmp(ca) != 0 {
		t.Error("Issue(auth) touched other certificates")
	}
	if err := readCert(t, filepath.Join(dir, "auth.pem")).CheckSignatureFrom(readCert(t, filepath.Join(dir, "ca.pem"))); err != nil {
		t.Errorf("the re-issued leaf does not chain: %v", err)
	}
	if err := pki.Issue(dir, "newcomer", pki.Options{}); err != nil {
		t.Errorf("Issue(newcomer) = %v, want a first certificate", err)
	}
}

func TestIssueRefusesADeadCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ensure(t, dir, []string{"auth"}, pki.Options{})
	for _, at := range []time.Duration{31 * 24 * time.Hour, -time.Hour} {
		now := time.Now().Add(at)
		err := pki.Issue(dir, "auth", pki.Options{Now: func() time.Time { return now }})
		if err == nil {
			t.Errorf("Issue at %+v from now = nil, want an error: the leaf would not chain to a valid CA", at)
		}
	}
	if err := pki.Issue(t.TempDir(), "auth", pki.Options{}); err == nil {
		t.Error("Issue without a CA = nil, want an error")
	}
}

// TestEnsureServing: the public serving certificate chains to the dev CA
// but can only authenticate a server and names no platform identity; a
// platform certificate copied in its place (the mistake that made the
// edge's internal identity its public one) is replaced, a good one kept.
func TestEnsureServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := pki.EnsureServing(dir, "gateway-public", pki.Options{}); err == nil {
		t.Fatal("EnsureServing without a CA = nil, want an error")
	}
	if err := pki.Ensure(dir, []string{"gateway"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	opts := pki.Options{DNSNames: []string{"bank.example.test"}}
	if err := pki.EnsureServing(dir, "gateway-public", opts); err != nil {
		t.Fatalf("EnsureServing = %v", err)
	}
	leaf := readCert(t, filepath.Join(dir, "gateway-public.pem"))
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("serving certificate does not chain to the dev CA: %v", err)
	}
	if !pki.IsServingOnly(leaf) || len(leaf.URIs) != 0 {
		t.Errorf("serving certificate: URIs %v, usages %v; want none and serverAuth only", leaf.URIs, leaf.ExtKeyUsage)
	}
	if !slices.Contains(leaf.DNSNames, "localhost") || !slices.Contains(leaf.DNSNames, "bank.example.test") || len(leaf.IPAddresses) == 0 {
		t.Errorf("serving certificate names %v %v, want localhost, the extra name and the loopback addresses", leaf.DNSNames, leaf.IPAddresses)
	}
	if pki.IsServingOnly(readCert(t, filepath.Join(dir, "gateway.pem"))) {
		t.Error("IsServingOnly(the platform identity) = true, want false")
	}
	// Kept while good.
	before := leaf.SerialNumber
	if err := pki.EnsureServing(dir, "gateway-public", opts); err != nil {
		t.Fatal(err)
	}
	if got := readCert(t, filepath.Join(dir, "gateway-public.pem")).SerialNumber; got.Cmp(before) != 0 {
		t.Errorf("a fresh serving certificate was re-issued")
	}
	// The platform identity copied over it is replaced.
	for _, suffix := range []string{".pem", "-key.pem"} {
		b, err := os.ReadFile(filepath.Join(dir, "gateway"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "gateway-public"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := pki.EnsureServing(dir, "gateway-public", opts); err != nil {
		t.Fatal(err)
	}
	if c := readCert(t, filepath.Join(dir, "gateway-public.pem")); !pki.IsServingOnly(c) {
		t.Errorf("after a platform certificate was copied in: URIs %v usages %v, want a serving-only certificate again", c.URIs, c.ExtKeyUsage)
	}
}
