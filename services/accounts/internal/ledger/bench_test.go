package ledger_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/benchcpu"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger/ledgertest"
)

// counted is a LedgerServiceClient that counts the GetBalances calls it
// passes on.
type counted struct {
	transactionsv1.LedgerServiceClient
	calls atomic.Int64
}

func (c *counted) GetBalances(ctx context.Context, in *transactionsv1.GetBalancesRequest, opts ...grpc.CallOption) (*transactionsv1.GetBalancesResponse, error) {
	c.calls.Add(1)
	return c.LedgerServiceClient.GetBalances(ctx, in, opts...)
}

// BenchmarkBalanceReads is 64 readers (32 per -cpu) each asking for one
// account's balance, as GET /v1/accounts/{id} does, over a real mTLS hop
// to the fake ledger behind the real interceptor chain, both in this
// process. It reports the GetBalances calls per read and the process's CPU
// per read (cpu-ns/op: user + system, the ledger server's share included).
func BenchmarkBalanceReads(b *testing.B) {
	env := grpctest.New(b)
	fake := domaintest.NewLedger()
	addr := env.Serve(b, "transactions", func(g *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(g, &ledgertest.Server{Ledger: fake})
	}, func(c *grpcserver.Config) {
		// The backstop would refuse a benchmark's pace; it still runs.
		c.CallerLimit = ratelimit.Limit{Name: "caller", Rate: 1e9, Period: time.Second, Burst: 1e9}
	})
	c := &counted{LedgerServiceClient: transactionsv1.NewLedgerServiceClient(env.Dial(b, "accounts", addr, "transactions"))}
	l := ledger.New(c)
	ids := make([]string, 256)
	for i := range ids {
		ids[i] = uuid.NewString()
		if err := fake.OpenAccount(context.Background(), domain.Account{ID: ids[i], Currency: "EUR"}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := l.Balances(context.Background(), ids[:1]); err != nil { // warm the connection
		b.Fatal(err)
	}
	var next atomic.Int64
	c.calls.Store(0)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	before := benchcpu.Time(b)
	b.RunParallel(func(pb *testing.PB) {
		id := ids[next.Add(1)%int64(len(ids))]
		for pb.Next() {
			if _, err := l.Balances(context.Background(), []string{id}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	benchcpu.Report(b, before)
	b.ReportMetric(float64(c.calls.Load())/float64(b.N), "calls/op")
}
