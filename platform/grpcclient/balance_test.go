package grpcclient_test

import (
	"context"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpctest"
)

// countingLedger counts the calls one replica answers.
type countingLedger struct {
	transactionsv1.UnimplementedLedgerServiceServer
	calls *atomic.Int64
}

func (l countingLedger) GetBalances(context.Context, *transactionsv1.GetBalancesRequest) (*transactionsv1.GetBalancesResponse, error) {
	l.calls.Add(1)
	return &transactionsv1.GetBalancesResponse{}, nil
}

// TestCallsAreSpreadOverReplicas: when the name resolves to several
// replicas (a headless Kubernetes Service gives one address per pod),
// calls go round robin over all of them rather than sticking to the first
// connection, so a new replica takes load without every client reconnecting.
func TestCallsAreSpreadOverReplicas(t *testing.T) {
	env := grpctest.New(t)
	var calls [3]atomic.Int64
	var addrs []resolver.Address
	for i := range calls {
		addr := env.Serve(t, "transactions", func(s *grpc.Server) {
			transactionsv1.RegisterLedgerServiceServer(s, countingLedger{calls: &calls[i]})
		})
		addrs = append(addrs, resolver.Address{Addr: addr})
	}
	r := manual.NewBuilderWithScheme("replicas")
	r.InitialState(resolver.State{Addresses: addrs})
	resolver.Register(r)

	conn, err := grpcclient.Dial("replicas:///transactions", env.Source(t, "accounts").ClientCredentials("transactions"), grpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := transactionsv1.NewLedgerServiceClient(conn)
	const n = 30
	for range n {
		if _, err := c.GetBalances(t.Context(), &transactionsv1.GetBalancesRequest{AccountIds: []string{"aaaaaaaa-0000-4000-8000-000000000001"}}); err != nil {
			t.Fatalf("GetBalances: %v", err)
		}
	}
	for i := range calls {
		// Round robin over ready replicas; the first calls may all go to the
		// replicas that finished their handshake first, so allow slack.
		if got := calls[i].Load(); got < int64(n/len(calls)/2) {
			t.Errorf("replica %d answered %d of %d calls, want about %d each", i, got, n, n/len(calls))
		}
	}
}
