package mtls_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/pki"
)

// settle makes the next handshake through each source look at the files
// again, as it would once the recheck interval had passed.
func settle(sources ...*mtls.Source) {
	for _, s := range sources {
		s.ExpireRecheck()
	}
}

// TestReloadLeaf: after pki.Issue re-issues the server's certificate, new
// handshakes present the new one; the server is never restarted.
func TestReloadLeaf(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	srv, cli := source(t, dir, "auth"), source(t, dir, "gateway")
	addr, _ := serve(t, srv.ServerConfig())
	client := cli.ClientConfig("auth")
	_, cs, err := call(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	before := leafSerial(cs)
	if before.Cmp(fileSerial(t, dir, "auth")) != 0 {
		t.Fatalf("the server presents serial %x, not the one on disk", before)
	}
	if err := pki.Issue(dir, "auth", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	settle(srv, cli)
	name, cs, err := call(addr, client)
	if err != nil || name != "gateway" {
		t.Fatalf("call after rotation = %q, %v; want gateway", name, err)
	}
	if got, want := leafSerial(cs), fileSerial(t, dir, "auth"); got.Cmp(want) != 0 || got.Cmp(before) == 0 {
		t.Errorf("after rotation the server presents serial %x, want the new %x (old %x)", got, want, before)
	}
}

// TestReloadCA: a whole new PKI (Ensure on a wiped directory) reaches both
// sides without a restart, and material of the old CA is refused from then on.
func TestReloadCA(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	oldServer, oldClient := keyPair(t, dir, "auth"), keyPair(t, dir, "gateway")
	var reloadErrs atomic.Int32
	srv, cli := source(t, dir, "auth"), source(t, dir, "gateway")
	srv.OnReloadError = func(error) { reloadErrs.Add(1) }
	addr, _ := serve(t, srv.ServerConfig())
	if _, _, err := call(addr, cli.ClientConfig("auth")); err != nil {
		t.Fatal(err)
	}
	wipe(t, dir)
	if err := pki.Ensure(dir, []string{"auth", "gateway"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	settle(srv, cli)
	name, cs, err := call(addr, cli.ClientConfig("auth"))
	if err != nil || name != "gateway" {
		t.Fatalf("call after CA rotation = %q, %v; want gateway", name, err)
	}
	if got, want := leafSerial(cs), fileSerial(t, dir, "auth"); got.Cmp(want) != 0 {
		t.Errorf("after CA rotation the server presents serial %x, want %x", got, want)
	}
	if _, _, err := call(addr, attacker(oldClient)); err == nil {
		t.Error("the server still accepts a client certificate of the old CA")
	}
	oldAddr, _ := serve(t, impostor(oldServer))
	if _, _, err := call(oldAddr, cli.ClientConfig("auth")); errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("call to a server of the old CA = %v, want an Unauthenticated refusal", err)
	}
	if n := reloadErrs.Load(); n != 0 {
		t.Errorf("a clean rotation reported %d reload errors", n)
	}
}

// TestFailedReloadKeepsLastGood: a broken key on disk is reported once and
// the old certificate stays in force; the next good rotation is picked up.
func TestFailedReloadKeepsLastGood(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	var reloadErrs atomic.Int32
	srv := source(t, dir, "auth")
	srv.OnReloadError = func(error) { reloadErrs.Add(1) }
	addr, _ := serve(t, srv.ServerConfig())
	client := source(t, dir, "gateway").ClientConfig("auth")
	good := fileSerial(t, dir, "auth")
	if err := os.WriteFile(filepath.Join(dir, "auth-key.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		settle(srv)
		name, cs, err := call(addr, client)
		if err != nil || name != "gateway" || leafSerial(cs).Cmp(good) != 0 {
			t.Fatalf("call %d with a broken key on disk = %q, %v, serial %x; want the old certificate %x in force", i, name, err, leafSerial(cs), good)
		}
	}
	if n := reloadErrs.Load(); n != 1 {
		t.Errorf("a broken key was reported %d times over two handshakes, want once", n)
	}
	if err := pki.Issue(dir, "auth", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	settle(srv)
	_, cs, err := call(addr, client)
	if got, want := leafSerial(cs), fileSerial(t, dir, "auth"); err != nil || got.Cmp(want) != 0 {
		t.Errorf("call after the repair = %v, serial %x; want the new %x", err, got, want)
	}
	if n := reloadErrs.Load(); n != 1 {
		t.Errorf("reload errors after the repair = %d, want still 1", n)
	}
}

// TestNewSourceRefusesBadMaterial: a process must not start with files that
// cannot work; each case is one way they can be wrong.
func TestNewSourceRefusesBadMaterial(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	foreign := newPKI(t, "auth")
	writeForged(t, dir, "nospiffe", mint(t, dir, "ca", forged{}))
	writeForged(t, dir, "expired", mint(t, dir, "ca", forged{uris: []string{"spiffe://bastion.local/expired"}, notAfter: time.Now().Add(-time.Minute)}))
	noCA := mtls.Files{Cert: filepath.Join(dir, "nospiffe.pem"), Key: filepath.Join(dir, "nospiffe-key.pem")}
	with := func(change func(*mtls.Files)) mtls.Files {
		f := mtls.FilesIn(dir, "auth")
		change(&f)
		return f
	}
	tests := []struct {
		name  string
		files mtls.Files
		td    string
	}{
		{"missing files", mtls.FilesIn(dir, "missing"), td},
		{"missing CA", with(func(f *mtls.Files) { f.CA = filepath.Join(dir, "nope.pem") }), td},
		{"no trust domain", mtls.FilesIn(dir, "auth"), ""},
		{"trust domain with a path", mtls.FilesIn(dir, "auth"), "bastion.local/auth"},
		// Without a CA nothing later reads the trust domain: only the first
		// check stands between a bad one and a source that names it.
		{"no trust domain, no CA", noCA, ""},
		{"trust domain with a path, no CA", noCA, "bastion.local/auth"},
		{"CA file holds no certificate", with(func(f *mtls.Files) { f.CA = f.Key }), td},
		{"key of another certificate", with(func(f *mtls.Files) { f.Key = filepath.Join(dir, "gateway-key.pem") }), td},
		{"leaf of a foreign CA", with(func(f *mtls.Files) {
			f.Cert, f.Key = filepath.Join(foreign, "auth.pem"), filepath.Join(foreign, "auth-key.pem")
		}), td},
		{"leaf of another trust domain", mtls.FilesIn(dir, "auth"), "other.local"},
		{"leaf without SPIFFE ID", mtls.FilesIn(dir, "nospiffe"), td},
		{"expired leaf", mtls.FilesIn(dir, "expired"), td},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if s, err := mtls.NewSource(tt.files, tt.td); err == nil || s != nil {
				t.Errorf("NewSource(%s) = %v, %v; want an error", tt.name, s, err)
			}
		})
	}
}

// TestPublicOnlySource: a certificate without the platform CA (a public
// one) serves PublicServerConfig, but the mutual-TLS configurations refuse
// every peer rather than trust without a CA.
func TestPublicOnlySource(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	writeForged(t, dir, "public", mint(t, dir, "ca", forged{}))
	pub, err := mtls.NewSource(mtls.Files{Cert: filepath.Join(dir, "public.pem"), Key: filepath.Join(dir, "public-key.pem")}, td)
	if err != nil {
		t.Fatalf("NewSource(public certificate, no CA) = %v", err)
	}
	if got := pub.TrustDomain(); got != td {
		t.Errorf("TrustDomain() = %q, want %q", got, td)
	}
	addr, _ := serve(t, pub.PublicServerConfig())
	if _, _, err := call(addr, &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Errorf("public handshake = %v, want success", err)
	}
	mtlsAddr, _ := serve(t, pub.ServerConfig())
	if _, _, err := call(mtlsAddr, source(t, dir, "gateway").ClientConfig("auth")); err == nil {
		t.Error("ServerConfig without a CA accepted a client")
	}
	authAddr, _ := serve(t, source(t, dir, "auth").ServerConfig())
	if _, _, err := call(authAddr, pub.ClientConfig("auth")); err == nil {
		t.Error("ClientConfig without a CA accepted a server")
	}
}

// TestLogReloadErrors: a broken rotation reaches the log once, at error
// level, in the words the certificate runbook tells operators to look for.
func TestLogReloadErrors(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	logged := make(records, 10)
	srv := source(t, dir, "auth")
	srv.LogReloadErrors(slog.New(logged), "platform certificate")
	addr, _ := serve(t, srv.ServerConfig())
	client := source(t, dir, "gateway").ClientConfig("auth")
	if err := os.WriteFile(filepath.Join(dir, "auth-key.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		settle(srv)
		if _, _, err := call(addr, client); err != nil {
			t.Fatalf("call with a broken key on disk = %v, want the old certificate in force", err)
		}
	}
	close(logged)
	var got []string
	for r := range logged {
		var cause string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				cause = a.Value.String()
			}
			return true
		})
		if r.Level != slog.LevelError || cause == "" {
			t.Errorf("logged %v %q with error %q, want an error-level line that says why", r.Level, r.Message, cause)
		}
		got = append(got, r.Message)
	}
	if want := []string{"platform certificate reload failed; keeping the old one"}; !slices.Equal(got, want) {
		t.Errorf("logged %q after two handshakes on a broken key, want %q", got, want)
	}
}

// records is a slog handler that hands each record to the test.
type records chan slog.Record

func (r records) Enabled(context.Context, slog.Level) bool { return true }

func (r records) Handle(_ context.Context, rec slog.Record) error {
	r <- rec.Clone()
	return nil
}

func (r records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r records) WithGroup(string) slog.Handler      { return r }
