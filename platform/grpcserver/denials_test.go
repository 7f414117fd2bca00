package grpcserver_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"google.golang.org/grpc"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/mtls"
)

// TestAuditDenials: every denial the chain decides is counted and also
// handed to the service's audit trail with the refused method and the
// caller, even when the caller was refused before it was put on the context.
func TestAuditDenials(t *testing.T) {
	env := grpctest.New(t)
	cnt := &counters{}
	type audited struct{ action, reason, method, service, user string }
	var mu sync.Mutex
	var got []audited
	audit := func(ctx context.Context, action, reason, method string) error {
		s, _ := identity.ServiceFrom(ctx)
		u, _ := identity.UserFrom(ctx)
		mu.Lock()
		got = append(got, audited{action, reason, method, s, u.ID})
		mu.Unlock()
		return errors.New("audit store down") // must not change the refusal
	}
	peer := func(ctx context.Context) (string, error) { return mtls.ServiceFromPeer(ctx, grpctest.TrustDomain) }
	addr := env.Serve(t, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, &accounts{})
	}, grpctest.WithOwners(owners), grpctest.WithCounters(grpcserver.AuditDenials(cnt, audit, peer, env.Logger)))

	intruder := accountsv1.NewAccountsServiceClient(env.Dial(t, "intruder", addr, "accounts"))
	if _, err := intruder.GetAccount(ctxAs(t, env.Token(t, alice, "user")), &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err == nil {
		t.Fatal("intruder was let in")
	}
	gw := accountsv1.NewAccountsServiceClient(env.Dial(t, "gateway", addr, "accounts"))
	if _, err := gw.GetAccount(ctxAs(t, env.Token(t, bob, "user")), &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err == nil {
		t.Fatal("bob read alice's account")
	}
	want := []audited{
		{"authz.denied", "caller_not_allowed", "/bank.accounts.v1.AccountsService/GetAccount", "intruder", ""},
		{"authz.denied", "not_owner", "/bank.accounts.v1.AccountsService/GetAccount", "gateway", bob},
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("audited %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("audit %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !cnt.has("authz:caller_not_allowed") || !cnt.has("authz:not_owner") {
		t.Errorf("denials not counted: %v", cnt.seen)
	}
}
