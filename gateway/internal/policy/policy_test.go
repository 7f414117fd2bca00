package policy_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	_ "google.golang.org/protobuf/types/known/emptypb"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/refusal"
)

const userID = "0b6f3c1e-8a43-4c55-9d5c-2f1e7a9b0c01"

func services() []protoreflect.ServiceDescriptor {
	return []protoreflect.ServiceDescriptor{
		authv1.File_bank_auth_v1_auth_proto.Services().ByName("AuthService"),
		authv1.File_bank_auth_v1_auth_proto.Services().ByName("RevocationService"),
		accountsv1.File_bank_accounts_v1_accounts_proto.Services().ByName("AccountsService"),
		transactionsv1.File_bank_transactions_v1_transactions_proto.Services().ByName("TransactionsService"),
		transactionsv1.File_bank_transactions_v1_transactions_proto.Services().ByName("LedgerService"),
	}
}

// next records what reached the upstream connection.
type next struct {
	calls     []metadata.MD
	reqs      []any
	deadlines []time.Time
}

func (n *next) Invoke(ctx context.Context, _ string, args, _ any, _ ...grpc.CallOption) error {
	md, _ := metadata.FromOutgoingContext(ctx)
	n.calls = append(n.calls, md)
	n.reqs = append(n.reqs, args)
	d, ok := ctx.Deadline()
	if !ok {
		return errors.New("call without a deadline")
	}
	n.deadlines = append(n.deadlines, d)
	return nil
}

func (n *next) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("stream reached upstream")
}

// failingLimiter cannot decide, like Redis and the fallback both down.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Result, error) {
	return ratelimit.Result{}, errs.New(errs.Unavailable, "limiter down")
}

func (failingLimiter) Check(context.Context, string, ratelimit.Limit) (ratelimit.Result, error) {
	return ratelimit.Result{}, errs.New(errs.Unavailable, "limiter down")
}

func newPolicy(t *testing.T, env *grpctest.Env, lim ratelimit.Limiter, limits policy.Limits) *policy.Policy {
	t.Helper()
	p, err := policy.New(policy.Config{Verifier: env.Verifier, Limiter: lim, Limits: limits, Services: services(), Timeout: time.Second})
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	return p
}

// defaultLimits are docs/api.md's limits, built as the gateway builds them.
func defaultLimits() policy.Limits {
	return policy.NewLimits(policy.DefaultAuthPerMinute, policy.DefaultUserPerMinute, policy.DefaultTransfersPerMinute, policy.DefaultPublicPerMinute)
}

func stateCtx(auth ...string) (context.Context, *edge.State) {
	st := &edge.State{RequestID: "req-1", ClientIP: "198.51.100.7", Authorization: auth}
	return edge.WithState(context.Background(), st), st
}

func TestEdgeReachesOnlyGatewayRPCs(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	p := newPolicy(t, env, ratelimit.NewMemory(time.Now, 0), defaultLimits())
	tests := []struct {
		method string
		ok     bool
	}{
		{"/bank.auth.v1.AuthService/Login", true},
		{"/bank.transactions.v1.TransactionsService/CreateTransfer", true},
		{"/bank.auth.v1.RevocationService/WatchRevocations", false},
		{"/bank.transactions.v1.LedgerService/GetBalances", false},
		{"/bank.transactions.v1.LedgerService/OpenLedgerAccount", false},
		{"/grpc.health.v1.Health/Check", false},
		{"/bank.auth.v1.AuthService/NoSuchMethod", false},
		{"not even a method", false},
	}
	for _, tc := range tests {
		n := &next{}
		ctx, _ := stateCtx("Bearer " + env.Token(t, userID, "admin"))
		err := p.Conn(n).Invoke(ctx, tc.method, &authv1.GetJWKSRequest{}, &authv1.GetJWKSResponse{})
		if tc.ok {
			if err != nil || len(n.calls) != 1 {
				t.Errorf("Invoke(%q) = %v with %d upstream calls, want it passed on once", tc.method, err, len(n.calls))
			}
			continue
		}
		if errs.KindOf(err) != errs.Permission || len(n.calls) != 0 {
			t.Errorf("Invoke(%q) = %v with %d upstream calls, want Permission and none", tc.method, err, len(n.calls))
		}
	}
	n := &next{}
	ctx, _ := stateCtx()
	if _, err := p.Conn(n).NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/bank.auth.v1.RevocationService/WatchRevocations"); errs.KindOf(err) != errs.Permission {
		t.Errorf("NewStream = %v, want Permission: the edge proxies no stream", err)
	}
}

