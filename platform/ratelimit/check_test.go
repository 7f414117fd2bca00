package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// TestCheckSpendsNothing holds both limiters to one contract: Check says
// whether one more request fits, agrees with what Allow then does, and never
// spends any of the allowance, however often it is asked.
func TestCheckSpendsNothing(t *testing.T) {
	t.Parallel()
	limiters := map[string]func(t *testing.T) (ratelimit.Limiter, string){
		"memory": func(*testing.T) (ratelimit.Limiter, string) {
			return ratelimit.NewMemory(time.Now, 0), "k"
		},
		"redis": func(t *testing.T) (ratelimit.Limiter, string) {
			return ratelimit.NewRedis(newRedisClient(t)), uniqueKey(t)
		},
	}
	for name, build := range limiters {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			lim, key := build(t)
			l := ratelimit.Limit{Name: "failed_auth", Rate: 3, Period: time.Hour}
			for range 10 {
				if res, err := lim.Check(ctx, key, l); err != nil || !res.Allowed || res.Remaining != 3 {
					t.Fatalf("Check(fresh key) = %+v, %v; want allowed with 3 remaining", res, err)
				}
			}
			for i := range 3 {
				if res, err := lim.Check(ctx, key, l); err != nil || !res.Allowed {
					t.Fatalf("Check(before request %d) = %+v, %v; want allowed", i+1, res, err)
				}
				if res, err := lim.Allow(ctx, key, l); err != nil || !res.Allowed {
					t.Fatalf("Allow(request %d) = %+v, %v; want allowed", i+1, res, err)
				}
			}
			for range 3 {
				res, err := lim.Check(ctx, key, l)
				if err != nil || res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > 20*time.Minute+time.Second {
					t.Fatalf("Check(budget spent) = %+v, %v; want refused, retry within one interval (20m)", res, err)
				}
			}
			if res, err := lim.Allow(ctx, key, l); err != nil || res.Allowed {
				t.Fatalf("Allow(after the checks) = %+v, %v; want refused: Check must agree with Allow", res, err)
			}
		})
	}
}

// TestCheckRefillsLikeAllow: once the interval has passed, Check allows one
// more request again, exactly as Allow would.
func TestCheckRefillsLikeAllow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	lim := ratelimit.NewMemory(clk.Now, 0)
	l := ratelimit.Limit{Name: "failed_auth", Rate: 2, Period: time.Minute}
	ctx := context.Background()
	lim.Allow(ctx, "k", l)
	lim.Allow(ctx, "k", l)
	if res, _ := lim.Check(ctx, "k", l); res.Allowed || res.RetryAfter != 30*time.Second {
		t.Fatalf("Check(spent) = %+v, want refused with 30s to wait", res)
	}
	clk.Advance(30 * time.Second)
	if res, _ := lim.Check(ctx, "k", l); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("Check(30s later) = %+v, want one request allowed", res)
	}
}
