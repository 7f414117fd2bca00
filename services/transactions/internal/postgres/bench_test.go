package postgres_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// BenchmarkStoreTransfer measures transfers through the domain service and
// the Postgres store, without gRPC, from 16 concurrent clients, each sending
// from an account of its own to random accounts (as many users do, rather
// than all fighting over one row), with the audit sealer running beside
// them on the same pool, as in the service. It also reports the WAL the
// server wrote per transfer, sealing included: the whole server's, so it is
// the ledger's only on a server nothing else writes to.
func BenchmarkStoreTransfer(b *testing.B) {
	const clients = 16
	e := newEnv(b, withConns(clients), withLimits(domain.Limits{ApprovalThreshold: 1 << 50, MaxTransfer: 1 << 50, DailyLimit: 1 << 50, DepositDailyLimit: 1 << 50}))
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
	b.SetParallelism(clients / max(1, testingProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		self := int(next.Add(1)-1) % len(senders)
		s := senders[self]
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			to := pick(r, self)
			if _, err := e.svc.Transfer(context.Background(), s.user, domain.TransferRequest{
				From: s.acct, To: to, Amount: 1, Currency: "EUR", IdempotencyKey: uuid.NewString()}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
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
