package rpc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	bankpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/platform/wire"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
	"github.com/bastion-bank/bastion/services/auth/internal/postgres"
	"github.com/bastion-bank/bastion/services/auth/internal/rpc"
	"github.com/bastion-bank/bastion/services/auth/internal/tokens"
)

// policy is loaded once for the package's tests: it reads the whole list.
var policy = sync.OnceValues(password.NewPolicy)

var dbURL string

// sealer seals TOTP secrets with a key made for the test run.
var sealer = sync.OnceValue(func() *mfa.Sealer {
	s, err := mfa.NewSealer([]byte(strings.Repeat("k", 32) + time.Now().String()))
	if err != nil {
		panic(err)
	}
	return s
})

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { dbURL = u }) }

// stack is the auth service as production wires it, served over loopback
// mTLS with the real interceptor chain, plus clients dialled as the gateway.
type stack struct {
	env      *grpctest.Env
	svc      *domain.Service
	keys     *tokens.Keys
	keyClock *grpctest.Clock // the key store's (key retirement), with options.fakeKey
	clock    *grpctest.Clock // the domain's (login windows, refresh expiry)
	revs     *domain.Revocations
	addr     string
	auth     authv1.AuthServiceClient // as the gateway
	ip       string                   // this stack's client IP
	keysDir  string
	hasher   *password.Hasher
	db       *pgxpool.Pool
}

type options struct {
	cfg     domain.Config
	params  password.Params
	pool    password.PoolConfig // the hash pool; zero means room for 1000 waiting
	fakeKey bool                // give the key store a settable clock
}

func newStack(t testing.TB, o options) *stack {
	t.Helper()
	ctx := context.Background()
	if o.params == (password.Params{}) {
		o.params = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	}
	pool, err := bankpg.Open(ctx, dbURL, bankpg.PoolConfig{MaxConns: 30})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s := &stack{env: grpctest.New(t), clock: grpctest.NewClock(time.Now()), keyClock: grpctest.NewClock(time.Now()), ip: randomIP(), db: pool}
	keyNow := time.Now
	if o.fakeKey {
		keyNow = s.keyClock.Now
	}
	s.keysDir = t.TempDir()
	s.keys, err = tokens.OpenKeys(s.keysDir, token.SignerConfig{Issuer: grpctest.Issuer, Audience: grpctest.Audience, Now: keyNow})
	if err != nil {
		t.Fatal(err)
	}
	if o.pool == (password.PoolConfig{}) {
		o.pool = password.PoolConfig{Queue: 1000}
	}
	s.hasher, err = password.NewHasher(o.params, o.pool)
	if err != nil {
		t.Fatal(err)
	}
	repo := postgres.New(pool, s.clock.Now)
	s.revs = domain.NewRevocations(time.Now)
	pol, err := policy()
	if err != nil {
		t.Fatal(err)
	}
	s.svc, err = domain.New(o.cfg, domain.Deps{Store: repo, Hasher: s.hasher, Policy: pol, Issuer: s.keys, Sealer: sealer(), Revocations: s.revs, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	verifier := s.keys.Verifier(token.VerifierConfig{Issuer: grpctest.Issuer, Audience: grpctest.Audience}, s.revs)
	s.addr = s.env.Serve(t, "auth", func(g *grpc.Server) { rpc.Register(g, s.svc, s.keys, s.revs) },
		func(c *grpcserver.Config) { c.Verifier = verifier })
	s.auth = authv1.NewAuthServiceClient(s.dial(t, "gateway"))
	return s
}

func (s *stack) dial(t testing.TB, as string) *grpc.ClientConn {
	return s.env.Dial(t, as, s.addr, "auth")
}

// ctx is a call from the gateway on behalf of a client at s.ip.
func (s *stack) ctx() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), wire.ClientIP, s.ip)
}

// as is a call from the gateway carrying the user's access token.
func (s *stack) as(access string) context.Context {
	return grpctest.AsUser(s.ctx(), access)
}

func randomIP() string {
	return fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), rand.IntN(256))
}

// user registers someone new and logs them in.
func (s *stack) user(t testing.TB) (email, pw string, tok *authv1.LoginResponse) {
	t.Helper()
	email = fmt.Sprintf("user-%d-%d@example.com", time.Now().UnixNano(), rand.Int())
	pw = "password " + email
	if _, err := s.auth.Register(s.ctx(), &authv1.RegisterRequest{Email: email, Password: pw, DisplayName: "Test"}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	tok, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return email, pw, tok
}

func codeOf(err error) codes.Code { return status.Code(err) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// kidOf reads the kid from a JWT's header without verifying anything.
func kidOf(t *testing.T, raw string) string {
	t.Helper()
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
