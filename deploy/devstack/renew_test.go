package devstack

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/pki"
)

const trustDomain = "bastion.local"

// at is a pki clock stopped at t.
func at(t time.Time) pki.Options { return pki.Options{Now: func() time.Time { return t }} }

const day = 24 * time.Hour

// TestRenewalDecision: leaves (7 days) are renewed once less than a third
// of their life is left, the CA (30 days) likewise and then with every leaf,
// anything damaged at once, and nothing else.
func TestRenewalDecision(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	leaves := append(slices.Clone(Processes), PublicCert)
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		at     time.Time
		wantCA bool
		want   []string // leaves renewed
	}{
		{"an hour later", nil, t0.Add(time.Hour), false, nil},
		{"4 days later: 3 of 7 days left", nil, t0.Add(4 * day), false, nil},
		{"5 days later: 2 of 7 days left", nil, t0.Add(5 * day), false, leaves},
		{"after expiry", nil, t0.Add(8 * day), false, leaves},
		{"only the leaf that is due", func(t *testing.T, dir string) {
			if err := pki.Issue(filepath.Join(dir, "pki"), "auth", at(t0.Add(2*day))); err != nil {
				t.Fatal(err)
			}
		}, t0.Add(5 * day), false, []string{"transactions", "accounts", "gateway", PublicCert}},
		{"a damaged leaf at once", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "pki", "accounts.pem"), []byte("junk"), 0o644)
		}, t0.Add(time.Hour), false, []string{"accounts"}},
		{"a missing key at once", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "pki", "gateway-key.pem"))
		}, t0.Add(time.Hour), false, []string{"gateway"}},
		{"CA with 9 of 30 days left: everything", nil, t0.Add(21 * day), true, leaves},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Dir: t.TempDir()}
			if got, err := RenewPKI(cfg, at(t0)); err != nil || !sameSet(got, append([]string{"ca"}, leaves...)) {
				t.Fatalf("first RenewPKI = %v, %v; want everything issued", got, err)
			}
			if tt.setup != nil {
				tt.setup(t, cfg.Dir)
			}
			got, err := RenewPKI(cfg, at(tt.at))
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tt.want)
			if tt.wantCA {
				want = append(want, "ca")
			}
			if !sameSet(got, want) {
				t.Errorf("renewed %v, want %v", got, want)
			}
			if again, err := RenewPKI(cfg, at(tt.at)); err != nil || len(again) != 0 {
				t.Errorf("a second RenewPKI at the same time renewed %v (%v), want nothing", again, err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(readCert(t, filepath.Join(cfg.Dir, "pki", "ca.pem")))
			for _, p := range leaves {
				leaf := readCert(t, filepath.Join(cfg.Dir, "pki", p+".pem"))
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: tt.at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
					t.Errorf("%s is not valid under the CA at %v: %v", p, tt.at, err)
				}
			}
		})
	}
}

