package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

// TestPublicSourcePrefersConfiguredFiles: BANK_TLS_CERT_FILE replaces the
// platform certificate on the public port.
func TestPublicSourcePrefersConfiguredFiles(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	platform := env.Source(t, "gateway")
	s := settings{TrustDomain: grpctest.TrustDomain,
		TLSCertFile: filepath.Join(env.PKIDir, "auth.pem"), TLSKeyFile: filepath.Join(env.PKIDir, "auth-key.pem")}
	src, err := publicSource(s, platform, logger)
	if err != nil {
		t.Fatalf("publicSource: %v", err)
	}
	if name := leafName(t, src); name != "auth" {
		t.Errorf("public certificate CN/SAN = %q, want the configured auth.pem", name)
	}
	same, err := publicSource(settings{}, platform, logger)
	if err != nil || same != platform {
		t.Errorf("publicSource without files = %v, %v; want the platform source", same, err)
	}
	if _, err := publicSource(settings{TLSCertFile: "/nonexistent.pem", TLSKeyFile: "/nonexistent-key.pem"}, platform, logger); err == nil {
		t.Errorf("publicSource(missing files) = nil error")
	}
}

func leafName(t *testing.T, src *mtls.Source) string {
	t.Helper()
	cert, err := src.PublicServerConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range leaf.DNSNames {
		if n != "localhost" {
			return n
		}
	}
	return leaf.Subject.CommonName
}
