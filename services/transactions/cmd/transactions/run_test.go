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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
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

// started is one run of the real program.
type started struct {
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

func start(t *testing.T, vars map[string]string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	go func() { s.done <- run(ctx, nil, func(k string) string { return vars[k] }, s.logs, s.logs) }()
	return s
}

func (s *started) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run() did not return after its context was cancelled")
	}
}

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
	auth := &fakeAuth{env: env, revoked: []string{revoked.ID}}
	authAddr := env.Serve(t, "auth", func(g *grpc.Server) {
		authv1.RegisterAuthServiceServer(g, auth)
		authv1.RegisterRevocationServiceServer(g, auth)
	})
	keyFile := filepath.Join(t.TempDir(), "page-token.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	vars := map[string]string{
		"BANK_DATABASE_URL": pgtest.NewDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_TRANSACTIONS_ADDR": addr,
		"BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0", "BANK_PAGE_TOKEN_KEY_FILE": keyFile,
		"BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
		"BANK_APPROVAL_THRESHOLD": "500", "BANK_MAX_TRANSFER": "1000", "BANK_DAILY_LIMIT": "2000",
	}
	first := start(t, vars)
	conn := env.Dial(t, "gateway", addr, "transactions")
	waitServing(t, conn, first.done)
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
	if _, err := api.CreateDeposit(boss, &transactionsv1.CreateDepositRequest{AccountId: a, Amount: 1000, Currency: "EUR", Reference: "cash", IdempotencyKey: "d1"}); err != nil {
		t.Fatalf("CreateDeposit = %v", err)
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
	first.stop(t)
	if out := first.logs.String(); strings.Contains(out, "random per-process key") || !strings.Contains(out, "revocation list current") {
		t.Errorf("logs lack the expected start-up lines:\n%s", out)
	}

	second := start(t, vars)
	defer second.stop(t)
	conn = env.Dial(t, "gateway", addr, "transactions")
	waitServing(t, conn, second.done)
	api = transactionsv1.NewTransactionsServiceClient(conn)
	var md metadata.MD
	again, err := api.CreateTransfer(asAlice, req, grpc.Header(&md))
	if err != nil || again.GetTransfer().GetId() != sent.GetTransfer().GetId() || strings.Join(md.Get("idempotent-replayed"), "") != "true" {
		t.Errorf("CreateTransfer(same key after restart) = %v, %v, header %v; want the first transfer replayed", again, err, md)
	}
	resp, err := ledger.GetBalances(context.Background(), &transactionsv1.GetBalancesRequest{AccountIds: []string{a, b}})
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
	auth := &fakeAuth{env: env, revoked: []string{revoked.ID}, up: make(chan struct{})}
	authAddr := env.Serve(t, "auth", func(g *grpc.Server) {
		authv1.RegisterAuthServiceServer(g, auth)
		authv1.RegisterRevocationServiceServer(g, auth)
	})
	keyFile := filepath.Join(t.TempDir(), "page-token.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	run := start(t, map[string]string{
		"BANK_DATABASE_URL": pgtest.NewDatabase(t), "BANK_PKI_DIR": env.PKIDir,
		"BANK_TRUST_DOMAIN": grpctest.TrustDomain, "BANK_TRANSACTIONS_ADDR": addr,
		"BANK_AUTH_ADDR": authAddr, "BANK_METRICS_ADDR": "127.0.0.1:0", "BANK_PAGE_TOKEN_KEY_FILE": keyFile,
		"BANK_TOKEN_ISSUER": grpctest.Issuer, "BANK_TOKEN_AUDIENCE": grpctest.Audience,
	})
	defer run.stop(t)
	conn := env.Dial(t, "gateway", addr, "transactions")
	waitHealth(t, conn, run.done, grpcserver.LivenessService, healthpb.HealthCheckResponse_SERVING)
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

	close(auth.up)
	waitServing(t, conn, run.done)
	if err := get(valid); status.Code(err) != codes.NotFound {
		t.Errorf("GetTransfer(valid manager token, unknown id) once synced = %v, want NotFound", err)
	}
	if err := get(revokedRaw); status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetTransfer(revoked manager token) once synced = %v, want Unauthenticated", err)
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
	db := "postgres://x@127.0.0.1:1/x"
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"everything wrong at once", map[string]string{
			"BANK_APPROVAL_THRESHOLD": "0", "BANK_MAX_TRANSFER": "-5", "BANK_DAILY_LIMIT": "lots",
			"BANK_TRANSACTIONS_ADDR": "nowhere", "BANK_LOG_LEVEL": "loud", "BANK_IDEMPOTENCY_TTL": "1h",
		}, []string{"BANK_DATABASE_URL", "BANK_APPROVAL_THRESHOLD", "BANK_MAX_TRANSFER", "BANK_DAILY_LIMIT",
			"BANK_TRANSACTIONS_ADDR", "BANK_LOG_LEVEL", "BANK_IDEMPOTENCY_TTL"}},
		{"malformed database URL", map[string]string{"BANK_DATABASE_URL": "not a url"}, []string{"BANK_DATABASE_URL"}},
		{"short page token key", map[string]string{
			"BANK_DATABASE_URL": db, "BANK_PAGE_TOKEN_KEY_FILE": short, "BANK_METRICS_ADDR": "127.0.0.1:0",
		}, []string{"BANK_PAGE_TOKEN_KEY_FILE"}},
		{"missing page token key", map[string]string{
			"BANK_DATABASE_URL": db, "BANK_PAGE_TOKEN_KEY_FILE": short + ".missing", "BANK_METRICS_ADDR": "127.0.0.1:0",
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
