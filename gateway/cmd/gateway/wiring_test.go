package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"github.com/bastion-bank/bastion/platform/pki"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// TestLimiterIsSharedThroughRedis uses the local Redis: two gateway
// replicas (two limiters) draw on one budget.
func TestLimiterIsSharedThroughRedis(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := settings{RedisURL: "redis://127.0.0.1:6379/0"}
	a, closeA, err := newLimiter(s, logger)
	if err != nil {
		t.Fatalf("newLimiter: %v", err)
	}
	defer closeA()
	b, closeB, err := newLimiter(s, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeB()
	lim := ratelimit.Limit{Name: "gwtest-" + time.Now().Format("150405.000000000"), Rate: 2, Period: time.Hour}
	var allowed int
	for i := range 4 {
		l := a
		if i%2 == 1 {
			l = b
		}
		res, err := l.Allow(context.Background(), "ip:192.0.2.1", lim)
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("two replicas allowed %d of 4 requests, want the shared budget of 2", allowed)
	}
}

// TestLimiterSurvivesARedisOutage: with Redis unreachable the gateway still
// limits (locally) instead of opening the gate or refusing everyone.
func TestLimiterSurvivesARedisOutage(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, closeL, err := newLimiter(settings{RedisURL: "redis://127.0.0.1:1/0"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeL()
	lim := ratelimit.Limit{Name: "outage", Rate: 2, Period: time.Hour}
	var got []bool
	for range 3 {
		res, err := l.Allow(context.Background(), "ip:192.0.2.1", lim)
		if err != nil {
			t.Fatalf("Allow during outage: %v", err)
		}
		got = append(got, res.Allowed)
	}
	if got[0] != true || got[1] != true || got[2] != false {
		t.Errorf("during a Redis outage Allow = %v, want [true true false]", got)
	}
	if _, _, err := newLimiter(settings{RedisURL: "http://not-redis"}, logger); err == nil {
		t.Errorf("newLimiter(http URL) = nil error")
	}
}

// TestPublicSourceIsNeverThePlatformIdentity: the edge serves the dev
// PKI's public certificate by default, or BANK_TLS_CERT_FILE, and refuses to
// start with any certificate that names a platform identity (the gateway's
// own, whose key would let its holder call auth as the gateway).
func TestPublicSourceIsNeverThePlatformIdentity(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := pki.EnsureServing(env.PKIDir, PublicCertName, pki.Options{TrustDomain: grpctest.TrustDomain}); err != nil {
		t.Fatal(err)
	}
	pair := func(name string) settings {
		return settings{TrustDomain: grpctest.TrustDomain, PKIDir: env.PKIDir,
			TLSCertFile: filepath.Join(env.PKIDir, name+".pem"), TLSKeyFile: filepath.Join(env.PKIDir, name+"-key.pem")}
	}
	src, err := publicSource(settings{TrustDomain: grpctest.TrustDomain, PKIDir: env.PKIDir}, logger)
	if err != nil {
		t.Fatalf("publicSource(default) = %v", err)
	}
	if leaf := leafCert(t, src); len(leaf.URIs) != 0 || !pki.IsServingOnly(leaf) {
		t.Errorf("default public certificate: URIs %v usages %v, want the serving-only certificate", leaf.URIs, leaf.ExtKeyUsage)
	}
	if src, err := publicSource(pair(PublicCertName), logger); err != nil || !pki.IsServingOnly(leafCert(t, src)) {
		t.Errorf("publicSource(configured serving certificate) = %v", err)
	}
	for _, name := range []string{"gateway", "auth"} {
		if _, err := publicSource(pair(name), logger); err == nil {
			t.Errorf("publicSource(%s.pem, a platform identity) = nil error, want a refusal", name)
		}
	}
	if _, err := publicSource(settings{TrustDomain: grpctest.TrustDomain, PKIDir: t.TempDir()}, logger); err == nil {
		t.Errorf("publicSource(no public certificate in the PKI) = nil error")
	}
	if _, err := publicSource(settings{TrustDomain: grpctest.TrustDomain, TLSCertFile: "/nonexistent.pem", TLSKeyFile: "/nonexistent-key.pem"}, logger); err == nil {
		t.Errorf("publicSource(missing files) = nil error")
	}
}

func leafCert(t *testing.T, src *mtls.Source) *x509.Certificate {
	t.Helper()
	cert, err := src.PublicServerConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
