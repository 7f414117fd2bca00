package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// User is a customer of the campaign, with one EUR account.
type User struct {
	Email, Password string
	Token           string
	Account         string
}

// Retry timing: the first retry comes soon, later ones back off to at
// most a second, so an outage costs each waiting call one request a second.
const (
	firstRetry = 100 * time.Millisecond
	maxRetry   = time.Second
)

// Stream is the campaign's traffic: an open-model stream of arrivals at
// Rate per second, whatever the bank's latency, each a transfer (7 in 10),
// a balance read (2 in 10) or a history read (1 in 10) by one of Users.
// Every call is retried with its key until it succeeds or is refused; one
// succeeded transfer in ten is sent again, as a client that lost the answer
// would, and must be a replay.
type Stream struct {
	Bank        *Bank
	Users       []User
	RunID       string
	Rate        float64
	MaxInFlight int // calls outstanding at once; arrivals beyond are dropped and counted
	MaxArrivals int // the stream's bound: it ends after this many arrivals if nothing stops it first
	Rec         *Recorder
	Keys        *Keys

	arrivals, dropped, unresolved atomic.Int64
	refusedMu                     sync.Mutex
	refused                       map[string]int // unexpected refusals, by call and status
}

// StreamStats sums up a stream's run.
type StreamStats struct {
	Arrivals, Dropped, Unresolved int64
	Refused                       map[string]int // "POST /v1/transfers 401": count; a well-formed call should never be refused
}

// Run sends arrivals until ctx ends, stop is closed or MaxArrivals have
// arrived, then lets the calls still being retried finish for up to drain;
// those still unanswered then are unresolved.
func (s *Stream) Run(ctx context.Context, stop <-chan struct{}, drain time.Duration) StreamStats {
	s.refused = map[string]int{}
	calls, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make(chan struct{}, s.MaxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range s.MaxArrivals {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / s.Rate))
		if !waitUntil(ctx, stop, due) {
			break
		}
		s.arrivals.Add(1)
		select {
		case slots <- struct{}{}:
		default:
			s.dropped.Add(1)
			s.Rec.Current().drop()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			s.arrive(calls, i)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		cancel()
		<-done
	}
	s.refusedMu.Lock()
	defer s.refusedMu.Unlock()
	return StreamStats{Arrivals: s.arrivals.Load(), Dropped: s.dropped.Load(), Unresolved: s.unresolved.Load(), Refused: s.refused}
}

// waitUntil sleeps until t and reports whether arrivals go on.
func waitUntil(ctx context.Context, stop <-chan struct{}, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-timer.C:
		return true
	}
}

// arrive performs arrival i.
func (s *Stream) arrive(ctx context.Context, i int) {
	n := len(s.Users)
	u := s.Users[i%n]
	switch (i / n) % 10 {
	case 7, 8:
		s.read(ctx, GetAccount(u.Token, u.Account))
	case 9:
		s.read(ctx, History(u.Token, u.Account, 20, ""))
	default:
		to := s.Users[(i%n+1+(i/n)%(n-1))%n] // every other user in turn
		in := Intent{Key: fmt.Sprintf("chaos-%s-%d", s.RunID, i), From: u.Account, To: to.Account, Amount: int64(1 + (i*7919)%100)}
		s.transfer(ctx, u.Token, in, i%10 == 3)
	}
}

// transfer sends in until it is answered, and if resend, once more after
// it succeeded.
func (s *Stream) transfer(ctx context.Context, token string, in Intent, resend bool) {
	s.Keys.Add(in)
	c := Transfer(token, in.Key, in.From, in.To, in.Amount)
	a := s.untilAnswered(ctx, c)
	s.Keys.Answered(in.Key, a)
	if !a.OK() || !resend {
		return
	}
	if a = s.untilAnswered(ctx, c); a.Final() {
		s.Keys.Resent(in.Key, a)
	}
}

func (s *Stream) read(ctx context.Context, c Call) { s.untilAnswered(ctx, c) }

// untilAnswered sends c, and again with the same key after each answer
// that is not final, until one is or ctx ends. A final answer other than
// a success, or a transfer's 422, is unexpected: every call is well formed.
func (s *Stream) untilAnswered(ctx context.Context, c Call) Answer {
	wait := firstRetry
	for {
		a := Attempt(ctx, s.Bank, s.Rec, c)
		if a.Final() {
			if !a.OK() && !(a.Status == 422 && c.Key != "") {
				s.refusedMu.Lock()
				s.refused[fmt.Sprintf("%s %d", c.Label, a.Status)]++
				s.refusedMu.Unlock()
			}
			return a
		}
		if a.RetryAfter > 0 {
			wait = min(a.RetryAfter, maxRetry)
		}
		if sleep(ctx, jitter(wait)) != nil {
			s.unresolved.Add(1)
			return a
		}
		wait = min(2*wait, maxRetry)
	}
}

// Attempt sends one attempt of c and counts it in the phase it was sent in.
func Attempt(ctx context.Context, b *Bank, rec *Recorder, c Call) Answer {
	p := rec.Current()
	a := b.Do(ctx, c)
	if a.Status == 0 && ctx.Err() != nil {
		return a // the campaign stopped waiting: not an answer of the bank's
	}
	p.record(a.Status)
	return a
}

// jitter spreads retries over [d/2, d) so that the calls an outage held
// back do not all come back at the same instant.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
