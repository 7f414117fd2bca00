package ratelimit_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// counting wraps a Limiter and counts calls, to show which limiter decided.
type counting struct {
	ratelimit.Limiter
	calls atomic.Int32
}

func (c *counting) Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Result, error) {
	c.calls.Add(1)
	return c.Limiter.Allow(ctx, key, l)
}

func TestFallbackUsesSecondaryWhenRedisDown(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var reported []error
	f := &ratelimit.Fallback{
		Primary:   ratelimit.NewRedis(deadRedis(t)),
		Secondary: ratelimit.NewMemory(clk.Now, 0),
		OnError:   func(err error) { reported = append(reported, err) },
	}
	lim := ratelimit.Limit{Name: "auth", Rate: 3, Period: time.Minute}
	// Neither open (unlimited) nor closed (all refused): the local limit holds.
	if got := spendAll(t, f, "10.0.0.9", lim, 3); got != 3 {
		t.Errorf("Redis down: allowed %d, want 3 from the in-memory limit", got)
	}
	if len(reported) != 4 {
		t.Fatalf("OnError called %d times, want 4 (once per request)", len(reported))
	}
	if errs.KindOf(reported[0]) != errs.Unavailable {
		t.Errorf("reported error kind = %v, want unavailable", errs.KindOf(reported[0]))
	}
}

func TestFallbackPrefersPrimary(t *testing.T) {
	t.Parallel()
	primary := &counting{Limiter: ratelimit.NewRedis(newRedisClient(t))}
	secondary := &counting{Limiter: ratelimit.NewMemory(time.Now, 0)}
	f := &ratelimit.Fallback{Primary: primary, Secondary: secondary}
	lim := ratelimit.Limit{Name: "auth", Rate: 2, Period: time.Minute}
	if got := spendAll(t, f, uniqueKey(t), lim, 2); got != 2 {
		t.Errorf("allowed %d, want 2", got)
	}
	if s := secondary.calls.Load(); s != 0 || primary.calls.Load() != 3 {
		t.Errorf("calls: primary %d, secondary %d; want 3, 0", primary.calls.Load(), s)
	}
}

func TestFallbackCooldown(t *testing.T) {
	t.Parallel()
	clk := newClock()
	primary := &counting{Limiter: ratelimit.NewRedis(deadRedis(t))}
	f := &ratelimit.Fallback{
		Primary:   primary,
		Secondary: ratelimit.NewMemory(clk.Now, 0),
		Cooldown:  5 * time.Second,
		Now:       clk.Now,
	}
	lim := ratelimit.Limit{Name: "auth", Rate: 100, Period: time.Minute}
	for range 10 {
		mustAllow(t, f, "k", lim)
	}
	if n := primary.calls.Load(); n != 1 {
		t.Errorf("during cooldown: primary called %d times, want 1", n)
	}
	clk.Advance(5 * time.Second)
	mustAllow(t, f, "k", lim)
	if n := primary.calls.Load(); n != 2 {
		t.Errorf("after cooldown: primary called %d times, want 2", n)
	}
}

func TestFallbackDoesNotMaskOtherErrors(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		limit    ratelimit.Limit
		wantKind errs.Kind
	}{
		// A caller that has gone away gets no decision, and Redis is not blamed.
		{"canceled context", canceled, ratelimit.Limit{Name: "a", Rate: 1, Period: time.Second}, errs.Unavailable},
		// A misconfigured limit is a bug, not an outage.
		{"invalid limit", context.Background(), ratelimit.Limit{Name: "a"}, errs.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secondary := &counting{Limiter: ratelimit.NewMemory(time.Now, 0)}
			reported := 0
			f := &ratelimit.Fallback{
				Primary:   ratelimit.NewRedis(deadRedis(t)),
				Secondary: secondary,
				OnError:   func(error) { reported++ },
			}
			res, err := f.Allow(tt.ctx, "k", tt.limit)
			if errs.KindOf(err) != tt.wantKind || res.Allowed {
				t.Errorf("Allow() = %+v, %v; want refused with kind %v", res, err, tt.wantKind)
			}
			if reported != 0 || secondary.calls.Load() != 0 {
				t.Errorf("OnError calls %d, secondary calls %d; want 0, 0", reported, secondary.calls.Load())
			}
		})
	}
}

func TestFallbackBothDown(t *testing.T) {
	t.Parallel()
	f := &ratelimit.Fallback{
		Primary:   ratelimit.NewRedis(deadRedis(t)),
		Secondary: ratelimit.NewRedis(deadRedis(t)),
	}
	res, err := f.Allow(context.Background(), "k", ratelimit.Limit{Name: "a", Rate: 1, Period: time.Second})
	if err == nil || res.Allowed {
		t.Errorf("Allow() = %+v, %v; want refused with an error", res, err)
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.Unavailable {
		t.Errorf("error = %v, want *errs.Error of kind unavailable", err)
	}
}