func TestNewRefusesAMethodWithoutARule(t *testing.T) {
	t.Parallel()
	fd := &descriptorpb.FileDescriptorProto{
		Name:       new("norule/v1/norule.proto"),
		Package:    new("norule.v1"),
		Dependency: []string{"google/protobuf/empty.proto"},
		Syntax:     new("proto3"),
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: new("Open"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name: new("Everything"), InputType: new(".google.protobuf.Empty"), OutputType: new(".google.protobuf.Empty"),
			}},
		}},
	}
	file, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	env := grpctest.New(t)
	_, err = policy.New(policy.Config{Verifier: env.Verifier, Limiter: ratelimit.NewMemory(time.Now, 0), Limits: defaultLimits(),
		Services: []protoreflect.ServiceDescriptor{file.Services().Get(0)}})
	if err == nil {
		t.Errorf("policy.New with a rule-less method = nil, want an error (deny by default at start-up)")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	mem := ratelimit.NewMemory(time.Now, 0)
	limits := func(f func(*policy.Limits)) policy.Limits {
		l := defaultLimits()
		f(&l)
		return l
	}
	for name, cfg := range map[string]policy.Config{
		"no verifier":          {Limiter: mem, Limits: defaultLimits()},
		"no limiter":           {Verifier: env.Verifier, Limits: defaultLimits()},
		"zero money rate":      {Verifier: env.Verifier, Limiter: mem, Limits: limits(func(l *policy.Limits) { l.Money.Rate = 0 })},
		"no limits":            {Verifier: env.Verifier, Limiter: mem},
		"unnamed auth limit":   {Verifier: env.Verifier, Limiter: mem, Limits: limits(func(l *policy.Limits) { l.Auth.Name = "" })},
		"zero user period":     {Verifier: env.Verifier, Limiter: mem, Limits: limits(func(l *policy.Limits) { l.User.Period = 0 })},
		"negative public rate": {Verifier: env.Verifier, Limiter: mem, Limits: limits(func(l *policy.Limits) { l.Public.Rate = -1 })},
		"negative money burst": {Verifier: env.Verifier, Limiter: mem, Limits: limits(func(l *policy.Limits) { l.Money.Burst = -1 })},
	} {
		if _, err := policy.New(cfg); err == nil {
			t.Errorf("policy.New(%s) = nil error, want refused at start-up", name)
		}
	}
	// A burst of zero is the rate itself: allowed.
	if _, err := policy.New(policy.Config{Verifier: env.Verifier, Limiter: mem, Limits: limits(func(l *policy.Limits) { l.Money.Burst = 0 })}); err != nil {
		t.Errorf("policy.New(zero burst) = %v, want nil", err)
	}
}

