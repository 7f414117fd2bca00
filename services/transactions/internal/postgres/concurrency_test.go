package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// TestConcurrentTransfersConserveMoney fires thousands of transfers from
// many goroutines at a few accounts: random pairs in both directions,
// dedicated A→B / B→A ping-pong, and drains where several goroutines try to
// send the same account's whole balance at once. Afterwards no money was
// created or lost, no balance went negative, every posted transfer has its
// two entries, every account's history adds up, and no client ever saw a
// deadlock or serialization failure (any error other than a business
// refusal fails the test).
func TestConcurrentTransfersConserveMoney(t *testing.T) {
	t.Parallel()
	const (
		users       = 8
		perUser     = 3
		workers     = 50
		perWorker   = 100
		seed        = 5_000
		maxAmount   = 2_000
		drainRounds = 20
	)
	e := newEnv(t, withConns(16), withLimits(domain.Limits{ApprovalThreshold: 1 << 50, MaxTransfer: 1 << 50, DailyLimit: 1 << 50}))
	owners := make([]identity.User, users)
	var accts []string
	ownerOf := map[string]identity.User{}
	for i := range owners {
		owners[i] = user()
		for range perUser {
			id := e.open(owners[i], "EUR")
			e.fund(id, seed, "EUR")
			accts = append(accts, id)
			ownerOf[id] = owners[i]
		}
	}
	var completed, refused atomic.Int64
	var unexpected atomic.Int64
	send := func(from, to string, amount int64) {
		_, err := e.svc.Transfer(context.Background(), ownerOf[from], domain.TransferRequest{
			From: from, To: to, Amount: amount, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		switch {
		case err == nil:
			completed.Add(1)
		case sameErr(err, domain.ErrInsufficientFunds):
			refused.Add(1)
		default:
			if unexpected.Add(1) <= 5 {
				t.Errorf("Transfer(%s→%s, %d) = %v (kind %v), want nil or insufficient funds", from, to, amount, err, errs.KindOf(err))
			}
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range perWorker {
				switch {
				case w < 10: // ping-pong between a fixed pair, alternating direction
					a, b := accts[(w%5)*2], accts[(w%5)*2+1]
					if i%2 == 1 {
						a, b = b, a
					}
					send(a, b, 1+r.Int64N(maxAmount))
				case w < 15 && i < drainRounds: // drains: everyone empties account 10+round at once
					fi := 10 + i%4
					from := accts[fi]
					send(from, accts[(fi+1+w%10)%len(accts)], max(e.money(from).Balance, 1))
				default:
					from := accts[r.IntN(len(accts))]
					to := accts[r.IntN(len(accts))]
					if from == to {
						to = accts[(r.IntN(len(accts)-1)+1+indexOf(accts, from))%len(accts)]
					}
					send(from, to, 1+r.Int64N(maxAmount))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d transfers in %v (%.0f/s): %d completed, %d refused for funds",
		workers*perWorker, elapsed.Round(time.Millisecond), float64(workers*perWorker)/elapsed.Seconds(), completed.Load(), refused.Load())
	st := e.store.Stats()
	t.Logf("group commit: %d movements in %d transactions (largest %d, %d failed and ran alone)", st.Moves, st.Batches, st.Largest, st.Failed)
	if st.Largest < 2 {
		t.Errorf("largest batch = %d: no two transfers were committed together, so the storm tested no batch", st.Largest)
	}

	var total, negative, held int64
	for _, id := range accts {
		m := e.money(id)
		total += m.Balance
		held += m.Held
		if m.Balance < 0 {
			negative++
		}
	}
	if want := int64(len(accts) * seed); total != want || negative != 0 || held != 0 {
		t.Errorf("after the storm: total %d (want %d), %d negative balances, %d held; want money conserved", total, want, negative, held)
	}
	posted := e.count(`SELECT count(*) FROM ledger.transfers WHERE kind = 'transfer' AND from_account_id = ANY($1::uuid[])`, accts)
	entries := e.count(`SELECT count(*) FROM ledger.entries e JOIN ledger.transfers t ON t.id = e.transfer_id
		WHERE t.kind = 'transfer' AND e.account_id = ANY($1::uuid[])`, accts)
	if int64(posted) != completed.Load() || entries != 2*posted {
		t.Errorf("posted transfers %d, entries %d, client saw %d completed; want entries = 2 × completed", posted, entries, completed.Load())
	}
	// Each account's history adds up: every balance_after is the previous
	// one plus the entry, and the last one is the balance.
	gaps := e.count(`SELECT count(*) FROM (
		SELECT balance_after - amount - lag(balance_after, 1, 0::bigint) OVER (PARTITION BY account_id ORDER BY seq) AS gap
		FROM ledger.entries WHERE account_id = ANY($1::uuid[])) h WHERE gap <> 0`, accts)
	stale := e.count(`SELECT count(*) FROM ledger.accounts a WHERE a.id = ANY($1::uuid[]) AND a.balance <> (
		SELECT e.balance_after FROM ledger.entries e WHERE e.account_id = a.id ORDER BY e.seq DESC LIMIT 1)`, accts)
	if gaps != 0 || stale != 0 {
		t.Errorf("histories: %d entries whose balance_after does not follow, %d accounts whose balance is not the last balance_after; want 0, 0", gaps, stale)
	}
	if completed.Load() < int64(workers*perWorker)/4 || refused.Load() == 0 {
		t.Errorf("completed %d, refused %d: the test did not exercise both outcomes", completed.Load(), refused.Load())
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	panic(fmt.Sprintf("%s not in list", v))
}
