package grpcserver_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/wire"
)

// denials is a DenialRecorder that keeps what it is given and then fails,
// like an audit store that is down.
type denials struct {
	mu     sync.Mutex
	got    []identity.Denial
	broken []string // how a write's context was unfit, if it was
}

func (d *denials) RecordDenial(ctx context.Context, den identity.Denial) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, den)
	if _, ok := ctx.Deadline(); !ok || ctx.Err() != nil {
		d.broken = append(d.broken, den.Reason)
	}
	return errors.New("audit store down") // must not change the refusal
}

// TestAuditDenials: every denial the chain decides is counted and also
// handed to Config.Denials, resolved: the actor (the user, else the calling
// service, even when the caller was refused before it was put on the
// context), the reason, the refused method and the client's address.
func TestAuditDenials(t *testing.T) {
	env := grpctest.New(t)
	cnt := &counters{}
	rec := &denials{}
	addr := env.Serve(t, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, &accounts{})
	}, grpctest.WithOwners(owners), grpctest.WithCounters(cnt), func(c *grpcserver.Config) { c.Denials = rec })

	intruder := accountsv1.NewAccountsServiceClient(env.Dial(t, "intruder", addr, "accounts"))
	if _, err := intruder.GetAccount(ctxAs(t, env.Token(t, alice, "user")), &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err == nil {
		t.Fatal("intruder was let in")
	}
	gw := accountsv1.NewAccountsServiceClient(env.Dial(t, "gateway", addr, "accounts"))
	ctx := metadata.AppendToOutgoingContext(ctxAs(t, env.Token(t, bob, "user")), wire.ClientIP, "198.51.100.7")
	if _, err := gw.GetAccount(ctx, &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err == nil {
		t.Fatal("bob read alice's account")
	}
	want := []identity.Denial{
		{Action: "authz.denied", Actor: "service:intruder", Reason: "caller_not_allowed", Method: "/bank.accounts.v1.AccountsService/GetAccount"},
		{Action: "authz.denied", Actor: bob, Reason: "not_owner", Method: "/bank.accounts.v1.AccountsService/GetAccount", ClientIP: "198.51.100.7"},
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != len(want) {
		t.Fatalf("audited %+v, want %+v", rec.got, want)
	}
	for i := range want {
		if rec.got[i] != want[i] {
			t.Errorf("audit %d = %+v, want %+v", i, rec.got[i], want[i])
		}
	}
	if len(rec.broken) != 0 {
		t.Errorf("audit writes without a deadline, or already cancelled: %v", rec.broken)
	}
	if !cnt.has("authz:caller_not_allowed") || !cnt.has("authz:not_owner") {
		t.Errorf("denials not counted: %v", cnt.seen)
	}
}
