package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/service/servicetest"
)

// The real program, started through run as production starts it, serves
// the API over mTLS, verifies tokens against the auth service's keys and
// revocation feed, moves money, and stops cleanly; started again on the
// same database it answers a retried key with the stored response.
func TestRunServesStopsAndRestarts(t *testing.T) {
	env := grpctest.New(t)
	revokedRaw, revoked, err := env.Signer.Sign(uuid.NewString(), []string{identity.RoleManager})
	if err != nil {
		t.Fatal(err)
	}
	authAddr := env.Serve(t, "auth", grpctest.NewFakeAuth(env, revoked.ID).RegisterOn)
	keyFile := servicetest.PageTokenKeyFile(t)
	addr := grpctest.FreeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": migratedDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_TRANSACTIONS_ADDR": addr,
		"BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0", "BANK_PAGE_TOKEN_KEY_FILE": keyFile,
		"BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
		"BANK_APPROVAL_THRESHOLD": "500", "BANK_MAX_TRANSFER": "1000", "BANK_DAILY_LIMIT": "2000",
	}
	first := servicetest.Start(t, run, vars)
	conn := env.Dial(t, "gateway", addr, "transactions")
	grpctest.WaitServing(t, conn, first.Done)
	api := transactionsv1.NewTransactionsServiceClient(conn)
	ledger := transactionsv1.NewLedgerServiceClient(env.Dial(t, "accounts", addr, "transactions"))

	alice, bob := uuid.NewString(), uuid.NewString()
	a, b := uuid.NewString(), uuid.NewString()
	for acct, owner := range map[string]string{a: alice, b: bob} {
		if _, err := ledger.OpenLedgerAccount(context.Background(), &transactionsv1.OpenLedgerAccountRequest{AccountId: acct, OwnerId: owner, Currency: "EUR"}); err != nil {
			t.Fatalf("OpenLedgerAccount = %v", err)
		}
	}
	boss := grpctest.AsUser(context.Background(), env.Token(t, uuid.NewString(), identity.RoleManager))
	// At the threshold a deposit waits for a second manager.
	dep, err := api.CreateDeposit(boss, &transactionsv1.CreateDepositRequest{AccountId: a, Amount: 1000, Currency: "EUR", Reference: "cash", IdempotencyKey: "d1"})
	if err != nil || dep.GetTransfer().GetStatus() != "PENDING_APPROVAL" || dep.GetTransfer().GetHoldReason() != "amount" {
		t.Fatalf("CreateDeposit = %v, %v, want PENDING_APPROVAL for its amount", dep, err)
	}
	approver := grpctest.AsUser(context.Background(), env.Token(t, uuid.NewString(), identity.RoleManager))
	if _, err := api.ApproveTransfer(approver, &transactionsv1.ApproveTransferRequest{TransferId: dep.GetTransfer().GetId()}); err != nil {
		t.Fatalf("ApproveTransfer(deposit) = %v", err)
	}
	asAlice := grpctest.AsUser(context.Background(), env.Token(t, alice, identity.RoleUser))
	req := &transactionsv1.CreateTransferRequest{FromAccountId: a, ToAccountId: b, Amount: 400, Currency: "EUR", IdempotencyKey: "restart-me"}
	sent, err := api.CreateTransfer(asAlice, req)
	if err != nil || sent.GetTransfer().GetStatus() != "COMPLETED" {
		t.Fatalf("CreateTransfer(400) = %v, %v, want COMPLETED", sent, err)
	}
	// The configured limits are in force.
	over := &transactionsv1.CreateTransferRequest{FromAccountId: a, ToAccountId: b, Amount: 1001, Currency: "EUR", IdempotencyKey: "over"}
	if _, err := api.CreateTransfer(asAlice, over); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("CreateTransfer(over BANK_MAX_TRANSFER) = %v, want FailedPrecondition", err)
	}
	held, err := api.CreateTransfer(asAlice, &transactionsv1.CreateTransferRequest{FromAccountId: a, ToAccountId: b, Amount: 500, Currency: "EUR", IdempotencyKey: "held"})
	if err != nil || held.GetTransfer().GetStatus() != "PENDING_APPROVAL" {
		t.Errorf("CreateTransfer(at BANK_APPROVAL_THRESHOLD) = %v, %v, want PENDING_APPROVAL", held, err)
	}
	_, err = api.GetTransfer(grpctest.AsUser(context.Background(), revokedRaw), &transactionsv1.GetTransferRequest{TransferId: sent.GetTransfer().GetId()})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetTransfer(revoked manager token) = %v, want Unauthenticated", err)
	}
	servicetest.WaitAuditSealed(t, vars["BANK_DATABASE_URL"], "ledger")
	first.Stop(t)
	if out := first.Logs.String(); strings.Contains(out, "random per-process key") || !strings.Contains(out, "revocation list current") {
		t.Errorf("logs lack the expected start-up lines:\n%s", out)
	}

	second := servicetest.Start(t, run, vars)
	defer second.Stop(t)
	conn = env.Dial(t, "gateway", addr, "transactions")
	grpctest.WaitServing(t, conn, second.Done)
	api = transactionsv1.NewTransactionsServiceClient(conn)
	var md metadata.MD
	again, err := api.CreateTransfer(asAlice, req, grpc.Header(&md))
	if err != nil || again.GetTransfer().GetId() != sent.GetTransfer().GetId() || strings.Join(md.Get("idempotent-replayed"), "") != "true" {
		t.Errorf("CreateTransfer(same key after restart) = %v, %v, header %v; want the first transfer replayed", again, err, md)
	}
	// The ledger client's connection saw the first server go; it may still
	// be between reconnect attempts (grpcclient retries at most 3 s apart).
	resp, err := ledger.GetBalances(context.Background(), &transactionsv1.GetBalancesRequest{AccountIds: []string{a, b}}, grpc.WaitForReady(true))
	if err != nil || len(resp.GetBalances()) != 2 {
		t.Fatalf("GetBalances = %v, %v", resp, err)
	}
	for _, bal := range resp.GetBalances() {
		want := map[string][2]int64{a: {600, 500}, b: {400, 0}}[bal.GetAccountId()]
		if bal.GetBalance() != want[0] || bal.GetHeld() != want[1] {
			t.Errorf("balance of %s = %d (held %d), want %d (held %d): money moved once", bal.GetAccountId(), bal.GetBalance(), bal.GetHeld(), want[0], want[1])
		}
	}
}