// TestExportGivesEachProcessOnlyItsOwn: each export directory holds exactly
// the CA certificate and the process's own pair, which load as a platform
// identity; no CA key or other key appears anywhere in the export.
func TestExportGivesEachProcessOnlyItsOwn(t *testing.T) {
	t.Parallel()
	cfg := Config{Dir: t.TempDir(), ExportDir: t.TempDir()}
	if err := PrepareFiles(cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{PageTokenDir: {PageTokenFile}, TOTPKeyDir: {TOTPKeyFile}}
	for _, p := range Processes {
		want[p] = PKIFiles(p)
	}
	got := map[string][]string{}
	err := filepath.WalkDir(cfg.ExportDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == cfg.ExportDir {
			return err
		}
		rel, _ := filepath.Rel(cfg.ExportDir, path)
		info, _ := d.Info()
		if d.IsDir() {
			if info.Mode().Perm() != 0o700 {
				t.Errorf("%s has mode %v, want 0700", rel, info.Mode().Perm())
			}
			return nil
		}
		sub, name := filepath.Split(rel)
		got[filepath.Clean(sub)] = append(got[filepath.Clean(sub)], name)
		if name == "ca-key.pem" {
			t.Errorf("the CA key was exported to %s", rel)
		}
		wantMode := fs.FileMode(0o600)
		if isCertificate(name) {
			wantMode = 0o644
		}
		if info.Mode().Perm() != wantMode {
			t.Errorf("%s has mode %v, want %v", rel, info.Mode().Perm(), wantMode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("export directories = %v, want %v", got, want)
	}
	for dir, files := range want {
		if !sameSet(got[dir], files) {
			t.Errorf("%s holds %v, want exactly %v", dir, got[dir], files)
		}
	}
	for _, p := range Processes {
		if _, err := mtls.NewSource(mtls.FilesIn(filepath.Join(cfg.ExportDir, p), p), trustDomain); err != nil {
			t.Errorf("%s's export does not load as its identity: %v", p, err)
		}
	}
	key, _ := os.ReadFile(filepath.Join(cfg.Dir, "secrets", PageTokenFile))
	if exported, _ := os.ReadFile(filepath.Join(cfg.ExportDir, PageTokenDir, PageTokenFile)); len(key) < 32 || string(exported) != string(key) {
		t.Error("the exported page-token key is not the dev one")
	}
	if written, err := Export(cfg.Dir, cfg.ExportDir); err != nil || len(written) != 0 {
		t.Errorf("a second Export wrote %v (%v), want nothing: unchanged files must not be touched", written, err)
	}
	// A loosened key is tightened again.
	loose := filepath.Join(cfg.ExportDir, "auth", "auth-key.pem")
	os.Chmod(loose, 0o644)
	if written, err := Export(cfg.Dir, cfg.ExportDir); err != nil || !slices.Equal(written, []string{filepath.Join("auth", "auth-key.pem")}) {
		t.Errorf("Export after loosening a key wrote %v (%v)", written, err)
	}
	if info, _ := os.Stat(loose); info.Mode().Perm() != 0o600 {
		t.Errorf("exported key mode %v after Export, want 0600", info.Mode().Perm())
	}
}

// TestRotationThroughTheExportNeverBreaksAHandshake re-issues and exports
// auth's certificate again and again while a reader checks every file and a
// client keeps handshaking with a server that reloads from the export: no
// file is ever seen partial or missing, no handshake fails, and the server
// ends up presenting the last certificate.
func TestRotationThroughTheExportNeverBreaksAHandshake(t *testing.T) {
	t.Parallel()
	cfg := Config{Dir: t.TempDir(), ExportDir: t.TempDir()}
	if err := PrepareFiles(cfg); err != nil {
		t.Fatal(err)
	}
	authDir := filepath.Join(cfg.ExportDir, "auth")
	addr := serveTLS(t, source(t, authDir, "auth").ServerConfig())
	client := source(t, filepath.Join(cfg.ExportDir, "gateway"), "gateway").ClientConfig("auth")

	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	seen := map[string]bool{} // the serials the server presented
	var reads, handshakes atomic.Int64
	report := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, f := range PKIFiles("auth") {
				raw, err := os.ReadFile(filepath.Join(authDir, f))
				if b, _ := pem.Decode(raw); err != nil || b == nil {
					report("partial or missing " + f)
				}
			}
			reads.Add(1)
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			serial, err := handshake(addr, client)
			if err != nil {
				report("handshake: " + err.Error())
			} else {
				mu.Lock()
				seen[serial.String()] = true
				mu.Unlock()
			}
			handshakes.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	// Rotate until the server has reloaded mid-rotation three times (it
	// looks at the files at most every 500 ms), each rotation watched by at
	// least one full read of the files and two handshakes.
	reloads := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) - 1 }
	for deadline := time.Now().Add(time.Minute); reloads() < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("the server reloaded %d times in a minute of rotations, want 3", reloads())
		}
		if err := pki.Issue(filepath.Join(cfg.Dir, "pki"), "auth", pki.Options{}); err != nil {
			t.Fatal(err)
		}
		written, err := Export(cfg.Dir, cfg.ExportDir)
		if err != nil || !sameSet(written, []string{filepath.Join("auth", "auth.pem"), filepath.Join("auth", "auth-key.pem")}) {
			t.Fatalf("Export after re-issuing auth wrote %v (%v), want auth's pair only", written, err)
		}
		r, h := reads.Load(), handshakes.Load()
		waitFor(t, "a read and two handshakes after the export", func() bool { return reads.Load() > r && handshakes.Load() > h+1 })
	}
	close(done)
	wg.Wait()
	if len(problems) > 0 {
		t.Errorf("%d problems during rotation, first: %v", len(problems), problems[:min(5, len(problems))])
	}
	presents(t, addr, client, readCert(t, filepath.Join(authDir, "auth.pem")).SerialNumber)
}

