package grpcserver_test

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// docSteps reads the numbered list of the chain's steps from
// docs/architecture.md: lines such as "3. `errors`: ...".
func docSteps(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	item := regexp.MustCompile("^[0-9]+\\. `([a-z_]+)`")
	var names []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "The chain every gRPC server runs"):
			in = true
		case in && item.MatchString(line):
			names = append(names, item.FindStringSubmatch(line)[1])
		case in && len(names) > 0 && strings.HasPrefix(line, "#"):
			in = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestStepsFollowTheArchitectureDoc holds the chain's order and the order
// docs/architecture.md gives to each other, so neither can drift.
func TestStepsFollowTheArchitectureDoc(t *testing.T) {
	env := grpctest.New(t)
	srv, err := grpcserver.New(grpcserver.Config{
		Name:        "accounts",
		Credentials: env.Source(t, "accounts").ServerCredentials(),
		Peer:        func(ctx context.Context) (string, error) { return mtls.ServiceFromPeer(ctx, grpctest.TrustDomain) },
		Logger:      env.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := docSteps(t)
	if got := srv.Steps(); len(doc) == 0 || !slices.Equal(got, doc) {
		t.Errorf("Steps() = %v, docs/architecture.md lists %v", got, doc)
	}
}

// tenantStep is a service's own control: it records what it saw of each
// call and refuses bob.
type tenantStep struct {
	mu   sync.Mutex
	seen []string // method, user, stream
}

func (ts *tenantStep) step() grpcserver.Step {
	return grpcserver.Step{Name: "tenant", Run: func(ctx context.Context, c *grpcserver.Call, next grpcserver.Next) error {
		u, _ := identity.UserFrom(ctx)
		svc, _ := identity.ServiceFrom(ctx)
		ts.mu.Lock()
		ts.seen = append(ts.seen, strings.Join([]string{c.Method, c.Rule.Method, svc, u.ID, map[bool]string{true: "stream", false: "unary"}[c.Stream]}, " "))
		ts.mu.Unlock()
		if u.ID == bob {
			return &rbac.Denied{Reason: "tenant", Err: errs.New(errs.Permission, "permission denied")}
		}
		return next(ctx)
	}}
}

// TestAServiceAppendsAStep: a step given in Config.Steps runs after the
// built-in chain (it sees the verified caller, user and rule) on unary calls
// and streams, before the handler, and a denial it returns is counted and
// audited like the platform's own. No edit to platform/ needed.
func TestAServiceAppendsAStep(t *testing.T) {
	env := grpctest.New(t)
	cnt, rec, ts := &counters{}, &denials{}, &tenantStep{}
	svc := &accounts{}
	addr := env.Serve(t, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, svc)
		authv1.RegisterRevocationServiceServer(s, revocations{})
	}, grpctest.WithOwners(owners), grpctest.WithCounters(cnt), func(c *grpcserver.Config) {
		c.Denials = rec
		c.Steps = append(c.Steps, ts.step())
	})
	gw := accountsv1.NewAccountsServiceClient(env.Dial(t, "gateway", addr, "accounts"))
	if _, err := gw.GetAccount(ctxAs(t, env.Token(t, alice, "user")), &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err != nil {
		t.Fatalf("GetAccount as alice = %v", err)
	}
	// A manager passes the owner check, so only the service's step stands in bob's way.
	if _, err := gw.GetAccount(ctxAs(t, env.Token(t, bob, "user", "manager")), &accountsv1.GetAccountRequest{AccountId: aliceAcct}); errs.KindOf(err) != errs.Permission {
		t.Fatalf("GetAccount as bob = %v, want Permission from the service's step", err)
	}
	if svc.seen().user.ID != alice {
		t.Errorf("handler last saw %q, want alice: bob's call must not reach it", svc.seen().user.ID)
	}
	feed := authv1.NewRevocationServiceClient(env.Dial(t, "accounts", addr, "accounts"))
	st, err := feed.WatchRevocations(ctxAs(t, ""), &authv1.WatchRevocationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("WatchRevocations.Recv = %v", err)
	}
	get := "/bank.accounts.v1.AccountsService/GetAccount"
	watch := "/bank.auth.v1.RevocationService/WatchRevocations"
	want := []string{
		get + " " + get + " gateway " + alice + " unary",
		get + " " + get + " gateway " + bob + " unary",
		watch + " " + watch + " accounts  stream",
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !slices.Equal(ts.seen, want) {
		t.Errorf("the service's step saw\n%q\nwant\n%q", ts.seen, want)
	}
	if !cnt.has("authz:tenant") {
		t.Errorf("the step's denial was not counted: %v", cnt.seen)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 1 || rec.got[0].Reason != "tenant" || rec.got[0].Actor != bob || rec.got[0].Method != get {
		t.Errorf("audited %+v, want bob's tenant denial of GetAccount", rec.got)
	}
}

// TestStepsNeedDistinctNames: a service step may not take a built-in
// step's name, nor come without a Run.
func TestStepsNeedDistinctNames(t *testing.T) {
	env := grpctest.New(t)
	base := grpcserver.Config{
		Name:        "accounts",
		Credentials: env.Source(t, "accounts").ServerCredentials(),
		Peer:        func(ctx context.Context) (string, error) { return mtls.ServiceFromPeer(ctx, grpctest.TrustDomain) },
		Logger:      env.Logger,
	}
	run := func(ctx context.Context, _ *grpcserver.Call, next grpcserver.Next) error { return next(ctx) }
	for name, steps := range map[string][]grpcserver.Step{
		"a built-in name": {{Name: "owner", Run: run}},
		"no name":         {{Run: run}},
		"no run":          {{Name: "tenant"}},
		"twice":           {{Name: "tenant", Run: run}, {Name: "tenant", Run: run}},
	} {
		cfg := base
		cfg.Steps = steps
		if _, err := grpcserver.New(cfg); err == nil {
			t.Errorf("New with %s = nil error, want it refused", name)
		}
	}
}
