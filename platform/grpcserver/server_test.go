package grpcserver_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/wire"
)

const (
	alice      = "1a1a1a1a-1111-4111-8111-111111111111"
	bob        = "2b2b2b2b-2222-4222-8222-222222222222"
	aliceAcct  = "aaaaaaaa-0000-4000-8000-000000000001"
	panicAcct  = "aaaaaaaa-0000-4000-8000-00000000dead"
	brokenAcct = "aaaaaaaa-0000-4000-8000-00000000beef"
	missing    = "aaaaaaaa-0000-4000-8000-0000000000ff"
)

// seen is what the handler observed of its context.
type seen struct {
	user     identity.User
	service  string
	clientIP string
	md       metadata.MD
}

// recorder keeps what the last handler call observed of its context.
type recorder struct {
	mu   sync.Mutex
	last seen
}

func (r *recorder) record(ctx context.Context) {
	if r == nil {
		return
	}
	u, _ := identity.UserFrom(ctx)
	s, _ := identity.ServiceFrom(ctx)
	ip, _ := identity.ClientIPFrom(ctx)
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	r.last = seen{u, s, ip, md}
	r.mu.Unlock()
}

func (r *recorder) seen() seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

type accounts struct {
	accountsv1.UnimplementedAccountsServiceServer
	recorder
}

func (a *accounts) GetAccount(ctx context.Context, req *accountsv1.GetAccountRequest) (*accountsv1.GetAccountResponse, error) {
	a.record(ctx)
	switch req.GetAccountId() {
	case panicAcct:
		panic("boom: secret stack detail")
	case brokenAcct:
		return nil, errors.New(`pq: relation "accounts" does not exist at 10.0.0.5`)
	}
	return &accountsv1.GetAccountResponse{Account: &accountsv1.Account{Id: req.GetAccountId()}}, nil
}

func (a *accounts) FreezeAccount(ctx context.Context, req *accountsv1.FreezeAccountRequest) (*accountsv1.FreezeAccountResponse, error) {
	a.record(ctx)
	return &accountsv1.FreezeAccountResponse{}, nil
}

// ledger serves the internal RPCs a service (not the gateway) calls; with a
// recorder it keeps what the last call saw.
type ledger struct {
	transactionsv1.UnimplementedLedgerServiceServer
	*recorder
}

func (l ledger) GetBalances(ctx context.Context, _ *transactionsv1.GetBalancesRequest) (*transactionsv1.GetBalancesResponse, error) {
	l.record(ctx)
	return &transactionsv1.GetBalancesResponse{}, nil
}

type revocations struct {
	authv1.UnimplementedRevocationServiceServer
}

func (revocations) WatchRevocations(_ *authv1.WatchRevocationsRequest, s grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	return s.Send(&authv1.WatchRevocationsResponse{Snapshot: true})
}

var owners = rbac.OwnerFunc(func(_ context.Context, resource, id string) ([]string, error) {
	if resource == "account" && id == aliceAcct || id == panicAcct || id == brokenAcct {
		return []string{alice}, nil
	}
	return nil, errs.New(errs.NotFound, "account not found")
})

type counters struct {
	mu   sync.Mutex
	seen []string
}

func (c *counters) add(s string)                                 { c.mu.Lock(); c.seen = append(c.seen, s); c.mu.Unlock() }
func (c *counters) TokenRejected(_ context.Context, r string)    { c.add("token:" + r) }
func (c *counters) AuthzDenied(_ context.Context, r string)      { c.add("authz:" + r) }
func (c *counters) ValidationFailed(_ context.Context, r string) { c.add("validation:" + r) }
func (c *counters) RateLimited(_ context.Context, r string)      { c.add("ratelimit:" + r) }
func (c *counters) has(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.seen, s)
}

type harness struct {
	env    *grpctest.Env
	addr   string
	svc    *accounts
	ledger *recorder
	cnt    *counters
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := grpctest.New(t)
	h := &harness{env: env, svc: &accounts{}, ledger: &recorder{}, cnt: &counters{}}
	h.addr = env.Serve(t, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, h.svc)
		transactionsv1.RegisterLedgerServiceServer(s, ledger{recorder: h.ledger})
		authv1.RegisterRevocationServiceServer(s, revocations{})
	}, grpctest.WithOwners(owners), grpctest.WithCounters(h.cnt))
	return h
}

