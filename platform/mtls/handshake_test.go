package mtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/pki"
)

// TestServerConfigRefusesStrangers attacks a service's ServerConfig with
// clients that verify nothing themselves: any refusal is the server's.
func TestServerConfigRefusesStrangers(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway")
	if err := pki.EnsureServing(dir, "gateway-public", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	foreign := newPKI(t, "gateway")
	ca := func(f forged) tls.Certificate { return mint(t, dir, "ca", f) }
	tls12 := attacker(keyPair(t, dir, "gateway"))
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	tests := []struct {
		name   string
		client *tls.Config
		want   string // the service the server must see; "" = refused
	}{
		{"platform client", source(t, dir, "gateway").ClientConfig("auth"), "gateway"},
		{"valid certificate, client checks nothing", attacker(keyPair(t, dir, "gateway")), "gateway"},
		{"no client certificate", attacker(), ""},
		{"certificate from a foreign CA", attacker(keyPair(t, foreign, "gateway")), ""},
		{"TLS 1.2 client", tls12, ""},
		{"no SPIFFE ID", attacker(ca(forged{})), ""},
		{"SPIFFE ID of the trust domain, no service", attacker(ca(forged{uris: []string{"spiffe://bastion.local"}})), ""},
		{"SPIFFE ID of another trust domain", attacker(ca(forged{uris: []string{"spiffe://evil.local/gateway"}})), ""},
		{"two URI SANs", attacker(ca(forged{uris: []string{"spiffe://bastion.local/gateway", "spiffe://bastion.local/auth"}})), ""},
		{"nested SPIFFE path", attacker(ca(forged{uris: []string{"spiffe://bastion.local/gateway/admin"}})), ""},
		{"expired certificate", attacker(ca(forged{uris: []string{"spiffe://bastion.local/gateway"}, notAfter: time.Now().Add(-time.Minute)})), ""},
		{"not yet valid certificate", attacker(ca(forged{uris: []string{"spiffe://bastion.local/gateway"}, notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(2 * time.Hour)})), ""},
		{"server-only certificate", attacker(ca(forged{uris: []string{"spiffe://bastion.local/gateway"}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})), ""},
		{"certificate signed by a leaf", attacker(mint(t, dir, "gateway", forged{uris: []string{"spiffe://bastion.local/accounts"}})), ""},
		{"CA certificate as a client", attacker(ca(forged{uris: []string{"spiffe://bastion.local/gateway"}, isCA: true})), ""},
		// The edge's public certificate, from the same CA, must open no door
		// to a service: whoever steals it from an exposed host is no gateway.
		{"the edge's public serving certificate", attacker(keyPair(t, dir, "gateway-public")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, seen := serve(t, source(t, dir, "auth").ServerConfig())
			got, _, err := call(addr, tt.client)
			server := <-seen
			if tt.want != "" {
				if err != nil || got != tt.want || server.err != nil || server.peer != tt.want {
					t.Errorf("call = %q, %v; server saw %q, %v; want %q both sides", got, err, server.peer, server.err, tt.want)
				}
				return
			}
			if err == nil || server.err == nil {
				t.Errorf("call = %q, %v; server handshake error = %v; want the server to refuse", got, err, server.err)
			}
		})
	}
}

// TestClientConfigRefusesImpostors attacks ClientConfig("auth") with servers
// that accept anyone: any refusal is the client's, and must come from its
// own verification (an errs.Unauthenticated), not from a side effect.
func TestClientConfigRefusesImpostors(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway", "accounts")
	foreign := newPKI(t, "auth")
	ca := func(f forged) tls.Certificate { return mint(t, dir, "ca", f) }
	tls12 := impostor(keyPair(t, dir, "auth"))
	tls12.MaxVersion = tls.VersionTLS12
	tests := []struct {
		name    string
		server  *tls.Config
		ok      bool
		byCheck bool // the refusal must be our verification's
	}{
		{"the service called", source(t, dir, "auth").ServerConfig(), true, false},
		{"the service called, asking any certificate", impostor(keyPair(t, dir, "auth")), true, false},
		{"another platform service", source(t, dir, "accounts").ServerConfig(), false, true},
		{"right SPIFFE ID, foreign CA", impostor(keyPair(t, foreign, "auth")), false, true},
		{"right SPIFFE ID, signed by a leaf", impostor(mint(t, dir, "gateway", forged{uris: []string{"spiffe://bastion.local/auth"}})), false, true},
		{"no SPIFFE ID", impostor(ca(forged{})), false, true},
		{"SPIFFE ID of another trust domain", impostor(ca(forged{uris: []string{"spiffe://evil.local/auth"}})), false, true},
		{"two URI SANs", impostor(ca(forged{uris: []string{"spiffe://bastion.local/auth", "https://auth.example"}})), false, true},
		{"SPIFFE ID with a query", impostor(ca(forged{uris: []string{"spiffe://bastion.local/auth?x=1"}})), false, true},
		{"expired certificate", impostor(ca(forged{uris: []string{"spiffe://bastion.local/auth"}, notAfter: time.Now().Add(-time.Minute)})), false, true},
		{"client-only certificate", impostor(ca(forged{uris: []string{"spiffe://bastion.local/auth"}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})), false, true},
		{"TLS 1.2 server", tls12, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := serve(t, tt.server)
			_, cs, err := call(addr, source(t, dir, "gateway").ClientConfig("auth"))
			if tt.ok {
				if err != nil || cs.Version != tls.VersionTLS13 {
					t.Errorf("call(%s) = %v, version %x; want a TLS 1.3 connection", tt.name, err, cs.Version)
				}
				return
			}
			if err == nil {
				t.Fatalf("call(%s) = nil, want the client to refuse", tt.name)
			}
			if tt.byCheck && errs.KindOf(err) != errs.Unauthenticated {
				t.Errorf("call(%s) = %v, want an Unauthenticated error from the identity check", tt.name, err)
			}
		})
	}
}

