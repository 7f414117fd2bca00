package policy

import (
	"context"
	"errors"
	"time"

	authzv1 "github.com/bastion-bank/bastion/proto/bank/authz/v1"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// Limits are the edge's budgets, one per rate class. Their names appear in
// the RateLimit-Policy header and the rate-limit metrics.
type Limits struct {
	Auth   ratelimit.Limit // per client IP: register, login, refresh
	Public ratelimit.Limit // per client IP: JWKS, health, docs
	User   ratelimit.Limit // per user, on every authenticated route
	Money  ratelimit.Limit // per user, on money-moving routes, on top of User
}

// Defaults of docs/api.md, per minute.
const (
	DefaultAuthPerMinute      = 20
	DefaultUserPerMinute      = 100
	DefaultTransfersPerMinute = 30
	DefaultPublicPerMinute    = 300
)

// NewLimits returns the limits for the given per-minute rates. Each allows
// a burst of its whole minute's budget, as a client that was quiet for a
// minute has earned it; the public budget is generous because it only
// serves cheap, unauthenticated reads.
func NewLimits(authPerMin, userPerMin, transfersPerMin, publicPerMin int) Limits {
	perMinute := func(name string, n int) ratelimit.Limit {
		return ratelimit.Limit{Name: name, Rate: n, Period: time.Minute, Burst: n}
	}
	return Limits{
		Auth:   perMinute("auth", authPerMin),
		Public: perMinute("public", publicPerMin),
		User:   perMinute("user", userPerMin),
		Money:  perMinute("transfers", transfersPerMin),
	}
}

func (l Limits) check() error {
	for _, lim := range []ratelimit.Limit{l.Auth, l.Public, l.User, l.Money} {
		if lim.Name == "" || lim.Rate <= 0 || lim.Period <= 0 || lim.Burst < 0 {
			return errors.New("policy: every limit needs a name, a positive rate and a period")
		}
	}
	return nil
}

// forIP is the per-IP budget of a public route.
func (l Limits) forIP(c authzv1.RateClass) ratelimit.Limit {
	if c == authzv1.RateClass_RATE_CLASS_AUTH {
		return l.Auth
	}
	return l.Public
}

// forUser lists the per-user budgets of an authenticated route, in the
// order they are spent. The list is built in buf, which the caller holds on
// its stack: a new slice was an allocation on every authenticated request.
func (l Limits) forUser(c authzv1.RateClass, buf *[2]ratelimit.Limit) []ratelimit.Limit {
	buf[0] = l.User
	if c == authzv1.RateClass_RATE_CLASS_MONEY {
		buf[1] = l.Money
		return buf[:2]
	}
	return buf[:1]
}

// limit spends one request of key under each limit, stopping at the first
// refusal. It records on st the decision a client most needs to see: the
// refusal, or else the budget closest to running out. A limiter that cannot
// decide refuses the request (503): an edge that silently stops limiting
// during an outage is what an attacker would arrange.
func (p *Policy) limit(ctx context.Context, st *edge.State, key string, limits ...ratelimit.Limit) error {
	// The decision is kept by value: a pointer to each limit's result moved
	// every one of them to the heap.
	var shown ratelimit.Result
	decided := false
	defer func() {
		if decided {
			st.SetRateLimit(shown)
		}
	}()
	for _, lim := range limits {
		res, err := p.cfg.Limiter.Allow(ctx, key, lim)
		if err != nil {
			p.cfg.Logger.ErrorContext(ctx, "rate limiter cannot decide; refusing", "limit", lim.Name, "error", err.Error())
			return errs.Wrap(errs.Unavailable, "", err)
		}
		if !decided || !res.Allowed || res.Remaining < shown.Remaining {
			shown, decided = res, true
		}
		if !res.Allowed {
			p.cfg.Counters.RateLimited(ctx, lim.Name)
			return errs.Throttled(lim.Name, "too many requests", res.RetryAfter)
		}
	}
	return nil
}
