package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublicCertificateIsNotAnIdentity: the edge serves a certificate that
// can only authenticate a server and names no platform identity, and that
// certificate, used as a client certificate, opens no service: its key is
// worth nothing beyond the public port.
func TestPublicCertificateIsNotAnIdentity(t *testing.T) {
	t.Parallel()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(bank.base, "https://"), &tls.Config{RootCAs: caPool(t), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS to the gateway: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if len(leaf.URIs) != 0 || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("the public port serves URIs %v, usages %v; want no identity and server authentication only", leaf.URIs, leaf.ExtKeyUsage)
	}
	dir := filepath.Join(bank.dir, "pki")
	public, err := tls.LoadX509KeyPair(filepath.Join(dir, "gateway-public.pem"), filepath.Join(dir, "gateway-public-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for name, addr := range bank.services {
		cfg := &tls.Config{RootCAs: caPool(t), Certificates: []tls.Certificate{public}, ServerName: name, NextProtos: []string{"h2"},
			InsecureSkipVerify: true} // the server's refusal is under test, not its name
		if err := handshake(addr, cfg); err == nil {
			t.Errorf("%s accepted the edge's public certificate as a client", name)
		}
	}
}
