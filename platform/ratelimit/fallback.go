package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Fallback asks Primary (normally Redis) and, when Primary cannot decide,
// Secondary (normally a Memory limiter) instead. Failing open would switch
// the control off exactly when an attacker has knocked Redis over; failing
// closed would turn a Redis outage into a full outage. Deciding locally keeps
// each replica limiting on its own share of the traffic until Redis is back.
//
// Use it through a pointer; the zero Cooldown asks Primary on every request.
type Fallback struct {
	Primary   Limiter
	Secondary Limiter

	// OnError is told about every Primary failure (log it, count it); it
	// may be nil. It must not block.
	OnError func(error)

	// Cooldown, when positive, skips Primary for that long after it fails,
	// so that requests during an outage do not each wait out a timeout.
	Cooldown time.Duration

	// Now is the clock for Cooldown; nil means time.Now.
	Now func() time.Time

	skipUntil atomic.Int64 // UnixNano before which Primary is not asked
}

// Allow decides with Primary, or with Secondary when Primary is unavailable.
// It returns an error only if the caller's context is done, the limit is
// invalid, or both limiters fail.
func (f *Fallback) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return f.ask(ctx, func(lim Limiter) (Result, error) { return lim.Allow(ctx, key, l) })
}

// Check asks Primary, or Secondary when Primary is unavailable, as Allow
// does, spending nothing.
func (f *Fallback) Check(ctx context.Context, key string, l Limit) (Result, error) {
	return f.ask(ctx, func(lim Limiter) (Result, error) { return lim.Check(ctx, key, l) })
}

// ask puts the question to Primary unless it is cooling down after a
// failure, and to Secondary when Primary cannot answer.
func (f *Fallback) ask(ctx context.Context, q func(Limiter) (Result, error)) (Result, error) {
	now := f.now()
	if now.UnixNano() >= f.skipUntil.Load() {
		res, err := q(f.Primary)
		if err == nil || errs.KindOf(err) != errs.Unavailable || ctx.Err() != nil {
			return res, err
		}
		if f.OnError != nil {
			f.OnError(err)
		}
		if f.Cooldown > 0 {
			f.skipUntil.Store(now.Add(f.Cooldown).UnixNano())
		}
	}
	return q(f.Secondary)
}

func (f *Fallback) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
