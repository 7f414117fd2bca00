package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	platformpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// dbURL is the package's database: every test uses accounts and users of its
// own, so tests run in parallel without seeing each other's money.
var dbURL string

// TestMain runs every test against one database and then verifies the
// audit chain that all of them appended to, concurrently, refusals included.
func TestMain(m *testing.M) {
	os.Exit(pgtest.Run(chainVerifier{m}, pgtest.AdminURL(), func(u string) {
		dbURL = u
		ctx := context.Background()
		pool, err := platformpg.Open(ctx, u, platformpg.PoolConfig{MaxConns: 2})
		if err == nil {
			err = postgres.Migrate(ctx, pool)
			pool.Close()
		}
		if err != nil {
			panic(fmt.Sprintf("migrate test database: %v", err))
		}
	}))
}

// chainVerifier runs the tests, then seals what they appended and fails the
// run if the audit chain does not verify.
type chainVerifier struct{ m *testing.M }

func (c chainVerifier) Run() int {
	code := c.m.Run()
	ctx := context.Background()
	pool, err := platformpg.Open(ctx, dbURL, platformpg.PoolConfig{MaxConns: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	log := audit.New(postgres.Schema, time.Now)
	if _, err := log.Seal(ctx, pool); err != nil {
		fmt.Fprintf(os.Stderr, "audit chain after all tests: %v\n", err)
		return 1
	}
	rep, err := log.Verify(ctx, pool)
	if err != nil {
		fmt.Fprintf(os.Stderr, "audit chain after all tests: %d rows verified, then %v\n", rep.Sealed, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "audit chain after all tests: %d rows verified\n", rep.Sealed)
	return code
}

var testLimits = domain.Limits{ApprovalThreshold: 10_000, MaxTransfer: 50_000, DailyLimit: 100_000}

// env is one test's view of the ledger.
type env struct {
	t     testing.TB
	url   string // the database, for connections of a test's own
	pool  *pgxpool.Pool
	store *postgres.Store
	svc   *domain.Service
	now   *atomic.Pointer[time.Time]
}

// envConfig is what the options of a test env set: the pool, the service
// and the store's group commit.
type envConfig struct {
	pool  *pgxpool.Config
	svc   *domain.Config
	group postgres.GroupCommit
}

type envOption func(*envConfig)

// withGroupCommit bounds the store's group commit.
func withGroupCommit(g postgres.GroupCommit) envOption {
	return func(c *envConfig) { c.group = g }
}

func withLimits(l domain.Limits) envOption {
	return func(c *envConfig) { c.svc.Limits = l }
}

func withMetrics(m domain.Metrics) envOption {
	return func(c *envConfig) { c.svc.Metrics = m }
}

func withConns(n int32) envOption {
	return func(c *envConfig) { c.pool.MaxConns = n }
}

func withAppName(name string) envOption {
	return func(c *envConfig) { c.pool.ConnConfig.RuntimeParams["application_name"] = name }
}

// withProxy connects through addr instead of straight to Postgres.
func withProxy(addr string) envOption {
	return func(c *envConfig) {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		c.pool.ConnConfig.Host, c.pool.ConnConfig.Port = host, uint16(p)
		c.pool.ConnConfig.Fallbacks = nil
	}
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvAt(t, dbURL, opts...)
}

// newIsolatedEnv is newEnv on a fresh database of the test's own, for tests
// that act on every row (pruning) and so must not see other tests' rows.
func newIsolatedEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool, err := platformpg.Open(context.Background(), url, platformpg.PoolConfig{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return newEnvAt(t, url, opts...)
}

func newEnvAt(t testing.TB, url string, opts ...envOption) *env {
	t.Helper()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = 4
	now := &atomic.Pointer[time.Time]{}
	start := time.Date(2030, 3, 4, 12, 0, 0, 0, time.UTC)
	now.Store(&start)
	pages, err := pagetoken.New(make([]byte, pagetoken.MinKeySize))
	if err != nil {
		t.Fatal(err)
	}
	cfg := domain.Config{Limits: testLimits, Now: func() time.Time { return *now.Load() }, PageTokens: pages}
	// Two committers, not the shipped one, unless a test says otherwise:
	// batches then run side by side, as they do between replicas, so the
	// row locks that keep two batches from deciding on the same balance are
	// exercised by every concurrency and crash test.
	ec := envConfig{pool: pc, svc: &cfg, group: postgres.GroupCommit{Committers: 2}}
	for _, o := range opts {
		o(&ec)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := postgres.New(pool, audit.New(postgres.Schema, time.Now), ec.group)
	svc, err := domain.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: url, pool: pool, store: store, svc: svc, now: now}
}

// advance moves the service's clock.
func (e *env) advance(d time.Duration) {
	n := e.now.Load().Add(d)
	e.now.Store(&n)
}

func user(roles ...string) identity.User {
	if len(roles) == 0 {
		roles = []string{identity.RoleUser}
	}
	return identity.User{ID: uuid.NewString(), Roles: roles}
}

func manager() identity.User { return user(identity.RoleUser, identity.RoleManager) }

// open creates an account for owner in currency through the service.
func (e *env) open(owner identity.User, currency string) string {
	e.t.Helper()
	id := uuid.NewString()
	if err := e.svc.OpenAccount(context.Background(), id, owner.ID, currency); err != nil {
		e.t.Fatalf("OpenAccount(%s) = %v", currency, err)
	}
	return id
}

// fund deposits amount into account as a fresh manager and, when the
// deposit is held for a second person, has a second fresh manager approve
// it, as the bank's four-eyes rule asks.
func (e *env) fund(account string, amount int64, currency string) domain.Transfer {
	e.t.Helper()
	out, err := e.svc.Deposit(context.Background(), manager(), domain.DepositRequest{
		AccountID: account, Amount: amount, Currency: currency, Reference: "seed", IdempotencyKey: uuid.NewString()})
	if err != nil {
		e.t.Fatalf("Deposit(%s, %d) = %v", account, amount, err)
	}
	if out.Transfer.Status != domain.StatusPendingApproval {
		return out.Transfer
	}
	t, err := e.svc.Approve(context.Background(), manager(), out.Transfer.ID)
	if err != nil {
		e.t.Fatalf("Approve(deposit %s, %d) = %v", account, amount, err)
	}
	return t
}

// money is an account's booked and held amounts.
type money struct{ Balance, Held int64 }

func (e *env) money(id string) money {
	e.t.Helper()
	var m money
	err := e.pool.QueryRow(context.Background(), `SELECT balance, held FROM ledger.accounts WHERE id = $1`, id).Scan(&m.Balance, &m.Held)
	if err != nil {
		e.t.Fatalf("read account %s: %v", id, err)
	}
	return m
}

// rows counts rows of a query with one argument.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// snapshot is everything a refused request must leave unchanged.
type snapshot struct {
	Money   map[string]money
	Entries int
	Xfers   int
	Usage   int64
}

func (e *env) snapshot(u identity.User, ids ...string) snapshot {
	e.t.Helper()
	s := snapshot{Money: map[string]money{}}
	for _, id := range ids {
		s.Money[id] = e.money(id)
	}
	s.Entries = e.count(`SELECT count(*) FROM ledger.entries WHERE account_id = ANY($1::uuid[])`, ids)
	s.Xfers = e.count(`SELECT count(*) FROM ledger.transfers WHERE from_account_id = ANY($1::uuid[]) OR to_account_id = ANY($1::uuid[])`, ids)
	err := e.pool.QueryRow(context.Background(), `SELECT coalesce(sum(amount), 0) FROM ledger.daily_usage WHERE user_id = $1`, u.ID).Scan(&s.Usage)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// isKind reports whether err has kind k.
func isKind(err error, k errs.Kind) bool { return err != nil && errs.KindOf(err) == k }

func sameErr(got, want error) bool {
	if want == nil {
		return got == nil
	}
	return errors.Is(got, want)
}

// txLock holds row locks on a connection of its own until release is called,
// standing in for a transfer that is still in flight.
func (e *env) txLock(query string, args ...any) (release func()) {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, query, args...); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		tx.Rollback(ctx)
		conn.Close(ctx)
	}
}
