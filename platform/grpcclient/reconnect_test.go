package grpcclient_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/mtls"
)

// TestReconnectsSoonAfterALongOutage kills a real upstream, keeps calling it
// through a 45 s outage as a loaded client would, brings it back on the same
// address and measures how long until calls succeed again. With gRPC's
// default backoff (growing to 120 s) that was 27–31 s after a 45 s outage;
// it must be within 5 s of the upstream listening again, whatever the
// outage's length.
func TestReconnectsSoonAfterALongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("a 45 s outage")
	}
	t.Parallel()
	const outage, budget = 45 * time.Second, 5 * time.Second
	env := grpctest.New(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	stop := serveLedger(t, env, lis)

	conn, err := grpcclient.Dial(addr, env.Source(t, "accounts").ClientCredentials("transactions"), grpcclient.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := transactionsv1.NewLedgerServiceClient(conn)
	call := func() error {
		_, err := c.GetBalances(t.Context(), &transactionsv1.GetBalancesRequest{AccountIds: []string{"aaaaaaaa-0000-4000-8000-000000000001"}})
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("GetBalances before the outage: %v", err)
	}

	stop()
	for end := time.Now().Add(outage); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if err := call(); err == nil {
			t.Fatal("GetBalances succeeded with the upstream down")
		}
	}
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	back := time.Now()
	serveLedger(t, env, lis)
	for call() != nil {
		if time.Since(back) > budget {
			t.Fatalf("calls still failing %v after the upstream came back from a %v outage, want within %v", time.Since(back).Round(time.Millisecond), outage, budget)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("calls succeed again %v after the upstream came back from a %v outage", time.Since(back).Round(time.Millisecond), outage)
}

// serveLedger serves a ledger that answers every call on lis, through the
// platform's server, and returns a function that stops it at once.
func serveLedger(t *testing.T, env *grpctest.Env, lis net.Listener) (stop func()) {
	t.Helper()
	srv, err := grpcserver.New(grpcserver.Config{
		Name:        "transactions",
		Credentials: env.Source(t, "transactions").ServerCredentials(),
		Peer:        func(ctx context.Context) (string, error) { return mtls.ServiceFromPeer(ctx, grpctest.TrustDomain) },
		Verifier:    env.Verifier,
		Logger:      env.Logger,
		StopTimeout: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	transactionsv1.RegisterLedgerServiceServer(srv.GRPC(), countingLedger{calls: new(atomic.Int64)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}
