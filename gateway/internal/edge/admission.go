package edge

import (
	"context"
	"net/http"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// DefaultMaxInFlight is how many requests the gateway serves at once before
// it sheds. A normal load never comes near it (at half of saturation a few
// requests are in flight); at many times saturation it bounds the queue
// in front of the services, and so the latency of what is served: about
// the bound divided by the stack's throughput (128 at the 300 to 1,200
// transfers/s the project's 2-core machine serves is 0.1 to 0.4 s; 256
// measured a p99 of 0.85 to 2.3 s there at 3× saturation).
const DefaultMaxInFlight = 128

// DefaultAdmissionWait is how long a request waits for a slot when every
// one is taken, before it is refused.
const DefaultAdmissionWait = 50 * time.Millisecond

// ReasonOverloaded is the bank_ratelimit_rejections_total reason, and the
// problem type, of a request shed because the gateway was at capacity.
const ReasonOverloaded = "overloaded"

// overloadRetry is the Retry-After of a shed request: a slot frees as soon
// as any request in flight is answered, so a second is long enough.
const overloadRetry = time.Second

// Admission bounds the requests in flight through the gateway. A request
// past the bound waits at most Wait for a slot, then is answered 503 with
// Retry-After at once: a stack past saturation sheds what it cannot serve
// instead of queueing it without bound and serving everything late.
// /healthz and /readyz are never subject to it, so an orchestrator does not
// take an overloaded gateway for a dead one.
type Admission struct {
	// MaxInFlight is the bound; DefaultMaxInFlight if zero.
	MaxInFlight int
	// Wait is the longest wait for a slot; DefaultAdmissionWait if zero.
	Wait time.Duration
}

func (a Admission) wrap(rd *Renderer, counters refusal.Counters, next http.Handler) http.Handler {
	size := a.MaxInFlight
	if size <= 0 {
		size = DefaultMaxInFlight
	}
	wait := a.Wait
	if wait <= 0 {
		wait = DefaultAdmissionWait
	}
	slots := make(chan struct{}, size)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if !acquire(r.Context(), slots, wait) {
			counters.RateLimited(r.Context(), ReasonOverloaded)
			rd.Error(w, r, &errs.Error{Kind: errs.Unavailable, Reason: ReasonOverloaded,
				Msg: "the gateway is at capacity", RetryAfter: overloadRetry})
			return
		}
		// Deferred, so a panic below (http.ErrAbortHandler included) frees
		// the slot too.
		defer func() { <-slots }()
		next.ServeHTTP(w, r)
	})
}

// acquire takes a slot, waiting at most wait for one, and not at all once
// the client has gone.
func acquire(ctx context.Context, slots chan struct{}, wait time.Duration) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}
