package grpcclient_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpctest"
)

type slowLedger struct {
	transactionsv1.UnimplementedLedgerServiceServer
	sawDeadline chan bool
}

func (s slowLedger) GetBalances(ctx context.Context, _ *transactionsv1.GetBalancesRequest) (*transactionsv1.GetBalancesResponse, error) {
	_, ok := ctx.Deadline()
	s.sawDeadline <- ok
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s slowLedger) OpenLedgerAccount(context.Context, *transactionsv1.OpenLedgerAccountRequest) (*transactionsv1.OpenLedgerAccountResponse, error) {
	return nil, errs.Reasoned(errs.Refused, "currency", "unsupported currency")
}

func TestEveryCallHasADeadlineAndKindsComeBack(t *testing.T) {
	env := grpctest.New(t)
	srv := slowLedger{sawDeadline: make(chan bool, 1)}
	addr := env.Serve(t, "transactions", func(s *grpc.Server) { transactionsv1.RegisterLedgerServiceServer(s, srv) })
	conn, err := grpcclient.Dial(addr, env.Source(t, "accounts").ClientCredentials("transactions"), grpcclient.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := transactionsv1.NewLedgerServiceClient(conn)
	start := time.Now()
	_, err = c.GetBalances(context.Background(), &transactionsv1.GetBalancesRequest{AccountIds: []string{"aaaaaaaa-0000-4000-8000-000000000001"}})
	if !<-srv.sawDeadline {
		t.Error("the server saw no deadline")
	}
	if errs.KindOf(err) != errs.Unavailable || time.Since(start) > 3*time.Second {
		t.Errorf("slow call = %v after %v, want unavailable within the deadline", err, time.Since(start))
	}
	_, err = c.OpenLedgerAccount(context.Background(), &transactionsv1.OpenLedgerAccountRequest{
		AccountId: "aaaaaaaa-0000-4000-8000-000000000001", OwnerId: "aaaaaaaa-0000-4000-8000-000000000002", Currency: "EUR"})
	if e, ok := errs.As(err); !ok || e.Kind != errs.Refused || e.Reason != "currency" {
		t.Errorf("refused call = %v, want the kind and reason back", err)
	}
	if _, err := grpcclient.Dial(addr, nil, grpcclient.Options{}); err == nil {
		t.Error("Dial without credentials succeeded")
	}
	plain, _ := grpcclient.Dial(addr, insecure.NewCredentials(), grpcclient.Options{})
	defer plain.Close()
	if _, err := transactionsv1.NewLedgerServiceClient(plain).GetBalances(context.Background(), &transactionsv1.GetBalancesRequest{}); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("plaintext call to an mTLS server = %v, want unavailable", err)
	}
}