// TestUpstreamTimeout: every upstream call carries the configured deadline,
// and a zero or negative timeout means DefaultTimeout, never a deadline
// that has already passed (every call failing) or none at all.
func TestUpstreamTimeout(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	tests := []struct {
		timeout, want time.Duration
	}{
		{0, policy.DefaultTimeout},
		{-time.Second, policy.DefaultTimeout},
		{time.Minute, time.Minute},
	}
	for _, tt := range tests {
		p, err := policy.New(policy.Config{Verifier: env.Verifier, Limiter: ratelimit.NewMemory(time.Now, 0),
			Limits: defaultLimits(), Services: services(), Timeout: tt.timeout})
		if err != nil {
			t.Fatalf("policy.New(timeout %v) = %v", tt.timeout, err)
		}
		n := &next{}
		ctx, _ := stateCtx()
		start := time.Now()
		if err := p.Conn(n).Invoke(ctx, "/bank.auth.v1.AuthService/GetJWKS", &authv1.GetJWKSRequest{}, &authv1.GetJWKSResponse{}); err != nil {
			t.Fatalf("Invoke(GetJWKS) with timeout %v = %v", tt.timeout, err)
		}
		// The deadline is set between start and now; allow for that much.
		if got := n.deadlines[0].Sub(start); got < tt.want || got > tt.want+time.Since(start) {
			t.Errorf("upstream deadline with timeout %v = now+%v, want now+%v", tt.timeout, got, tt.want)
		}
	}
}

func TestInvokeBuildsOnlyTrustedMetadata(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	p := newPolicy(t, env, ratelimit.NewMemory(time.Now, 0), defaultLimits())
	tok := env.Token(t, userID, "user")
	// Upstream always gets "Bearer " and the token, however the client
	// spelled the scheme.
	for _, scheme := range []string{"Bearer ", "bearer ", "BEARER "} {
		t.Run(scheme, func(t *testing.T) { invokeBuildsOnlyTrustedMetadata(t, p, scheme, tok) })
	}
}

func invokeBuildsOnlyTrustedMetadata(t *testing.T, p *policy.Policy, scheme, tok string) {
	ctx, st := stateCtx(scheme + tok)
	// Whatever grpc-gateway or anyone else put on the outgoing context is dropped.
	ctx = metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", "6.6.6.6", "role", "admin", "authorization", "Bearer forged")
	n := &next{}
	if err := p.Conn(n).Invoke(ctx, "/bank.auth.v1.AuthService/GetMe", &authv1.GetMeRequest{}, &authv1.GetMeResponse{}); err != nil {
		t.Fatalf("Invoke(GetMe) = %v", err)
	}
	want := metadata.Pairs("x-request-id", "req-1", "x-bank-client-ip", "198.51.100.7", "authorization", "Bearer "+tok)
	got := n.calls[0]
	if len(got) != len(want) {
		t.Errorf("upstream metadata has keys %v, want exactly %v", keys(got), keys(want))
	}
	for k, v := range want {
		if !slices.Equal(got.Get(k), v) {
			t.Errorf("upstream %s = %q, want %q", k, got.Get(k), v)
		}
	}
	if res, ok := st.RateLimit(); !ok || res.Limit.Name != "user" {
		t.Errorf("State rate limit = %+v, %v; want the user budget recorded", res, ok)
	}
}

