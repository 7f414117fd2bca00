package mtls_test

import (
	"bufio"
	"crypto"
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
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/pki"
)

const td = "bastion.local"

// newPKI returns a directory holding a fresh dev PKI for names.
func newPKI(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Ensure(dir, names, pki.Options{}); err != nil {
		t.Fatalf("pki.Ensure(%v) = %v", names, err)
	}
	return dir
}

func source(t *testing.T, dir, name string) *mtls.Source {
	t.Helper()
	s, err := mtls.NewSource(mtls.FilesIn(dir, name), td)
	if err != nil {
		t.Fatalf("NewSource(%s) = %v", name, err)
	}
	return s
}

// keyPair loads name's certificate and key from dir as crypto/tls uses them.
func keyPair(t *testing.T, dir, name string) tls.Certificate {
	t.Helper()
	f := mtls.FilesIn(dir, name)
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forged describes a certificate an attacker (or a broken issuer) produces.
type forged struct {
	uris      []string
	notBefore time.Time // default: an hour ago
	notAfter  time.Time // default: in an hour
	usages    []x509.ExtKeyUsage
	isCA      bool
}

// mint signs f with the key of name in dir (the CA, or a leaf acting as
// one) and returns it with the issuer appended, as a chain would be sent.
func mint(t *testing.T, dir, issuer string, f forged) tls.Certificate {
	t.Helper()
	parent := keyPair(t, dir, issuer)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "forged"},
		NotBefore: f.notBefore, NotAfter: f.notAfter, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: f.usages, BasicConstraintsValid: true, IsCA: f.isCA,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	for _, s := range f.uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Leaf, &key.PublicKey, parent.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der, parent.Certificate[0]}, PrivateKey: key, Leaf: leaf}
}

// writeForged stores c as name's files in dir, the way an issuer would.
func writeForged(t *testing.T, dir, name string, c tls.Certificate) {
	t.Helper()
	kd, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	f := mtls.FilesIn(dir, name)
	os.WriteFile(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644)
	os.WriteFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
}

// outcome is what a test server saw of one connection.
type outcome struct {
	peer string // ServiceFromState of the verified client, or "-"
	err  error  // the server's handshake error
}

// serve runs a TLS server on loopback that answers each connection with the
// service name of its verified client ("-" if none) and reports what it saw.
func serve(t *testing.T, cfg *tls.Config) (string, <-chan outcome) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	seen := make(chan outcome, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go answer(tls.Server(c, cfg), seen)
		}
	}()
	return l.Addr().String(), seen
}

func answer(c *tls.Conn, seen chan<- outcome) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var o outcome
	if o.err = c.Handshake(); o.err == nil {
		name, err := mtls.ServiceFromState(c.ConnectionState(), td)
		if err != nil {
			name = "-"
		}
		o.peer = name
		c.Write([]byte(name + "\n"))
	}
	select {
	case seen <- o:
	default:
	}
}

// call handshakes with cfg and returns the server's answer (who the server
// thinks we are) and the connection state. With TLS 1.3 a client only learns
// that the server refused its certificate when it reads, so it always reads.
func call(addr string, cfg *tls.Config) (string, tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", c.ConnectionState(), err
	}
	return strings.TrimSuffix(line, "\n"), c.ConnectionState(), nil
}

// attacker is a client that verifies nothing and presents certs: whatever
// fails with it, the server refused.
func attacker(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: certs, NextProtos: []string{"h2"}}
}

// impostor is a server that presents cert and asks for any client
// certificate: whatever fails with it, the client refused.
func impostor(cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
}

func leafSerial(cs tls.ConnectionState) *big.Int {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0].SerialNumber
}

func fileSerial(t *testing.T, dir, name string) *big.Int {
	t.Helper()
	return keyPair(t, dir, name).Leaf.SerialNumber
}

func wipe(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