// TestKeepRenewedWhileServing is the dev runner's loop against a stack whose
// leaves are due (issued 5 of 7 days ago): it renews them without being
// asked, reports it, and a server reading the PKI directory presents the
// renewed certificate on its next connection, without a restart.
func TestKeepRenewedWhileServing(t *testing.T) {
	t.Parallel()
	cfg := Config{Dir: t.TempDir()}
	if _, err := RenewPKI(cfg, at(time.Now().Add(-5*day))); err != nil {
		t.Fatal(err)
	}
	pkiDir := filepath.Join(cfg.Dir, "pki")
	addr := serveTLS(t, source(t, pkiDir, "auth").ServerConfig())
	client := source(t, pkiDir, "gateway").ClientConfig("auth")
	before, err := handshake(addr, client)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan []string, 10)
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped })
	// The loop's clock, counted: every pass reads it, so the count shows
	// passes made without a guess at how long they take.
	var clockReads atomic.Int64
	opts := pki.Options{Now: func() time.Time { clockReads.Add(1); return time.Now() }}
	go func() {
		defer close(stopped)
		KeepRenewed(ctx, cfg, 20*time.Millisecond, opts, func(renewed []string, err error) {
			if err != nil {
				t.Errorf("renewal failed: %v", err)
			}
			reports <- renewed
		})
	}()
	var renewed []string
	select {
	case renewed = <-reports:
	case <-time.After(10 * time.Second):
		t.Fatal("KeepRenewed renewed nothing")
	}
	if !sameSet(renewed, append(slices.Clone(Processes), PublicCert)) {
		t.Errorf("renewed %v, want every leaf and not the CA (25 of 30 days left)", renewed)
	}
	// Several more passes: nothing more is due. A pass reads the clock a
	// few times (pki.Ensure, pki.EnsureServing), all of the renewing one
	// before its report, so twenty more reads span several whole passes.
	after := clockReads.Load()
	waitFor(t, "several more passes", func() bool { return clockReads.Load() >= after+20 })
	cancel()
	<-stopped
	if len(reports) != 0 {
		t.Errorf("KeepRenewed reported %v after everything was renewed", <-reports)
	}

	want := readCert(t, filepath.Join(pkiDir, "auth.pem")).SerialNumber
	if want.Cmp(before) == 0 {
		t.Fatalf("auth.pem still holds serial %x after renewal", before)
	}
	presents(t, addr, client, want)
}

// presents waits, up to 10 s, for the server at addr to present the
// certificate with serial want: platform/mtls looks at the files again at
// most every 500 ms, so a new certificate shows on a later handshake.
func presents(t *testing.T, addr string, client *tls.Config, want *big.Int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the server to present serial %x", want), func() bool {
		got, err := handshake(addr, client)
		return err == nil && got.Cmp(want) == 0
	})
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func source(t *testing.T, dir, name string) *mtls.Source {
	t.Helper()
	s, err := mtls.NewSource(mtls.FilesIn(dir, name), trustDomain)
	if err != nil {
		t.Fatalf("mtls.NewSource(%s) = %v", name, err)
	}
	return s
}

// serveTLS accepts connections on loopback with cfg and writes one line
// after each handshake, so a client knows the server accepted it.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte("ok\n"))
			}()
		}
	}()
	return l.Addr().String()
}

// handshake connects with cfg, waits for the server's line (with TLS 1.3 a
// refused client certificate shows only then) and returns the serial of the
// certificate the server presented.
func handshake(addr string, cfg *tls.Config) (*big.Int, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

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

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
