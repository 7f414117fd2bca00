package domain_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/grpctest"
	bankpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
	"github.com/bastion-bank/bastion/services/auth/internal/postgres"
)

// The domain is tested against the real store on a real database.
var dbURL string

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { dbURL = u }) }

// issuer stands in for the JWT signer: the domain only needs the token's id
// and expiry. The real signer is exercised by the rpc tests.
type issuer struct{ clock *grpctest.Clock }

func (i issuer) Issue(userID string, roles, amr []string) (domain.AccessToken, error) {
	now := i.clock.Now()
	return domain.AccessToken{Raw: "jwt-for-" + userID + ":" + strings.Join(roles, ","), ID: uuid.NewString(), IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}, nil
}

// sealer seals TOTP secrets with a key made for the test run.
var sealer = sync.OnceValue(func() *mfa.Sealer {
	s, err := mfa.NewSealer([]byte(uuid.NewString()))
	if err != nil {
		panic(err)
	}
	return s
})

// counters records security events.
type counters struct {
	mu     sync.Mutex
	events map[string]int
}

func (c *counters) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[k]++
}

func (c *counters) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[k]
}

func (c *counters) LoginFailed(_ context.Context, r string)   { c.add("login_failed:" + r) }
func (c *counters) TokenRejected(_ context.Context, r string) { c.add("token_rejected:" + r) }
func (c *counters) Event(_ context.Context, e, r string)      { c.add(e + ":" + r) }

// fixture is one service on the shared database.
type fixture struct {
	url   string // the fixture's database
	svc   *domain.Service
	repo  *postgres.Store
	db    *pgxpool.Pool // for reading what the service wrote, e.g. audit rows
	revs  *domain.Revocations
	clock *grpctest.Clock
	ctr   *counters
	ip    string // this fixture's client IP, so fixtures never share an IP counter
}

// cheapParams keep tests fast; BenchmarkLogin uses the real ones.
var cheapParams = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newFixture(t testing.TB, cfg domain.Config) *fixture {
	t.Helper()
	return newFixtureWith(t, cfg, cheapParams, password.PoolConfig{Queue: 1000})
}

func newFixtureWith(t testing.TB, cfg domain.Config, params password.Params, pool password.PoolConfig) *fixture {
	t.Helper()
	return newFixtureOn(t, dbURL, cfg, params, pool)
}

// newIsolatedFixture is a fixture on a database of its own, for tests that
// watch who waits on a lock and so must not see other tests' transactions
// (a role change locks every admin in the database).
func newIsolatedFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureOn(t, pgtest.NewDatabase(t), domain.Config{}, cheapParams, password.PoolConfig{Queue: 1000})
}

func newFixtureOn(t testing.TB, url string, cfg domain.Config, params password.Params, pool password.PoolConfig) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := bankpg.Open(ctx, url, bankpg.PoolConfig{MaxConns: 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	if err := postgres.Migrate(ctx, db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	h, err := password.NewHasher(params, pool)
	if err != nil {
		t.Fatal(err)
	}
	clk := grpctest.NewClock(time.Now().UTC().Truncate(time.Microsecond))
	f := &fixture{url: url, db: db, repo: postgres.New(db, clk.Now), revs: domain.NewRevocations(clk.Now), clock: clk,
		ctr: &counters{events: map[string]int{}}, ip: randomIP()}
	f.svc, err = domain.New(cfg, domain.Deps{Store: f.repo, Hasher: h, Policy: mustPolicy(t), Issuer: issuer{clk}, Sealer: sealer(), Revocations: f.revs,
		Counters: f.ctr, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// register creates a user with a random email and returns it with its password.
func (f *fixture) register(t testing.TB) (domain.User, string) {
	t.Helper()
	pw := "pw-" + uuid.NewString()
	u, err := f.svc.Register(context.Background(), domain.RegisterInput{
		Email: "User-" + uuid.NewString() + "@Example.com", Password: pw, DisplayName: "Test User"})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return u, pw
}

func (f *fixture) login(t testing.TB, email, pw string) domain.Tokens {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), domain.LoginInput{Email: email, Password: pw, ClientIP: f.ip})
	if err != nil {
		t.Fatalf("Login(%q): %v", email, err)
	}
	return tok
}

func randomIP() string {
	return fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), rand.IntN(256))
}

// policy is loaded once for the package's tests: it reads the whole list.
var policy = sync.OnceValues(password.NewPolicy)

func mustPolicy(t testing.TB) *password.Policy {
	t.Helper()
	p, err := policy()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustHasher(t testing.TB) *password.Hasher {
	t.Helper()
	h, err := password.NewHasher(cheapParams, password.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}
