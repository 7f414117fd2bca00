package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/mtls"
)

// TestPublicPortIsHTTPSOnly: TLS 1.2 at least, TLS 1.3 when the client
// offers it, and no service for plaintext HTTP on the public port.
func TestPublicPortIsHTTPSOnly(t *testing.T) {
	t.Parallel()
	addr := strings.TrimPrefix(bank.base, "https://")
	roots := caPool(t)
	versions := []struct {
		name     string
		min, max uint16
		ok       bool
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, false},
		{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, true},
	}
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MinVersion: v.min, MaxVersion: v.max})
			if conn != nil {
				conn.Close()
			}
			if (err == nil) != v.ok {
				t.Errorf("handshake with %s: %v, want success %v", v.name, err, v.ok)
			}
		})
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().Version; got != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3 when the client offers it", tls.VersionName(got))
	}
	conn.Close()

	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || strings.Contains(string(body), `"status"`) {
			t.Errorf("plaintext GET /healthz = %d %s, want no service", resp.StatusCode, body)
		}
	}
}

// TestServicesRequireMutualTLS: the gRPC services accept no client without
// a certificate from the platform CA, and a platform identity that no rule
// lets call an RPC gets PERMISSION_DENIED, before any handler runs.
func TestServicesRequireMutualTLS(t *testing.T) {
	t.Parallel()
	pki := filepath.Join(bank.dir, "pki")
	platformCert, err := tls.LoadX509KeyPair(filepath.Join(pki, "gateway.pem"), filepath.Join(pki, "gateway-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	clients := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"without a client certificate", nil, false},
		{"with a certificate from another CA", []tls.Certificate{selfSigned(t, "gateway")}, false},
		{"with a platform certificate (the control)", []tls.Certificate{platformCert}, true},
	}
	for name, addr := range bank.services {
		for _, c := range clients {
			t.Run(name+" "+c.name, func(t *testing.T) {
				// The server's own certificate is not what is under test here,
				// so the client does not check it: any failure is the server's.
				cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, Certificates: c.certs}
				if err := handshake(addr, cfg); (err == nil) != c.ok {
					t.Errorf("%s %s: %v, want success %v", name, c.name, err, c.ok)
				}
			})
		}
	}
	calls := []struct {
		self, server, method string
		req, reply           any
	}{
		{"gateway", "transactions", "/bank.transactions.v1.LedgerService/GetBalances",
			&transactionsv1.GetBalancesRequest{AccountIds: []string{randomID}}, &transactionsv1.GetBalancesResponse{}},
		{"transactions", "accounts", "/bank.accounts.v1.AccountsService/GetAccount",
			&accountsv1.GetAccountRequest{AccountId: randomID}, &accountsv1.GetAccountResponse{}},
		{"accounts", "auth", "/bank.auth.v1.AuthService/SetUserRoles",
			&authv1.SetUserRolesRequest{UserId: randomID, Roles: []string{"admin"}}, &authv1.SetUserRolesResponse{}},
	}
	for _, c := range calls {
		t.Run(c.self+" calls "+c.method, func(t *testing.T) {
			src, err := mtls.NewSource(mtls.FilesIn(filepath.Join(bank.dir, "pki"), c.self), "bastion.local")
			if err != nil {
				t.Fatalf("NewSource(%s): %v", c.self, err)
			}
			conn, err := grpc.NewClient(bank.services[c.server], grpc.WithTransportCredentials(src.ClientCredentials(c.server)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err = conn.Invoke(ctx, c.method, c.req, c.reply)
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s calling %s = %v, want PERMISSION_DENIED", c.self, c.method, err)
			}
		})
	}
}

// handshake completes a TLS handshake with addr and reads once, since under
// TLS 1.3 a server refuses a client's certificate only after the client
// thinks the handshake is done.
func handshake(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

func caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(bank.dir, "pki", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in ca.pem")
	}
	return pool
}

// selfSigned makes a client certificate that names a service but chains to
// no CA the platform trusts.
func selfSigned(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames: []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
