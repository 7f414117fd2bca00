package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger/ledgertest"
)

// fakeAuth serves the JWKS of the test signer and a revocation feed whose
// snapshot holds the given token ids. If up is set, the feed refuses
// streams (auth unreachable) until up is closed.
type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	authv1.UnimplementedRevocationServiceServer
	env     *grpctest.Env
	revoked []string
	up      chan struct{}
}

func (a *fakeAuth) GetJWKS(context.Context, *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	resp := &authv1.GetJWKSResponse{}
	for _, k := range a.env.Keys.PublicKeys() {
		resp.Keys = append(resp.Keys, &authv1.JWK{Kty: k.Kty, Crv: k.Crv, X: k.X, Kid: k.Kid, Alg: k.Alg, Use: k.Use})
	}
	return resp, nil
}

func (a *fakeAuth) WatchRevocations(_ *authv1.WatchRevocationsRequest, stream grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	if a.up != nil {
		select {
		case <-a.up:
		default:
			return status.Error(codes.Unavailable, "auth is down")
		}
	}
	snap := &authv1.WatchRevocationsResponse{Snapshot: true}
	for _, id := range a.revoked {
		snap.Revocations = append(snap.Revocations, &authv1.Revocation{TokenId: id, ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))})
	}
	if err := stream.Send(snap); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a log sink the service and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The real program, started through run as production starts it, serves