func (h *harness) client(t *testing.T, as string) accountsv1.AccountsServiceClient {
	return accountsv1.NewAccountsServiceClient(h.env.Dial(t, as, h.addr, "accounts"))
}

func ctxAs(t *testing.T, tok string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	if tok == "" {
		return ctx
	}
	return grpctest.AsUser(ctx, tok)
}

// TestChainRefusals attacks each step of the chain and checks the kind that
// comes back, the safe message, and the refusal counted.
func TestChainRefusals(t *testing.T) {
	h := newHarness(t)
	userTok := h.env.Token(t, alice, "user")
	bobTok := h.env.Token(t, bob, "user")
	mgrTok := h.env.Token(t, bob, "user", "manager")
	mgrPasswordOnly := h.env.TokenAMR(t, bob, []string{identity.AMRPassword}, "user", "manager")
	tests := []struct {
		name    string
		as      string
		tok     string
		call    func(context.Context, accountsv1.AccountsServiceClient) error
		kind    errs.Kind
		msg     string
		counted string
	}{
		{"owner reads", "gateway", userTok, get(aliceAcct), errs.Other, "", ""},
		{"caller not named by the rule", "intruder", userTok, get(aliceAcct), errs.Permission, "permission denied", "authz:caller_not_allowed"},
		{"internal caller on a public RPC", "transactions", userTok, get(aliceAcct), errs.Permission, "permission denied", "authz:caller_not_allowed"},
		{"no token", "gateway", "", get(aliceAcct), errs.Unauthenticated, "authentication required", "token:missing"},
		{"foreign key", "gateway", grpctest.ForeignToken(t, alice, "admin"), get(aliceAcct), errs.Unauthenticated, "invalid token", "token:unknown_kid"},
		{"garbage token", "gateway", "x.y.z", get(aliceAcct), errs.Unauthenticated, "invalid token", "token:malformed"},
		{"not the owner", "gateway", bobTok, get(aliceAcct), errs.NotFound, "account not found", "authz:not_owner"},
		{"missing account", "gateway", bobTok, get(missing), errs.NotFound, "account not found", "authz:not_owner"},
		{"manager bypasses ownership", "gateway", mgrTok, get(aliceAcct), errs.Other, "", ""},
		{"role not allowed", "gateway", userTok, freeze(aliceAcct), errs.Permission, "permission denied", "authz:role"},
		{"manager role allowed", "gateway", mgrTok, freeze(aliceAcct), errs.Other, "", ""},
		{"staff operation without a one-time code", "gateway", mgrPasswordOnly, freeze(aliceAcct), errs.Permission,
			"this staff operation needs multi-factor authentication: log in with a one-time code", "authz:mfa_required"},
		{"customer operation without a one-time code", "gateway", mgrPasswordOnly, get(aliceAcct), errs.Other, "", ""},
		{"invalid input", "gateway", userTok, get("not-a-uuid"), errs.Invalid, "invalid request", "validation:string.uuid"},
		{"panic in a handler", "gateway", userTok, get(panicAcct), errs.Internal, "internal error", ""},
		{"internal error text", "gateway", userTok, get(brokenAcct), errs.Internal, "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(ctxAs(t, tt.tok), h.client(t, tt.as))
			if tt.kind == errs.Other {
				if err != nil {
					t.Fatalf("%s: %v, want success", tt.name, err)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Kind != tt.kind || e.Msg != tt.msg {
				t.Fatalf("%s = %v, want %v %q", tt.name, err, tt.kind, tt.msg)
			}
			for _, leak := range []string{"boom", "pq:", "10.0.0.5", "stack"} {
				if strings.Contains(e.Msg, leak) {
					t.Errorf("%s leaks %q", tt.name, leak)
				}
			}
			if tt.counted != "" && !h.cnt.has(tt.counted) {
				t.Errorf("%s: %q not counted (have %v)", tt.name, tt.counted, h.cnt.seen)
			}
		})
	}
	// The server survived the panic.
	if err := get(aliceAcct)(ctxAs(t, userTok), h.client(t, "gateway")); err != nil {
		t.Errorf("call after a panic = %v", err)
	}
}

func get(id string) func(context.Context, accountsv1.AccountsServiceClient) error {
	return func(ctx context.Context, c accountsv1.AccountsServiceClient) error {
		_, err := c.GetAccount(ctx, &accountsv1.GetAccountRequest{AccountId: id})
		return err
	}
}

func freeze(id string) func(context.Context, accountsv1.AccountsServiceClient) error {
	return func(ctx context.Context, c accountsv1.AccountsServiceClient) error {
		_, err := c.FreezeAccount(ctx, &accountsv1.FreezeAccountRequest{AccountId: id, Reason: "test"})
		return err
	}
}

// TestSpoofedMetadataIsDropped: identity-looking metadata never reaches a
// handler, and a client IP is believed only from the gateway. The client IP
// keys the login throttle, so another service's certificate setting it
// would let that service (or whoever holds its key) pick whose budget a
// login spends.
func TestSpoofedMetadataIsDropped(t *testing.T) {
	h := newHarness(t)
	tok := h.env.Token(t, alice, "user")
	spoofed := []string{"x-user-id", bob, "x-roles", "admin", "grpcgateway-authorization", "Bearer x",
		"x-forwarded-for", "203.0.113.9", wire.ClientIP, "198.51.100.7", wire.RequestID, "req-1",
		"baggage", "user_id=" + bob + ",role=admin"}
	tests := []struct {
		name   string
		as     string
		call   func(context.Context, *grpc.ClientConn) error
		rec    *recorder
		user   string // the verified user the handler sees
		wantIP string // the client IP the handler sees
	}{
		{"the gateway on a user RPC", "gateway", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := accountsv1.NewAccountsServiceClient(conn).GetAccount(grpctest.AsUser(ctx, tok), &accountsv1.GetAccountRequest{AccountId: aliceAcct})
			return err
		}, &h.svc.recorder, alice, "198.51.100.7"},
		{"another service on an internal RPC", "accounts", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := transactionsv1.NewLedgerServiceClient(conn).GetBalances(ctx, &transactionsv1.GetBalancesRequest{AccountIds: []string{aliceAcct}})
			return err
		}, h.ledger, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(ctxAs(t, ""), spoofed...)
			if err := tt.call(ctx, h.env.Dial(t, tt.as, h.addr, "accounts")); err != nil {
				t.Fatalf("call as %s = %v, want success", tt.as, err)
			}
			got := tt.rec.seen()
			if got.user.ID != tt.user || slices.Contains(got.user.Roles, "admin") || got.service != tt.as {
				t.Errorf("handler called by %s saw user %+v service %q, want user %q service %q", tt.as, got.user, got.service, tt.user, tt.as)
			}
			if got.clientIP != tt.wantIP {
				t.Errorf("client IP sent by %s = %q, want %q", tt.as, got.clientIP, tt.wantIP)
			}
			for k := range got.md {
				if !slices.Contains([]string{wire.RequestID, "traceparent", "tracestate"}, k) {
					t.Errorf("handler called by %s saw metadata %q", tt.as, k)
				}
			}
		})
	}
	// A service may not reach a user RPC at all, spoofed metadata or not.
	ctx := metadata.AppendToOutgoingContext(ctxAs(t, tok), spoofed...)
	if _, err := h.client(t, "accounts").GetAccount(ctx, &accountsv1.GetAccountRequest{AccountId: aliceAcct}); errs.KindOf(err) != errs.Permission {
		t.Errorf("GetAccount as accounts = %v, want permission", err)
	}
}

