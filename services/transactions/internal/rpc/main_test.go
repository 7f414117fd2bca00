package rpc_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	platformpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/rpc"
)

var dbURL string

func TestMain(m *testing.M) {
	os.Exit(pgtest.Run(m, pgtest.AdminURL(), func(u string) {
		dbURL = u
		ctx := context.Background()
		pool, err := platformpg.Open(ctx, u, platformpg.PoolConfig{MaxConns: 1})
		if err == nil {
			err = postgres.Migrate(ctx, pool)
			pool.Close()
		}
		if err != nil {
			panic(fmt.Sprintf("migrate test database: %v", err))
		}
	}))
}

var limits = domain.Limits{ApprovalThreshold: 10_000, MaxTransfer: 50_000, DailyLimit: 1 << 40}

// stack is the transactions service behind the real chain, with clients
// dialled as the gateway (end-user calls) and as the accounts service.
type stack struct {
	t        testing.TB
	platform *grpctest.Env
	addr     string
	svc      *domain.Service
	store    *postgres.Store
	pool     *pgxpool.Pool
	gateway  transactionsv1.TransactionsServiceClient
	ledger   transactionsv1.LedgerServiceClient // as "accounts"
	events   *eventLog                          // what the handlers reported
}

// eventLog records the security events the handlers report, as
// "event/reason".
type eventLog struct {
	mu  sync.Mutex
	got []string
}

func (l *eventLog) Event(_ context.Context, event, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, event+"/"+reason)
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func newStack(t testing.TB, conns int32) *stack {
	t.Helper()
	return newStackWith(t, conns, postgres.GroupCommit{})
}

// newStackWith is newStack with the ledger's group commit bounded by g.
func newStackWith(t testing.TB, conns int32, g postgres.GroupCommit) *stack {
	t.Helper()
	ctx := context.Background()
	pool, err := platformpg.Open(ctx, dbURL, platformpg.PoolConfig{MaxConns: conns, ApplicationName: "transactions-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := postgres.New(pool, audit.New(postgres.Schema, time.Now), g)
	key := make([]byte, pagetoken.MinKeySize)
	rand.Read(key)
	pages, err := pagetoken.New(key)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := domain.New(store, domain.Config{Limits: limits, PageTokens: pages})
	if err != nil {
		t.Fatal(err)
	}
	p := grpctest.New(t)
	events := &eventLog{}
	// Owners are resolved through the cache cmd/transactions puts in front
	// of the service (BANK_OWNER_CACHE_SIZE's default), so these tests and
	// BenchmarkTransfer run the ownership check as shipped.
	owners := rbac.CacheOwners(svc, rbac.DefaultOwnerCacheSize, "account", "transfer")
	addr := p.Serve(t, "transactions", func(s *grpc.Server) { rpc.Register(s, svc, events) }, grpctest.WithOwners(owners),
		grpctest.WithDenials(svc))
	return &stack{
		t: t, platform: p, addr: addr, svc: svc, store: store, pool: pool, events: events,
		gateway: transactionsv1.NewTransactionsServiceClient(p.Dial(t, "gateway", addr, "transactions")),
		ledger:  transactionsv1.NewLedgerServiceClient(p.Dial(t, "accounts", addr, "transactions")),
	}
}

// person is an end user with a token.
type person struct {
	id    string
	token string
}

func (s *stack) person(roles ...string) person {
	if len(roles) == 0 {
		roles = []string{identity.RoleUser}
	}
	id := uuid.NewString()
	return person{id: id, token: s.platform.Token(s.t, id, roles...)}
}

// as returns a context carrying p's token.
func (p person) ctx() context.Context { return grpctest.AsUser(context.Background(), p.token) }

// open creates a ledger account for p through LedgerService, as the accounts
// service does.
func (s *stack) open(p person, currency string) string {
	s.t.Helper()
	id := uuid.NewString()
	if _, err := s.ledger.OpenLedgerAccount(context.Background(), &transactionsv1.OpenLedgerAccountRequest{
		AccountId: id, OwnerId: p.id, Currency: currency}); err != nil {
		s.t.Fatalf("OpenLedgerAccount = %v", err)
	}
	return id
}

// fund deposits amount through the API as boss and, when the deposit is
// held for a second person, approves it as another manager.
func (s *stack) fund(boss person, account string, amount int64) {
	s.t.Helper()
	resp, err := s.gateway.CreateDeposit(boss.ctx(), &transactionsv1.CreateDepositRequest{
		AccountId: account, Amount: amount, Currency: "EUR", Reference: "seed", IdempotencyKey: uuid.NewString()})
	if err != nil {
		s.t.Fatalf("CreateDeposit = %v", err)
	}
	if resp.GetTransfer().GetStatus() != "PENDING_APPROVAL" {
		return
	}
	second := s.person(identity.RoleUser, identity.RoleManager)
	if _, err := s.gateway.ApproveTransfer(second.ctx(), &transactionsv1.ApproveTransferRequest{TransferId: resp.GetTransfer().GetId()}); err != nil {
		s.t.Fatalf("ApproveTransfer(deposit) = %v", err)
	}
}

func (s *stack) balance(id string) (int64, int64) {
	s.t.Helper()
	resp, err := s.ledger.GetBalances(context.Background(), &transactionsv1.GetBalancesRequest{AccountIds: []string{id}})
	if err != nil || len(resp.GetBalances()) != 1 {
		s.t.Fatalf("GetBalances(%s) = %v, %v", id, resp, err)
	}
	return resp.GetBalances()[0].GetBalance(), resp.GetBalances()[0].GetHeld()
}
