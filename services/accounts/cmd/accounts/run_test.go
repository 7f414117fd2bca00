package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger/ledgertest"
)

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
	authAddr := env.Serve(t, "auth", grpctest.NewFakeAuth(env, revokedClaims.ID).RegisterOn)
	fake := domaintest.NewLedger()
	ledgerAddr := env.Serve(t, "transactions", func(g *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(g, &ledgertest.Server{Ledger: fake})
	})
	keyFile := filepath.Join(t.TempDir(), "page-token.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := grpctest.FreeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": migratedDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_ACCOUNTS_ADDR": addr,
		"BANK_TRANSACTIONS_ADDR": ledgerAddr, "BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0",
		"BANK_MAX_ACCOUNTS_PER_USER": "2", "BANK_PAGE_TOKEN_KEY_FILE": keyFile,
		"BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &grpctest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, logs, logs) }()

	conn := env.Dial(t, "gateway", addr, "accounts")
	grpctest.WaitServing(t, conn, done)
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
	waitAuditSealed(t, vars["BANK_DATABASE_URL"], "accounts")

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
	auth := grpctest.NewFakeAuth(env, revokedClaims.ID)
	auth.Down()
	authAddr := env.Serve(t, "auth", auth.RegisterOn)
	ledgerAddr := env.Serve(t, "transactions", func(g *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(g, &ledgertest.Server{Ledger: domaintest.NewLedger()})
	})
	keyFile := filepath.Join(t.TempDir(), "page-token.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := grpctest.FreeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": migratedDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_ACCOUNTS_ADDR": addr,
		"BANK_TRANSACTIONS_ADDR": ledgerAddr, "BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0",
		"BANK_PAGE_TOKEN_KEY_FILE": keyFile, "BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &grpctest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, logs, logs) }()

	conn := env.Dial(t, "gateway", addr, "accounts")
	grpctest.WaitHealth(t, conn, done, grpcserver.LivenessService, healthpb.HealthCheckResponse_SERVING)
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

	auth.Up()
	grpctest.WaitServing(t, conn, done)
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
			var logs grpctest.SyncBuffer
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

// waitAuditSealed waits until the background sealer that run started has
// linked every audit row of schema into the chain, and the chain verifies.
func waitAuditSealed(t *testing.T, dbURL, schema string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	log := audit.New(schema, time.Now)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rep, err := log.Verify(ctx, conn)
		if err != nil {
			t.Fatalf("audit Verify(%s) = %+v, %v", schema, rep, err)
		}
		if rep.Sealed > 0 && rep.Pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit rows of %s not sealed by the service's sealer: %+v", schema, rep)
		}
	}
}
