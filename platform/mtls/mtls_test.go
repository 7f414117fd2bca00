package mtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/pki"
)

const td = "bastion.local"

func newPKI(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Ensure(dir, names, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func source(t *testing.T, dir, name string) *mtls.Source {
	t.Helper()
	s, err := mtls.NewSource(mtls.FilesIn(dir, name), td)
	if err != nil {
		t.Fatalf("NewSource(%s): %v", name, err)
	}
	return s
}

// serve runs a TLS server that records the caller's identity and echoes it.
func serve(t *testing.T, cfg *tls.Config) string {
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
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					t.Logf("server handshake: %v", err)
					return
				}
				name, err := mtls.ServiceFromState(tc.ConnectionState(), td)
				if err != nil {
					name = "?"
				}
				tc.Write([]byte(name + "\n"))
			}()
		}
	}()
	return l.Addr().String()
}

// call handshakes as cfg and returns the identity the server saw.
func call(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n-1]), nil
}

// leafWithout issues, with the CA in dir, a client certificate that has no SPIFFE ID (or a foreign one).
func writeOddLeaf(t *testing.T, dir, name string, uris []*url.URL, notAfter time.Time) {
	t.Helper()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(keyPEM)
	ca, _ := x509.ParseCertificate(cb.Bytes)
	k, _ := x509.ParsePKCS8PrivateKey(kb.Bytes)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		URIs: uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
}

func TestMutualTLSRefusesStrangers(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway", "accounts")
	foreign := newPKI(t, "gateway")
	writeOddLeaf(t, dir, "nospiffe", nil, time.Now().Add(time.Hour))
	writeOddLeaf(t, dir, "otherdomain", []*url.URL{{Scheme: "spiffe", Host: "evil.local", Path: "/gateway"}}, time.Now().Add(time.Hour))
	writeOddLeaf(t, dir, "expired", []*url.URL{pki.SPIFFEID(td, "expired")}, time.Now().Add(-time.Hour))
	addr := serve(t, source(t, dir, "auth").ServerConfig())

	gw := source(t, dir, "gateway").ClientConfig("auth")
	tls12 := source(t, dir, "gateway").ClientConfig("auth")
	tls12.MaxVersion, tls12.MinVersion = tls.VersionTLS12, tls.VersionTLS12
	noCert := source(t, dir, "gateway").ClientConfig("auth")
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	odd := func(name string) *tls.Config {
		s, err := mtls.NewSource(mtls.FilesIn(dir, name), td)
		if err != nil {
			t.Fatal(err)
		}
		return s.ClientConfig("auth")
	}
	tests := []struct {
		name    string
		cfg     *tls.Config
		want    string
		wantErr bool
	}{
		{"platform peer", gw, "gateway", false},
		{"no client certificate", noCert, "", true},
		{"certificate from a foreign CA", source(t, foreign, "gateway").ClientConfig("auth"), "", true},
		{"TLS 1.2 client", tls12, "", true},
		{"no SPIFFE ID", odd("nospiffe"), "", true},
		{"SPIFFE ID of another trust domain", odd("otherdomain"), "", true},
		{"expired certificate", odd("expired"), "", true},
		{"expects a different server", source(t, dir, "gateway").ClientConfig("accounts"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := call(addr, tt.cfg)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("handshake(%s) = %q, %v; want %q, error %v", tt.name, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestServiceFromPeerOverGRPC(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	seen := make(chan string, 1)
	srv := grpc.NewServer(grpc.Creds(source(t, dir, "auth").ServerCredentials()),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			name, err := mtls.ServiceFromPeer(ctx, td)
			if err != nil {
				name = "error: " + err.Error()
			}
			seen <- name
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(source(t, dir, "gateway").ClientCredentials("auth")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "gateway" {
		t.Errorf("ServiceFromPeer = %q, want gateway", got)
	}
	if _, err := mtls.ServiceFromPeer(context.Background(), td); err == nil {
		t.Error("ServiceFromPeer(no peer) succeeded")
	}
}

func TestPublicServerVersions(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "gateway")
	addr := serve(t, source(t, dir, "gateway").PublicServerConfig())
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool.AppendCertsFromPEM(caPEM)
	for _, tt := range []struct {
		name    string
		version uint16
		ok      bool
	}{{"TLS 1.3", tls.VersionTLS13, true}, {"TLS 1.2", tls.VersionTLS12, true}, {"TLS 1.1", tls.VersionTLS11, false}, {"TLS 1.0", tls.VersionTLS10, false}} {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tt.version, MaxVersion: tt.version})
		if err == nil {
			if got := c.ConnectionState().Version; got != tt.version {
				t.Errorf("%s negotiated %x", tt.name, got)
			}
			c.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s handshake error = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestHotReload: rotating the files on disk changes what new handshakes
// present, with no restart; a half-written rotation keeps the old material.
func TestHotReload(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	var reloadErrs int
	srvSrc := source(t, dir, "auth")
	srvSrc.OnReloadError = func(error) { reloadErrs++ }
	addr := serve(t, srvSrc.ServerConfig())
	serial := func() *big.Int {
		c, err := tls.Dial("tcp", addr, source(t, dir, "gateway").ClientConfig("auth"))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	before := serial()
	time.Sleep(600 * time.Millisecond) // let the file timestamps move on
	if err := pki.Issue(dir, "auth", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	after := serial()
	if before.Cmp(after) == 0 {
		t.Fatal("a new handshake still presents the old certificate after rotation")
	}

	// A whole new CA: both sides reload and still talk.
	os.Remove(filepath.Join(dir, "ca.pem"))
	if err := pki.Ensure(dir, []string{"auth", "gateway"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if got := serial(); got.Cmp(after) == 0 {
		t.Error("CA rotation did not reach the server")
	}

	// A broken key file is refused and the last good material stays in force.
	os.WriteFile(filepath.Join(dir, "auth-key.pem"), []byte("garbage"), 0o600)
	time.Sleep(600 * time.Millisecond)
	serial()
	if reloadErrs == 0 {
		t.Error("a broken reload was not reported")
	}
}

func TestNewSourceRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth")
	if _, err := mtls.NewSource(mtls.FilesIn(dir, "missing"), td); err == nil {
		t.Error("NewSource(missing files) succeeded")
	}
	if _, err := mtls.NewSource(mtls.FilesIn(dir, "auth"), ""); err == nil {
		t.Error("NewSource(no trust domain) succeeded")
	}
	f := mtls.FilesIn(dir, "auth")
	f.CA = filepath.Join(dir, "auth-key.pem")
	if _, err := mtls.NewSource(f, td); err == nil {
		t.Error("NewSource(CA file without a certificate) succeeded")
	}
}