// the API over mTLS, verifies tokens against the auth service's keys,
// honours its revocation feed, keeps the ledger in step, and stops cleanly.
func TestRunServesAndStops(t *testing.T) {
	env := grpctest.New(t)
	revokedID := uuid.NewString()
	revokedRaw, revokedClaims, err := env.Signer.Sign(revokedID, []string{identity.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	auth := &fakeAuth{env: env, revoked: []string{revokedClaims.ID}}
	authAddr := env.Serve(t, "auth", func(g *grpc.Server) {
		authv1.RegisterAuthServiceServer(g, auth)
		authv1.RegisterRevocationServiceServer(g, auth)
	})
	fake := domaintest.NewLedger()
	ledgerAddr := env.Serve(t, "transactions", func(g *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(g, &ledgertest.Server{Ledger: fake})
	})
	keyFile := filepath.Join(t.TempDir(), "page-token.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": pgtest.NewDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_ACCOUNTS_ADDR": addr,
		"BANK_TRANSACTIONS_ADDR": ledgerAddr, "BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0",
		"BANK_MAX_ACCOUNTS_PER_USER": "2", "BANK_PAGE_TOKEN_KEY_FILE": keyFile,
		"BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, logs, logs) }()

	conn := env.Dial(t, "gateway", addr, "accounts")
	waitServing(t, conn, done)
	client := accountsv1.NewAccountsServiceClient(conn)
	userID := uuid.NewString()
	as := grpctest.AsUser(context.Background(), env.Token(t, userID, identity.RoleUser))
	for i := range 3 {
		resp, err := client.OpenAccount(as, &accountsv1.OpenAccountRequest{Currency: "GBP"})
		switch {
		case i < 2 && err != nil:
			t.Fatalf("OpenAccount(#%d) error = %v", i+1, err)
		case i < 2:
			if la, ok := fake.Account(resp.GetAccount().GetId()); !ok || la.OwnerID != userID {
				t.Errorf("ledger account for #%d = %+v, %v; want it opened for %s", i+1, la, ok, userID)
			}
		case errs.KindOf(err) != errs.Refused:
			t.Errorf("OpenAccount(#3 with BANK_MAX_ACCOUNTS_PER_USER=2) error = %v, want Refused", err)
		}
	}
	_, err = client.ListAccounts(grpctest.AsUser(context.Background(), revokedRaw), &accountsv1.ListAccountsRequest{})
	if errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("ListAccounts(revoked token) error = %v, want Unauthenticated", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run() did not return after its context was cancelled")
	}
	if out := logs.String(); strings.Contains(out, "random per-process key") || !strings.Contains(out, "revocation list current") {
		t.Errorf("logs lack the expected start-up lines:\n%s", out)
	}
}

// While auth cannot be reached at start-up, the service accepts no user
// token, not even one revoked before it started (the case that matters: its
// list of revocations is empty), answers UNAVAILABLE and reports
// NOT_SERVING, without being restarted by a liveness probe; once auth's feed
// is in, it serves and the revoked token stays refused.
func TestRunFailsClosedUntilRevocationsSync(t *testing.T) {
	env := grpctest.New(t)
	revokedRaw, revokedClaims, err := env.Signer.Sign(uuid.NewString(), []string{identity.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	auth := &fakeAuth{env: env, revoked: []string{revokedClaims.ID}, up: make(chan struct{})}
	authAddr := env.Serve(t, "auth", func(g *grpc.Server) {
		authv1.RegisterAuthServiceServer(g, auth)
		authv1.RegisterRevocationServiceServer(g, auth)
	})
	ledgerAddr := env.Serve(t, "transactions", func(g *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(g, &ledgertest.Server{Ledger: domaintest.NewLedger()})
	})
	keyFile := filepath.Join(t.TempDir(), "page-token.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": pgtest.NewDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_ACCOUNTS_ADDR": addr,
		"BANK_TRANSACTIONS_ADDR": ledgerAddr, "BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0",
		"BANK_PAGE_TOKEN_KEY_FILE": keyFile, "BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, logs, logs) }()

	conn := env.Dial(t, "gateway", addr, "accounts")
	waitHealth(t, conn, done, grpcserver.LivenessService, healthpb.HealthCheckResponse_SERVING)
	client := accountsv1.NewAccountsServiceClient(conn)
	valid := env.Token(t, uuid.NewString(), identity.RoleUser)
	// Long enough for the old code's 10 s "serve anyway" wait to have run out.
	for end := time.Now().Add(11 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		for name, tok := range map[string]string{"revoked": revokedRaw, "valid": valid} {
			_, err := client.ListAccounts(grpctest.AsUser(context.Background(), tok), &accountsv1.ListAccountsRequest{})
			if st, _ := status.FromError(errors.Unwrap(err)); st.Code() != codes.Unavailable || st.Message() != "service unavailable" {
				t.Fatalf("ListAccounts(%s token) with auth down = %v, want UNAVAILABLE \"service unavailable\"", name, err)
			}
		}
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("health with auth down = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
		}
	}

	close(auth.up)
	waitServing(t, conn, done)
	if _, err := client.ListAccounts(grpctest.AsUser(context.Background(), valid), &accountsv1.ListAccountsRequest{}); err != nil {
		t.Errorf("ListAccounts(valid token) once synced = %v, want success", err)
	}
	_, err = client.ListAccounts(grpctest.AsUser(context.Background(), revokedRaw), &accountsv1.ListAccountsRequest{})
	if errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("ListAccounts(revoked token) once synced = %v, want Unauthenticated", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run() after cancel = %v, want nil", err)
	}
	if out := logs.String(); !strings.Contains(out, "refusing user calls with UNAVAILABLE") || !strings.Contains(out, "revocation list current") {
		t.Errorf("logs do not show the refusal and the recovery:\n%s", out)
	}
}

// waitServing polls the health service until it reports SERVING, failing
// if run returns first.
func waitServing(t *testing.T, conn *grpc.ClientConn, done <-chan error) {
	t.Helper()
	waitHealth(t, conn, done, "", healthpb.HealthCheckResponse_SERVING)
}

// waitHealth polls the health service until svc reports want, failing if
// run returns first.
func waitHealth(t *testing.T, conn *grpc.ClientConn, done <-chan error, svc string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run() returned before serving: %v", err)
		default:
		}
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err == nil && resp.GetStatus() == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("health %q never reported %v", svc, want)
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"everything wrong at once", map[string]string{
			"BANK_MAX_ACCOUNTS_PER_USER": "0", "BANK_ACCOUNTS_ADDR": "nowhere", "BANK_LOG_LEVEL": "loud",
		}, []string{"BANK_DATABASE_URL", "BANK_MAX_ACCOUNTS_PER_USER", "BANK_ACCOUNTS_ADDR", "BANK_LOG_LEVEL"}},
		{"malformed database URL", map[string]string{"BANK_DATABASE_URL": "not a url"}, []string{"BANK_DATABASE_URL"}},
		{"short page token key", map[string]string{
			"BANK_DATABASE_URL": "postgres://x@127.0.0.1:1/x", "BANK_PAGE_TOKEN_KEY_FILE": short, "BANK_METRICS_ADDR": "127.0.0.1:0",
		}, []string{"BANK_PAGE_TOKEN_KEY_FILE"}},
		{"missing page token key", map[string]string{
			"BANK_DATABASE_URL": "postgres://x@127.0.0.1:1/x", "BANK_PAGE_TOKEN_KEY_FILE": short + ".missing", "BANK_METRICS_ADDR": "127.0.0.1:0",
		}, []string{"BANK_PAGE_TOKEN_KEY_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			err := run(context.Background(), nil, func(k string) string { return tt.vars[k] }, &logs, &logs)
			if err == nil {
				t.Fatalf("run(%v) = nil, want an error", tt.vars)
			}
			for _, key := range tt.want {
				if !strings.Contains(err.Error(), key) {
					t.Errorf("run(%v) error = %q, want it to name %s", tt.vars, err, key)
				}
			}
		})
	}
}