func keys(md metadata.MD) []string {
	var out []string
	for k := range md {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestLimiterOutageFailsClosed(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	p := newPolicy(t, env, failingLimiter{}, defaultLimits())
	n := &next{}
	ctx, _ := stateCtx()
	err := p.Conn(n).Invoke(ctx, "/bank.auth.v1.AuthService/Login", &authv1.LoginRequest{}, &authv1.LoginResponse{})
	if errs.KindOf(err) != errs.Unavailable || len(n.calls) != 0 {
		t.Errorf("Invoke with the limiter down = %v (%d calls), want Unavailable and no call", err, len(n.calls))
	}
}

func TestMissingStateIsRefused(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	p := newPolicy(t, env, ratelimit.NewMemory(time.Now, 0), defaultLimits())
	n := &next{}
	err := p.Conn(n).Invoke(context.Background(), "/bank.auth.v1.AuthService/Login", &authv1.LoginRequest{}, &authv1.LoginResponse{})
	if err == nil || len(n.calls) != 0 {
		t.Errorf("Invoke without edge state = %v, want a refusal", err)
	}
}

func TestMoneyRoutesSpendBothBudgets(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	limits := policy.NewLimits(5, 4, 2, 5)
	p := newPolicy(t, env, ratelimit.NewMemory(time.Now, 0), limits)
	tok := env.Token(t, userID, "user")
	conn := p.Conn(&next{})
	var results []string
	for range 3 {
		ctx, st := stateCtx("Bearer " + tok)
		err := conn.Invoke(ctx, "/bank.transactions.v1.TransactionsService/CreateTransfer", &transactionsv1.CreateTransferRequest{}, &transactionsv1.CreateTransferResponse{})
		res, _ := st.RateLimit()
		results = append(results, errs.KindOf(err).String()+"/"+res.Limit.Name)
	}
	// Two transfers pass (transfers is the scarcer budget, so it is shown),
	// the third is refused by the transfers budget.
	want := []string{"other/transfers", "other/transfers", "rate_limited/transfers"}
	if !slices.Equal(results, want) {
		t.Errorf("transfer outcomes = %v, want %v", results, want)
	}
	// The user budget was spent three times: one read left, then refused.
	var reads []string
	for range 2 {
		ctx, _ := stateCtx("Bearer " + tok)
		reads = append(reads, errs.KindOf(conn.Invoke(ctx, "/bank.auth.v1.AuthService/GetMe", &authv1.GetMeRequest{}, &authv1.GetMeResponse{})).String())
	}
	if want := []string{"other", "rate_limited"}; !slices.Equal(reads, want) {
		t.Errorf("reads after three transfers = %v, want %v", reads, want)
	}
}

// TestPublicRoutesSpendTheirClassBudget: a route that takes credentials
// spends the small per-IP auth budget, every other public route the large
// public one; a login spending the public budget would allow fifteen times
// the guesses docs/api.md promises.
func TestPublicRoutesSpendTheirClassBudget(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	tests := []struct {
		method    string
		req, resp any
		want      []string // kind/budget shown, per call
	}{
		{"/bank.auth.v1.AuthService/Login", &authv1.LoginRequest{}, &authv1.LoginResponse{},
			[]string{"other/auth", "other/auth", "rate_limited/auth"}},
		{"/bank.auth.v1.AuthService/GetJWKS", &authv1.GetJWKSRequest{}, &authv1.GetJWKSResponse{},
			[]string{"other/public", "other/public", "other/public", "rate_limited/public"}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			p := newPolicy(t, env, ratelimit.NewMemory(time.Now, 0), policy.NewLimits(2, 100, 30, 3))
			var got []string
			for range tt.want {
				ctx, st := stateCtx()
				err := p.Conn(&next{}).Invoke(ctx, tt.method, tt.req, tt.resp)
				res, _ := st.RateLimit()
				got = append(got, errs.KindOf(err).String()+"/"+res.Limit.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Invoke(%s) outcomes = %v, want %v", tt.method, got, tt.want)
			}
		})
	}
}

func TestIdempotencyKeyIsCopiedFromTheHeader(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	p := newPolicy(t, env, ratelimit.NewMemory(time.Now, 0), defaultLimits())
	tok := env.Token(t, userID, "manager")
	tests := []struct {
		name    string
		keys    []string
		want    string
		wantErr bool
	}{
		{"header replaces body", []string{"hdr"}, "hdr", false},
		{"no header clears body", nil, "", false},
		{"two headers refused", []string{"a", "b"}, "", true},
		{"invalid UTF-8 refused", []string{"\xff\xfe"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, req := range []interface {
				GetIdempotencyKey() string
			}{
				&transactionsv1.CreateTransferRequest{IdempotencyKey: "from-body"},
				&transactionsv1.CreateDepositRequest{IdempotencyKey: "from-body"},
			} {
				n := &next{}
				ctx, st := stateCtx("Bearer " + tok)
				st.IdempotencyKeys = tc.keys
				method := "/bank.transactions.v1.TransactionsService/CreateTransfer"
				if _, ok := req.(*transactionsv1.CreateDepositRequest); ok {
					method = "/bank.transactions.v1.TransactionsService/CreateDeposit"
				}
				err := p.Conn(n).Invoke(ctx, method, req, &transactionsv1.CreateTransferResponse{})
				if (err != nil) != tc.wantErr {
					t.Fatalf("Invoke(%s) = %v, want error %v", method, err, tc.wantErr)
				}
				if tc.wantErr {
					if errs.KindOf(err) != errs.Invalid || len(n.calls) != 0 {
						t.Errorf("Invoke(%s) = %v with %d calls, want Invalid and none", method, err, len(n.calls))
					}
					continue
				}
				if got := req.GetIdempotencyKey(); got != tc.want {
					t.Errorf("%s idempotency key = %q, want %q", method, got, tc.want)
				}
			}
		})
	}
}

func TestRolesCheckedAtTheEdge(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	p := newPolicy(t, env, ratelimit.NewMemory(time.Now, 0), defaultLimits())
	tests := []struct {
		roles []string
		kind  errs.Kind
	}{
		{[]string{"user"}, errs.Permission},
		{[]string{"manager"}, errs.Permission},
		{[]string{"admin"}, errs.Other},
	}
	for _, tc := range tests {
		n := &next{}
		ctx, _ := stateCtx("Bearer " + env.Token(t, userID, tc.roles...))
		err := p.Conn(n).Invoke(ctx, "/bank.auth.v1.AuthService/SetUserRoles", &authv1.SetUserRolesRequest{}, &authv1.SetUserRolesResponse{})
		if errs.KindOf(err) != tc.kind {
			t.Errorf("SetUserRoles as %v = %v, want kind %v", tc.roles, err, tc.kind)
		}
	}
}

func TestTokensWaitForTheRevocationFeed(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	var synced bool
	cnt := &tokenCounts{}
	p, err := policy.New(policy.Config{
		Verifier: env.Verifier, Limiter: ratelimit.NewMemory(time.Now, 0), Limits: defaultLimits(),
		Services: services(), RevocationsSynced: func() bool { return synced }, Counters: cnt,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := env.Token(t, userID, "user")
	call := func(method string, req, resp any) error {
		ctx, _ := stateCtx("Bearer " + tok)
		return p.Conn(&next{}).Invoke(ctx, method, req, resp)
	}
	if err := call("/bank.auth.v1.AuthService/GetMe", &authv1.GetMeRequest{}, &authv1.GetMeResponse{}); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("GetMe before the first snapshot = %v, want Unavailable", err)
	}
	if got := cnt.reasons(); len(got) != 1 || got[0] != refusal.ReasonUnsynced {
		t.Errorf("token rejections before the first snapshot = %v, want [%s]", got, refusal.ReasonUnsynced)
	}
	if err := call("/bank.auth.v1.AuthService/Login", &authv1.LoginRequest{}, &authv1.LoginResponse{}); err != nil {
		t.Errorf("Login before the first snapshot = %v, want it served (no token involved)", err)
	}
	synced = true
	if err := call("/bank.auth.v1.AuthService/GetMe", &authv1.GetMeRequest{}, &authv1.GetMeResponse{}); err != nil {
		t.Errorf("GetMe after the snapshot = %v, want nil", err)
	}
	if got := cnt.reasons(); len(got) != 1 {
		t.Errorf("token rejections after the snapshot = %v, want no new ones", got)
	}
}

// tokenCounts records the token rejection reasons it is told about.
type tokenCounts struct {
	mu   sync.Mutex
	seen []string
}

func (c *tokenCounts) TokenRejected(_ context.Context, r string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, r)
}
func (*tokenCounts) AuthzDenied(context.Context, string)      {}
func (*tokenCounts) ValidationFailed(context.Context, string) {}
func (*tokenCounts) RateLimited(context.Context, string)      {}

func (c *tokenCounts) reasons() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}