// While auth cannot be reached at start-up, no user token is accepted, not
// even one revoked before the service started: user calls get UNAVAILABLE
// and health reports NOT_SERVING (liveness SERVING). The accounts service's
// ledger calls carry no user, so no revocation can apply: they go on. Once
// auth's feed is in, the service serves and the revoked token stays refused.
func TestRunFailsClosedUntilRevocationsSync(t *testing.T) {
	env := grpctest.New(t)
	revokedRaw, revoked, err := env.Signer.Sign(uuid.NewString(), []string{identity.RoleManager})
	if err != nil {
		t.Fatal(err)
	}
	auth := grpctest.NewFakeAuth(env, revoked.ID)
	auth.Down()
	authAddr := env.Serve(t, "auth", auth.RegisterOn)
	keyFile := servicetest.PageTokenKeyFile(t)
	addr := grpctest.FreeAddr(t)
	prog := servicetest.Start(t, run, map[string]string{
		"BANK_DATABASE_URL": migratedDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_TRANSACTIONS_ADDR": addr,
		"BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0", "BANK_PAGE_TOKEN_KEY_FILE": keyFile,
		"BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	})
	defer prog.Stop(t)
	conn := env.Dial(t, "gateway", addr, "transactions")
	grpctest.WaitHealth(t, conn, prog.Done, grpcserver.LivenessService, healthpb.HealthCheckResponse_SERVING)
	api := transactionsv1.NewTransactionsServiceClient(conn)
	ledger := transactionsv1.NewLedgerServiceClient(env.Dial(t, "accounts", addr, "transactions"))
	valid := env.Token(t, uuid.NewString(), identity.RoleManager)
	get := func(tok string) error {
		_, err := api.GetTransfer(grpctest.AsUser(context.Background(), tok), &transactionsv1.GetTransferRequest{TransferId: uuid.NewString()})
		return err
	}

	for name, tok := range map[string]string{"revoked": revokedRaw, "valid": valid} {
		err := get(tok)
		// What the service sent, before the client's mapping.
		if st, _ := status.FromError(errors.Unwrap(err)); st.Code() != codes.Unavailable || st.Message() != "service unavailable" {
			t.Errorf("GetTransfer(%s manager token) with auth down = %v, want UNAVAILABLE \"service unavailable\"", name, err)
		}
	}
	if resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil ||
		resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health with auth down = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	if _, err := ledger.OpenLedgerAccount(context.Background(), &transactionsv1.OpenLedgerAccountRequest{
		AccountId: uuid.NewString(), OwnerId: uuid.NewString(), Currency: "EUR"}); err != nil {
		t.Errorf("OpenLedgerAccount (service-only, no user) with auth down = %v, want success", err)
	}

	auth.Up()
	grpctest.WaitServing(t, conn, prog.Done)
	if err := get(valid); status.Code(err) != codes.NotFound {
		t.Errorf("GetTransfer(valid manager token, unknown id) once synced = %v, want NotFound", err)
	}
	if err := get(revokedRaw); status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetTransfer(revoked manager token) once synced = %v, want Unauthenticated", err)
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := "postgres://x@127.0.0.1:1/x"
	servicetest.RejectsBadConfiguration(t, run, []servicetest.BadConfiguration{
		{Name: "everything wrong at once", Vars: map[string]string{
			"BANK_APPROVAL_THRESHOLD": "0", "BANK_MAX_TRANSFER": "-5", "BANK_DAILY_LIMIT": "lots",
			"BANK_TRANSACTIONS_ADDR": "nowhere", "BANK_LOG_LEVEL": "loud", "BANK_IDEMPOTENCY_TTL": "1h",
		}, Want: []string{"BANK_DATABASE_URL", "BANK_APPROVAL_THRESHOLD", "BANK_MAX_TRANSFER", "BANK_DAILY_LIMIT",
			"BANK_TRANSACTIONS_ADDR", "BANK_LOG_LEVEL", "BANK_IDEMPOTENCY_TTL"}},
		{Name: "malformed database URL", Vars: map[string]string{"BANK_DATABASE_URL": "not a url"}, Want: []string{"BANK_DATABASE_URL"}},
		{Name: "short page token key", Vars: map[string]string{
			"BANK_DATABASE_URL": db, "BANK_PAGE_TOKEN_KEY_FILE": short, "BANK_METRICS_ADDR": "127.0.0.1:0",
		}, Want: []string{"BANK_PAGE_TOKEN_KEY_FILE"}},
		{Name: "missing page token key", Vars: map[string]string{
			"BANK_DATABASE_URL": db, "BANK_PAGE_TOKEN_KEY_FILE": short + ".missing", "BANK_METRICS_ADDR": "127.0.0.1:0",
		}, Want: []string{"BANK_PAGE_TOKEN_KEY_FILE"}},
	})
}
