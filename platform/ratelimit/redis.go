package ratelimit

import (
	"context"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/bastion-bank/bastion/platform/errs"
)

// RedisKeyPrefix starts every key this package writes to Redis (after the
// "rate:" that redis_rate itself adds), so Bastion's counters are easy to find
// and cannot collide with another application's keys.
const RedisKeyPrefix = "bank:rl:"

// Redis is a GCRA limiter whose state lives in Redis, so that every replica
// of a service draws on the same allowance. The algorithm runs as one Lua
// script using Redis's clock, which keeps it atomic and immune to clock skew
// between replicas.
type Redis struct {
	limiter *redis_rate.Limiter
	prefix  string
}

// NewRedis returns a limiter that keeps its counters in the Redis behind c.
// Give c short dial and read timeouts: every request waits on it.
func NewRedis(c redis.UniversalClient) *Redis {
	return &Redis{limiter: redis_rate.NewLimiter(c), prefix: RedisKeyPrefix}
}

// Allow spends one request of key's allowance under l, if there is one.
// It returns an Unavailable error when Redis cannot be reached; Fallback
// turns that into a local decision.
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	l, err := l.normalize()
	if err != nil {
		return Result{}, err
	}
	rl := redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period}
	res, err := r.limiter.Allow(ctx, r.prefix+storageKey(l.Name, key), rl)
	if err != nil {
		return Result{}, errs.Wrap(errs.Unavailable, "rate limiter unavailable", err)
	}
	out := Result{
		Allowed:    res.Allowed > 0,
		Limit:      l,
		RetryAfter: max(res.RetryAfter, 0), // redis_rate says -1 when allowed
		ResetAfter: max(res.ResetAfter, 0),
	}
	if out.Allowed {
		out.Remaining = remaining(l, out.ResetAfter)
	}
	return out, nil
}

// Check reports whether key could spend one request under l now, without
// spending it: the same script asked for a cost of zero, which reads the
// key's state and writes it back unchanged. Unavailable when Redis cannot
// be reached.
func (r *Redis) Check(ctx context.Context, key string, l Limit) (Result, error) {
	l, err := l.normalize()
	if err != nil {
		return Result{}, err
	}
	rl := redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period}
	res, err := r.limiter.AllowN(ctx, r.prefix+storageKey(l.Name, key), rl, 0)
	if err != nil {
		return Result{}, errs.Wrap(errs.Unavailable, "rate limiter unavailable", err)
	}
	// ResetAfter is how far the key is from a full allowance; one more
	// request fits while that is at most Burst-1 intervals.
	reset := max(res.ResetAfter, 0)
	out := Result{Limit: l, ResetAfter: reset, Remaining: remaining(l, reset)}
	if wait := reset - l.interval()*time.Duration(l.Burst-1); wait > time.Microsecond {
		out.RetryAfter = wait
		out.Remaining = 0
		return out, nil
	}
	out.Allowed = true
	return out, nil
}

// remaining recomputes how many requests are left from ResetAfter. The Lua
// script divides floats and truncates, so an exact 1.0 arriving as 0.9999999
// would report one request fewer than the key has; the microsecond of slack
// absorbs that rounding and nothing more.
func remaining(l Limit, resetAfter time.Duration) int {
	interval := l.interval()
	left := interval*time.Duration(l.Burst) - resetAfter + time.Microsecond
	return max(int(left/interval), 0)
}
