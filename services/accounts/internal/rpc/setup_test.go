package rpc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger/ledgertest"
	accountspg "github.com/bastion-bank/bastion/services/accounts/internal/postgres"
	"github.com/bastion-bank/bastion/services/accounts/internal/rpc"
)

// dbURL is the package's database; tests use fresh random users, so they
// share it.
var dbURL string

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { dbURL = u }) }

// counters records what the platform and the domain count.
type counters struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counters) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[k]++
}

func (c *counters) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

func (c *counters) TokenRejected(_ context.Context, r string)    { c.add("token:" + r) }
func (c *counters) AuthzDenied(_ context.Context, r string)      { c.add("denied:" + r) }
func (c *counters) ValidationFailed(_ context.Context, r string) { c.add("invalid:" + r) }
func (c *counters) RateLimited(_ context.Context, r string)      { c.add("limited:" + r) }
func (c *counters) Event(_ context.Context, e, r string)         { c.add(e + ":" + r) }

// stack is the accounts service running behind the real chain, with a fake
// ledger behind a real mTLS hop.
type stack struct {
	env      *grpctest.Env
	pool     *pgxpool.Pool
	addr     string
	ledger   *domaintest.Ledger
	counters *counters
	client   accountsv1.AccountsServiceClient // dialled as the gateway
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	env := grpctest.New(t)
	pool, err := postgres.Open(ctx, dbURL, postgres.PoolConfig{})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := accountspg.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s := &stack{env: env, pool: pool, ledger: domaintest.NewLedger(), counters: &counters{}}
	ledgerAddr := env.Serve(t, "transactions", func(g *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(g, &ledgertest.Server{Ledger: s.ledger})
	})
	ledgerConn := env.Dial(t, "accounts", ledgerAddr, "transactions")
	codec, err := pagetoken.New([]byte(uuid.NewString() + uuid.NewString()))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := domain.NewService(accountspg.New(pool, time.Now),
		ledger.New(transactionsv1.NewLedgerServiceClient(ledgerConn)),
		domain.Config{PageTokens: codec, Metrics: s.counters})
	if err != nil {
		t.Fatal(err)
	}
	s.addr = env.Serve(t, "accounts", func(g *grpc.Server) { rpc.Register(g, svc) },
		grpctest.WithOwners(svc), grpctest.WithCounters(s.counters), grpctest.WithDenials(svc))
	s.client = accountsv1.NewAccountsServiceClient(env.Dial(t, "gateway", s.addr, "accounts"))
	return s
}

// person is a user with a signed token.
type person struct {
	id  string
	ctx context.Context // carries the bearer token
}

func (s *stack) person(t *testing.T, roles ...string) person {
	t.Helper()
	id := uuid.NewString()
	return person{id: id, ctx: grpctest.AsUser(context.Background(), s.env.Token(t, id, roles...))}
}

// open opens an EUR account for p.
func (s *stack) open(t *testing.T, p person) *accountsv1.Account {
	t.Helper()
	resp, err := s.client.OpenAccount(p.ctx, &accountsv1.OpenAccountRequest{Currency: "EUR", DisplayName: "Everyday"})
	if err != nil {
		t.Fatalf("OpenAccount() error = %v", err)
	}
	return resp.GetAccount()
}

// denials returns the reasons of the denials audited for actor, oldest first.
func (s *stack) denials(t *testing.T, actor string) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT reason FROM accounts.audit_events
		WHERE action = 'authz.denied' AND outcome = 'denied' AND actor = $1 ORDER BY id`, actor)
	if err != nil {
		t.Fatal(err)
	}
	reasons, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return reasons
}
