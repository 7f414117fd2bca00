package edge

import (
	"net/http"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// DefaultFailedAuthPerMinute is the contract's BANK_RATE_LIMIT_FAILED_AUTH
// default: 401 and 403 answers per client network per minute.
const DefaultFailedAuthPerMinute = 60

// FailedAuthLimit returns the failed-authentication budget for n answers
// per minute, all of which may come at once.
func FailedAuthLimit(n int) ratelimit.Limit {
	return ratelimit.Limit{Name: "failed_auth", Rate: n, Period: time.Minute, Burst: n}
}

// FailedAuth is a client network's budget of failed authentication and
// authorization. Every 401 and 403 the gateway answers, whoever decided it
// (a bad token at the edge, a role the edge refused, a wrong password or a
// separation-of-duties refusal in a service), spends one; once it is spent,
// every request from that network is 429 before anything else runs, until
// the budget refills. So a token or password guesser, or an insider probing
// the rules, is slowed to the budget's rate whatever route they use, and
// the work behind the refusals (signature checks, password hashes) stops.
// The health endpoints are exempt: a load balancer must see the truth.
type FailedAuth struct {
	Limiter ratelimit.Limiter // nil turns the budget off (tests of other controls)
	Limit   ratelimit.Limit
}

// wrap checks the budget before next and charges it after a 401 or 403. A
// limiter that cannot decide refuses the request (503), as every edge limit
// does: an edge that stops limiting when Redis is down is what an attacker
// would arrange.
func (f FailedAuth) wrap(rd *Renderer, counters refusal.Counters, next http.Handler) http.Handler {
	if f.Limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := StateFrom(r.Context())
		if st == nil || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		ctx, key := r.Context(), identity.ClientKey(st.ClientIP)
		res, err := f.Limiter.Check(ctx, key, f.Limit)
		if err != nil {
			rd.Error(w, r, errs.Wrap(errs.Unavailable, "", err))
			return
		}
		if !res.Allowed {
			counters.RateLimited(ctx, f.Limit.Name)
			st.SetRateLimit(res)
			rd.Error(w, r, errs.Throttled(f.Limit.Name, "too many failed authentication attempts", res.RetryAfter))
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == http.StatusUnauthorized || sw.code == http.StatusForbidden {
			if _, err := f.Limiter.Allow(ctx, key, f.Limit); err != nil && rd.Logger != nil {
				rd.Logger.WarnContext(ctx, "failed-authentication budget not charged", "error", err.Error())
			}
		}
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes flushes through, for handlers that stream.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
