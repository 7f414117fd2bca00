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
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/service/servicetest"
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
	keyFile := servicetest.PageTokenKeyFile(t)
	addr := grpctest.FreeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": migratedDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_ACCOUNTS_ADDR": addr,
		"BANK_TRANSACTIONS_ADDR": ledgerAddr, "BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0",
		"BANK_MAX_ACCOUNTS_PER_USER": "2", "BANK_PAGE_TOKEN_KEY_FILE": keyFile,
		"BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	}
	prog := servicetest.Start(t, run, vars)

	conn := env.Dial(t, "gateway", addr, "accounts")
	grpctest.WaitServing(t, conn, prog.Done)
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
	servicetest.WaitAuditSealed(t, vars["BANK_DATABASE_URL"], "accounts")

	prog.Stop(t)
	if out := prog.Logs.String(); strings.Contains(out, "random per-process key") || !strings.Contains(out, "revocation list current") {
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
	keyFile := servicetest.PageTokenKeyFile(t)
	addr := grpctest.FreeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": migratedDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_ACCOUNTS_ADDR": addr,
		"BANK_TRANSACTIONS_ADDR": ledgerAddr, "BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0",
		"BANK_PAGE_TOKEN_KEY_FILE": keyFile, "BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	}
	prog := servicetest.Start(t, run, vars)

	conn := env.Dial(t, "gateway", addr, "accounts")
	grpctest.WaitHealth(t, conn, prog.Done, grpcserver.LivenessService, healthpb.HealthCheckResponse_SERVING)
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
	grpctest.WaitServing(t, conn, prog.Done)
	if _, err := client.ListAccounts(grpctest.AsUser(context.Background(), valid), &accountsv1.ListAccountsRequest{}); err != nil {
		t.Errorf("ListAccounts(valid token) once synced = %v, want success", err)
	}
	_, err = client.ListAccounts(grpctest.AsUser(context.Background(), revokedRaw), &accountsv1.ListAccountsRequest{})
	if errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("ListAccounts(revoked token) once synced = %v, want Unauthenticated", err)
	}
	prog.Stop(t)
	if out := prog.Logs.String(); !strings.Contains(out, "refusing user calls with UNAVAILABLE") || !strings.Contains(out, "revocation list current") {
		t.Errorf("logs do not show the refusal and the recovery:\n%s", out)
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	servicetest.RejectsBadConfiguration(t, run, []servicetest.BadConfiguration{
		{Name: "everything wrong at once", Vars: map[string]string{
			"BANK_MAX_ACCOUNTS_PER_USER": "0", "BANK_ACCOUNTS_ADDR": "nowhere", "BANK_LOG_LEVEL": "loud",
		}, Want: []string{"BANK_DATABASE_URL", "BANK_MAX_ACCOUNTS_PER_USER", "BANK_ACCOUNTS_ADDR", "BANK_LOG_LEVEL"}},
		{Name: "malformed database URL", Vars: map[string]string{"BANK_DATABASE_URL": "not a url"}, Want: []string{"BANK_DATABASE_URL"}},
		{Name: "short page token key", Vars: map[string]string{
			"BANK_DATABASE_URL": "postgres://x@127.0.0.1:1/x", "BANK_PAGE_TOKEN_KEY_FILE": short, "BANK_METRICS_ADDR": "127.0.0.1:0",
		}, Want: []string{"BANK_PAGE_TOKEN_KEY_FILE"}},
		{Name: "missing page token key", Vars: map[string]string{
			"BANK_DATABASE_URL": "postgres://x@127.0.0.1:1/x", "BANK_PAGE_TOKEN_KEY_FILE": short + ".missing", "BANK_METRICS_ADDR": "127.0.0.1:0",
		}, Want: []string{"BANK_PAGE_TOKEN_KEY_FILE"}},
	})
}