func TestInternalRPCsAndStreams(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		as       string
		ok       bool // may call the ledger's internal RPCs
		streamOK bool // may follow the revocation feed
	}{{"accounts", true, true}, {"gateway", false, true}, {"intruder", false, false}}
	for _, tt := range tests {
		conn := h.env.Dial(t, tt.as, h.addr, "accounts")
		_, err := transactionsv1.NewLedgerServiceClient(conn).GetBalances(ctxAs(t, ""), &transactionsv1.GetBalancesRequest{AccountIds: []string{aliceAcct}})
		if (err == nil) != tt.ok {
			t.Errorf("GetBalances as %s = %v, want ok=%v", tt.as, err, tt.ok)
		}
		_, err = transactionsv1.NewLedgerServiceClient(conn).GetBalances(ctxAs(t, ""), &transactionsv1.GetBalancesRequest{})
		if tt.ok && errs.KindOf(err) != errs.Invalid {
			t.Errorf("GetBalances(empty) as %s = %v, want invalid", tt.as, err)
		}
		stream, err := authv1.NewRevocationServiceClient(conn).WatchRevocations(ctxAs(t, ""), &authv1.WatchRevocationsRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if (err == nil) != tt.streamOK {
			t.Errorf("WatchRevocations as %s = %v, want ok=%v", tt.as, err, tt.streamOK)
		}
		if _, err := healthpb.NewHealthClient(conn).Check(ctxAs(t, ""), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health check as %s = %v; any platform peer may ask", tt.as, err)
		}
	}
}

