package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
)

// parkedAccounts holds every GetAccount for aliceAcct until release is
// closed, and answers any other account at once.
type parkedAccounts struct {
	accountsv1.UnimplementedAccountsServiceServer
	parked  chan struct{}
	release chan struct{}
}

func (p *parkedAccounts) GetAccount(ctx context.Context, req *accountsv1.GetAccountRequest) (*accountsv1.GetAccountResponse, error) {
	if req.GetAccountId() == aliceAcct {
		p.parked <- struct{}{}
		select {
		case <-p.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &accountsv1.GetAccountResponse{Account: &accountsv1.Account{Id: req.GetAccountId()}}, nil
}

// TestBusyStreamWorkersDoNotQueueCalls holds more calls than the server has
// stream workers and checks that one more is still served at once, through
// the whole chain: the workers only save stack growth, they never make a
// call wait for another.
func TestBusyStreamWorkersDoNotQueueCalls(t *testing.T) {
	for _, workers := range []uint32{1, 2} {
		env := grpctest.New(t)
		svc := &parkedAccounts{parked: make(chan struct{}), release: make(chan struct{})}
		addr := env.Serve(t, "accounts", func(s *grpc.Server) { accountsv1.RegisterAccountsServiceServer(s, svc) },
			grpctest.WithOwners(owners), func(c *grpcserver.Config) { c.StreamWorkers = workers })
		client := accountsv1.NewAccountsServiceClient(env.Dial(t, "gateway", addr, "accounts"))
		ctx := ctxAs(t, env.Token(t, alice, "user"))

		held := int(workers) + 1
		done := make(chan error, held)
		for range held {
			go func() {
				_, err := client.GetAccount(ctx, &accountsv1.GetAccountRequest{AccountId: aliceAcct})
				done <- err
			}()
			<-svc.parked
		}
		quick, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.GetAccount(quick, &accountsv1.GetAccountRequest{AccountId: missing})
		cancel()
		if errs.KindOf(err) != errs.NotFound {
			t.Errorf("workers %d, %d calls held: GetAccount(another account) = %v, want NotFound from the owner check at once", workers, held, err)
		}
		close(svc.release)
		for range held {
			if err := <-done; err != nil {
				t.Errorf("workers %d: held GetAccount = %v, want success once released", workers, err)
			}
		}
	}
}