// TestPublicServerConfig: TLS 1.2 and 1.3 with AEAD suites only, no client
// certificate. Each refusal is paired with a permissive server that accepts
// the same client, so the test cannot pass because the client is unable.
func TestPublicServerConfig(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "gateway")
	strict, _ := serve(t, source(t, dir, "gateway").PublicServerConfig())
	lax, _ := serve(t, &tls.Config{MinVersion: tls.VersionTLS10, Certificates: []tls.Certificate{keyPair(t, dir, "gateway")}})
	pool := x509.NewCertPool()
	pool.AddCert(keyPair(t, dir, "ca").Leaf)
	client := func(minV, maxV uint16, suites []uint16, protos ...string) *tls.Config {
		return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: minV, MaxVersion: maxV, CipherSuites: suites, NextProtos: protos}
	}
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	tests := []struct {
		name        string
		cfg         *tls.Config
		ok          bool
		wantVersion uint16
		wantProto   string
	}{
		{"TLS 1.3", client(tls.VersionTLS13, tls.VersionTLS13, nil, "h2"), true, tls.VersionTLS13, "h2"},
		{"TLS 1.2", client(tls.VersionTLS12, tls.VersionTLS12, nil, "http/1.1"), true, tls.VersionTLS12, "http/1.1"},
		{"1.3 preferred", client(tls.VersionTLS12, tls.VersionTLS13, nil, "h2", "http/1.1"), true, tls.VersionTLS13, "h2"},
		{"TLS 1.1", client(tls.VersionTLS11, tls.VersionTLS11, nil), false, 0, ""},
		{"TLS 1.0", client(tls.VersionTLS10, tls.VersionTLS10, nil), false, 0, ""},
		{"TLS 1.2 with CBC suites only", client(tls.VersionTLS12, tls.VersionTLS12, cbc), false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			asked := false
			tt.cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = true
				return &tls.Certificate{}, nil
			}
			_, cs, err := call(strict, tt.cfg)
			if !tt.ok {
				if err == nil {
					t.Errorf("call(%s) = nil, want a refusal", tt.name)
				}
				if _, _, err := call(lax, tt.cfg); err != nil {
					t.Fatalf("control: a permissive server refused %s too (%v): the test proves nothing", tt.name, err)
				}
				return
			}
			if err != nil || cs.Version != tt.wantVersion || cs.NegotiatedProtocol != tt.wantProto {
				t.Errorf("call(%s) = %v, version %x, ALPN %q; want version %x, ALPN %q", tt.name, err, cs.Version, cs.NegotiatedProtocol, tt.wantVersion, tt.wantProto)
			}
			if asked {
				t.Errorf("call(%s): the public server asked for a client certificate", tt.name)
			}
		})
	}
}
