package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pki"
)

const userID = "0b6f3c1e-8a43-4c55-9d5c-2f1e7a9b0c01"

// authStub is the fake auth service (keys and revocation feed) plus GetMe,
// so the test can use a real route.
type authStub struct{ *grpctest.FakeAuth }

func (authStub) GetMe(ctx context.Context, _ *authv1.GetMeRequest) (*authv1.GetMeResponse, error) {
	u, ok := identity.UserFrom(ctx)
	if !ok {
		return nil, errs.New(errs.Unauthenticated, "authentication required")
	}
	return &authv1.GetMeResponse{User: &authv1.User{Id: u.ID, Roles: u.Roles}}, nil
}

// TestRunServesAndFollowsRevocations starts the real program through run
// against stub services with the real platform chain, waits for /readyz,
// calls a route, then revokes the token at auth and expects the gateway
// to refuse it within a second.
func TestRunServesAndFollowsRevocations(t *testing.T) {
	env := grpctest.New(t)
	if err := pki.EnsureServing(env.PKIDir, PublicCertName, pki.Options{TrustDomain: grpctest.TrustDomain}); err != nil {
		t.Fatal(err)
	}
	auth := authStub{grpctest.NewFakeAuth(env)}
	authAddr := env.Serve(t, "auth", func(s *grpc.Server) {
		authv1.RegisterAuthServiceServer(s, auth)
		authv1.RegisterRevocationServiceServer(s, auth)
	})
	healthOnly := func(*grpc.Server) {}
	vars := map[string]string{
		"BANK_GATEWAY_ADDR":      grpctest.FreeAddr(t),
		"BANK_METRICS_ADDR":      grpctest.FreeAddr(t),
		"BANK_AUTH_ADDR":         authAddr,
		"BANK_ACCOUNTS_ADDR":     env.Serve(t, "accounts", healthOnly),
		"BANK_TRANSACTIONS_ADDR": env.Serve(t, "transactions", healthOnly),
		"BANK_PKI_DIR":           env.PKIDir,
		"BANK_TRUST_DOMAIN":      grpctest.TrustDomain,
		"BANK_TOKEN_ISSUER":      grpctest.Issuer,
		"BANK_TOKEN_AUDIENCE":    grpctest.Audience,
		"BANK_LOG_LEVEL":         "warn",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs grpctest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"gateway"}, func(k string) string { return vars[k] }, io.Discard, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run = %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run did not return after cancel")
		}
	})
	client := httpsClient(t, env.PKIDir)
	base := "https://" + vars["BANK_GATEWAY_ADDR"]
	waitReady(t, client, base+"/readyz", done)

	raw, claims, err := env.Signer.Sign(userID, []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	if code := getMe(t, client, base, raw); code != http.StatusOK {
		t.Fatalf("GET /v1/users/me = %d, want 200 (logs: %s)", code, logs.String())
	}
	auth.Revoke(claims.ID, claims.ExpiresAt.Time)
	deadline := time.Now().Add(time.Second)
	for getMe(t, client, base, raw) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still accepted after 1 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	metrics := get(t, http.DefaultClient, "http://"+vars["BANK_METRICS_ADDR"]+"/metrics")
	if !strings.Contains(metrics, `bank_token_rejections_total{reason="revoked"`) {
		t.Errorf("metrics lack the revoked-token counter")
	}
	if strings.Contains(logs.String(), raw) {
		t.Errorf("logs contain the access token")
	}
}

func TestRunReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"BANK_GATEWAY_ADDR":     "nonsense",
		"BANK_RATE_LIMIT_AUTH":  "0",
		"BANK_TRUSTED_PROXIES":  "0.0.0.0/0",
		"BANK_CORS_ORIGINS":     "*",
		"BANK_UPSTREAM_TIMEOUT": "-1s",
		"BANK_TLS_CERT_FILE":    "/tmp/cert.pem",
		// A wait longer than a second is the queue the bound is there to prevent.
		"BANK_GATEWAY_ADMISSION_WAIT": "2s",
		"BANK_GATEWAY_MAX_IN_FLIGHT":  "0",
	}
	err := run(t.Context(), nil, func(k string) string { return vars[k] }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("run with bad configuration = nil")
	}
	for k := range vars {
		want := k
		if k == "BANK_TLS_CERT_FILE" {
			want = "BANK_TLS_KEY_FILE"
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8::/32", "2001:db8::/32"},
	}
	for _, tc := range tests {
		got, err := parsePrefix(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("parsePrefix(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := parsePrefix("not-an-ip"); err == nil {
		t.Errorf("parsePrefix(not-an-ip) = nil error")
	}
}

func httpsClient(t *testing.T, pkiDir string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(pkiDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func waitReady(t *testing.T, c *http.Client, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run returned before ready: %v", err)
		default:
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 10 s", url)
}

func getMe(t *testing.T, c *http.Client, base, raw string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
