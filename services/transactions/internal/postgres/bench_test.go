package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/benchcpu"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// BenchmarkStoreTransfer measures transfers through the domain service and
// the Postgres store, without gRPC, with the audit sealer running beside
// them on the same pool, as in the service. Each client sends from an
// account of its own to random accounts (as many users do, rather than all
// fighting over one row). With 16 clients the group commit batches; with
// one, every transfer runs alone (moveOne), so ns/op is the latency of a
// transfer on an idle ledger, which its round trips decide. It reports the
// benchmark process's CPU per transfer (cpu-ns/op: the store's Go side) and
// the WAL the server wrote per transfer, sealing included: the whole
// server's, so it is the ledger's only on a server nothing else writes to.
func BenchmarkStoreTransfer(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchStoreTransfer(b, clients) })
	}
}

func benchStoreTransfer(b *testing.B, clients int) {
	e := newEnv(b, withConns(int32(clients)), withLimits(domain.Limits{ApprovalThreshold: 1 << 50, MaxTransfer: 1 << 50, DailyLimit: 1 << 50, DepositDailyLimit: 1 << 50}))
	type sender struct {
		user identity.User
		acct string
	}
	senders := make([]sender, clients*2)
	accts := make([]string, len(senders))
	for i := range senders {
		u := user()
		senders[i] = sender{u, e.open(u, "EUR")}
		accts[i] = senders[i].acct
		e.fund(senders[i].acct, 1<<40, "EUR")
	}
	stopSealing := audit.New(postgres.Schema, time.Now).StartSealer(e.pool, slog.New(slog.DiscardHandler))
	walStart := e.walLSN()
	var next atomic.Int64
	pick := func(r *rand.Rand, self int) string {
		j := r.IntN(len(accts) - 1)
		if j >= self {
			j++
		}
		return accts[j]
	}
	cpu := benchcpu.Time(b)
	b.ResetTimer()
	send := func(r *rand.Rand, self int) {
		s := senders[self]
		if _, err := e.svc.Transfer(context.Background(), s.user, domain.TransferRequest{
			From: s.acct, To: pick(r, self), Amount: 1, Currency: "EUR", IdempotencyKey: uuid.NewString()}); err != nil {
			b.Fatal(err)
		}
	}
	if clients == 1 {
		// RunParallel runs at least GOMAXPROCS goroutines; one client is a loop.
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for b.Loop() {
			send(r, 0)
		}
	} else {
		b.SetParallelism(max(1, clients/testingProcs()))
		b.RunParallel(func(pb *testing.PB) {
			self := int(next.Add(1)-1) % len(senders)
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for pb.Next() {
				send(r, self)
			}
		})
	}
	b.StopTimer()
	benchcpu.Report(b, cpu)
	stopSealing()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	var wal int64
	if err := e.pool.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff($1, $2)::bigint`, e.walLSN(), walStart).Scan(&wal); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(wal)/float64(b.N), "WAL-B/transfer")
}

// walLSN returns the server's current WAL position.
func (e *env) walLSN() string {
	e.t.Helper()
	var lsn string
	if err := e.pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		e.t.Fatal(err)
	}
	return lsn
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