// fakeDesc is a service with no access rule in any descriptor.
var fakeDesc = grpc.ServiceDesc{
	ServiceName: "bank.fake.v1.Fake",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Do", Handler: func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) { return nil, nil }}},
}

func TestRefusesToStartWithoutRules(t *testing.T) {
	env := grpctest.New(t)
	src := env.Source(t, "accounts")
	srv, err := grpcserver.New(grpcserver.Config{
		Name: "accounts", Credentials: src.ServerCredentials(), Logger: env.Logger,
		Peer: func(ctx context.Context) (string, error) { return mtls.ServiceFromPeer(ctx, grpctest.TrustDomain) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var impl any = struct{}{}
	srv.GRPC().RegisterService(&fakeDesc, impl)
	if err := srv.CheckRules(); err == nil || !strings.Contains(err.Error(), "bank.fake.v1.Fake") {
		t.Errorf("CheckRules() = %v, want an error naming the rule-less service", err)
	}
	// A service whose rules need a verifier and an owner resolver it was not given.
	srv2, _ := grpcserver.New(grpcserver.Config{Name: "accounts", Credentials: src.ServerCredentials(), Logger: env.Logger, Peer: func(context.Context) (string, error) { return "", nil }})
	accountsv1.RegisterAccountsServiceServer(srv2.GRPC(), &accounts{})
	if err := srv2.CheckRules(); err == nil {
		t.Error("CheckRules() accepted user RPCs with no Verifier")
	}
	if _, err := grpcserver.New(grpcserver.Config{Name: "x"}); err == nil {
		t.Error("New without credentials succeeded")
	}
}

// TestStaffMFAOff: with BANK_STAFF_MFA=off a staff operation is served to
// a manager who logged in with a password only, and the server says so.
func TestStaffMFAOff(t *testing.T) {
	env := grpctest.New(t)
	logs := &grpctest.SyncBuffer{}
	env.Logger = slog.New(slog.NewTextHandler(logs, nil))
	svc := &accounts{}
	addr := env.Serve(t, "accounts", func(s *grpc.Server) { accountsv1.RegisterAccountsServiceServer(s, svc) },
		grpctest.WithOwners(owners), func(c *grpcserver.Config) { c.StaffMFA = rbac.MFAOff })
	client := accountsv1.NewAccountsServiceClient(env.Dial(t, "gateway", addr, "accounts"))
	tok := env.TokenAMR(t, bob, []string{identity.AMRPassword}, "user", "manager")
	if err := freeze(aliceAcct)(ctxAs(t, tok), client); err != nil {
		t.Errorf("freeze with a password-only token, staff MFA off = %v, want success", err)
	}
	if !strings.Contains(logs.String(), "BANK_STAFF_MFA=off") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("start-up logs %q do not warn that staff MFA is off", logs.String())
	}
}

func TestPerCallerRateLimit(t *testing.T) {
	env := grpctest.New(t)
	lim := ratelimit.NewMemory(time.Now, 100)
	addr := env.Serve(t, "transactions", func(s *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(s, ledger{})
	}, func(c *grpcserver.Config) {
		c.Limiter = lim
		c.CallerLimit = ratelimit.Limit{Name: "caller", Rate: 2, Period: time.Minute}
	})
	client := transactionsv1.NewLedgerServiceClient(env.Dial(t, "accounts", addr, "transactions"))
	req := &transactionsv1.GetBalancesRequest{AccountIds: []string{aliceAcct}}
	for i := 0; i < 2; i++ {
		if _, err := client.GetBalances(ctxAs(t, ""), req); err != nil {
			t.Fatal(err)
		}
	}
	_, err := client.GetBalances(ctxAs(t, ""), req)
	e, ok := errs.As(err)
	if !ok || e.Kind != errs.RateLimited || e.RetryAfter <= 0 {
		t.Errorf("third call = %v, want rate limited with a retry delay", err)
	}
}
