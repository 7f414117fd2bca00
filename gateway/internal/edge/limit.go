package edge

import (
	"net/http"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// LimitByIP applies limit per client IP to next. The gateway uses it for the
// endpoints that reach no RPC (health, OpenAPI, docs): the RPC routes are
// limited by the gRPC policy, which knows each route's rate class.
//
// When the limiter cannot decide, the request is refused with 503: these
// endpoints are cheap, but a limiter that is silently off is worse than a
// health probe that fails.
func LimitByIP(l ratelimit.Limiter, limit ratelimit.Limit, render *Renderer, counters refusal.Counters, next http.Handler) http.Handler {
	if counters == nil {
		counters = refusal.Nop
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := StateFrom(r.Context())
		if !ok {
			render.Error(w, r, errs.New(errs.Internal, ""))
			return
		}
		res, err := l.Allow(r.Context(), st.ClientKey(), limit)
		if err != nil {
			render.Error(w, r, errs.Wrap(errs.Unavailable, "", err))
			return
		}
		st.SetRateLimit(res)
		if !res.Allowed {
			counters.RateLimited(r.Context(), limit.Name)
			render.Error(w, r, errs.Throttled(limit.Name, "too many requests", res.RetryAfter))
			return
		}
		for k, v := range ratelimit.Headers(res) {
			w.Header()[k] = v
		}
		next.ServeHTTP(w, r)
	})
}
