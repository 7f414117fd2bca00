package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Probe timing: each probe is tried every probeEvery, each attempt bounded
// by probeTimeout (an attempt that hangs must not hide a recovery behind
// it), and a probe that has not succeeded within probeWindow counts as
// never recovered.
const (
	probeEvery   = 100 * time.Millisecond
	probeTimeout = 2 * time.Second
	probeWindow  = 90 * time.Second
)

// Probes time a recovery: from the moment what a fault broke listens
// again, each of a login (auth), a balance read (accounts and the ledger),
// a history read (the ledger) and a transfer (the ledger and its database)
// is tried until it succeeds. The recovery time is the slowest first
// success. The transfer keeps its key across attempts, like any client's.
type Probes struct {
	Bank  *Bank
	Rec   *Recorder
	Keys  *Keys
	RunID string
	From  User // logs in, reads and pays
	To    User // is paid

	n atomic.Int64
}

// Recover returns how long after listening every probe first succeeded,
// and false if one did not within the probe window.
func (p *Probes) Recover(ctx context.Context, listening time.Time) (time.Duration, bool) {
	in := Intent{Key: fmt.Sprintf("chaos-%s-probe-%d", p.RunID, p.n.Add(1)), From: p.From.Account, To: p.To.Account, Amount: 1}
	p.Keys.Add(in)
	calls := []Call{
		Login(p.From.Email, p.From.Password),
		GetAccount(p.From.Token, p.From.Account),
		History(p.From.Token, p.From.Account, 20, ""),
		Transfer(p.From.Token, in.Key, in.From, in.To, in.Amount),
	}
	ctx, cancel := context.WithDeadline(ctx, listening.Add(probeWindow))
	defer cancel()
	var (
		mu      sync.Mutex
		slowest time.Duration
		all     = true
		wg      sync.WaitGroup
	)
	for _, c := range calls {
		wg.Go(func() {
			a, ok := p.untilOK(ctx, c)
			if c.Key != "" {
				p.Keys.Answered(c.Key, a)
			}
			mu.Lock()
			defer mu.Unlock()
			all = all && ok
			slowest = max(slowest, time.Since(listening))
		})
	}
	wg.Wait()
	return slowest, all
}

// untilOK tries c until it succeeds or ctx ends.
func (p *Probes) untilOK(ctx context.Context, c Call) (Answer, bool) {
	for {
		attempt, cancel := context.WithTimeout(ctx, probeTimeout)
		a := Attempt(attempt, p.Bank, p.Rec, c)
		cancel()
		if a.OK() {
			return a, true
		}
		if a.Final() { // a refusal does not turn into a success by asking again
			return a, false
		}
		if sleep(ctx, probeEvery) != nil {
			return a, false
		}
	}
}
