package grpcserver_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"

	"github.com/bastion-bank/bastion/platform/benchcpu"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// benchCallers is the client concurrency of BenchmarkChain, as many calls in
// flight as services/transactions' BenchmarkTransfer has clients.
const benchCallers = 64

// benchAccounts answers GetAccount at once, so that the benchmark measures
// the hop and the chain, not a handler.
type benchAccounts struct {
	accountsv1.UnimplementedAccountsServiceServer
}

func (benchAccounts) GetAccount(_ context.Context, req *accountsv1.GetAccountRequest) (*accountsv1.GetAccountResponse, error) {
	return &accountsv1.GetAccountResponse{Account: &accountsv1.Account{Id: req.GetAccountId()}}, nil
}

// BenchmarkChain is the gRPC hop between two Bastion services with every
// control on: the platform client (grpcclient) calls a platform server
// (grpcserver) over mutual TLS on loopback as the gateway for a user, so
// every step of the chain runs, the ownership check and protovalidate
// included; benchCallers calls are in flight at a time. Besides wall time it
// reports the process's CPU time per call (cpu-ns/op, client, server and
// garbage collector together), which other load on the machine disturbs
// less than ns/op.
func BenchmarkChain(b *testing.B) {
	env := grpctest.New(b)
	addr := env.Serve(b, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, benchAccounts{})
	}, grpctest.WithOwners(owners), func(c *grpcserver.Config) {
		// The backstop would refuse a benchmark's rate; it still runs,
		// at its finest valid interval.
		c.CallerLimit = ratelimit.Limit{Name: "caller", Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	})
	client := accountsv1.NewAccountsServiceClient(env.Dial(b, "gateway", addr, "accounts"))
	ctx := grpctest.AsUser(context.Background(), env.Token(b, alice, "user"))
	req := &accountsv1.GetAccountRequest{AccountId: aliceAcct}
	if _, err := client.GetAccount(ctx, req); err != nil {
		b.Fatalf("GetAccount: %v", err)
	}
	b.SetParallelism(max(1, benchCallers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	before := benchcpu.Time(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.GetAccount(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	benchcpu.Report(b, before)
}
