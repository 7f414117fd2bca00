package ratelimit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// newClock returns a settable time source to share with the limiter under
// test.
func newClock() *grpctest.Clock {
	return grpctest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// mustAllow calls Allow and fails the test on error.
func mustAllow(t testing.TB, l ratelimit.Limiter, key string, lim ratelimit.Limit) ratelimit.Result {
	t.Helper()
	res, err := l.Allow(context.Background(), key, lim)
	if err != nil {
		t.Fatalf("Allow(%q, %+v) error = %v", key, lim, err)
	}
	return res
}

// spendAll calls Allow until it refuses, and returns how many were allowed.
// It gives up after limit+10 so a broken limiter cannot hang the test.
func spendAll(t testing.TB, l ratelimit.Limiter, key string, lim ratelimit.Limit, limit int) int {
	t.Helper()
	for i := 0; i < limit+10; i++ {
		if !mustAllow(t, l, key, lim).Allowed {
			return i
		}
	}
	return limit + 10
}

func TestMemoryBurstRefusalRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		limit     ratelimit.Limit
		wantBurst int
		refill    time.Duration // time for one request's allowance to return
	}{
		{"auth per minute", ratelimit.Limit{Name: "auth", Rate: 20, Period: time.Minute}, 20, 3 * time.Second},
		{"small burst", ratelimit.Limit{Name: "user", Rate: 10, Period: time.Second, Burst: 3}, 3, 100 * time.Millisecond},
		{"burst above rate", ratelimit.Limit{Name: "t", Rate: 1, Period: time.Hour, Burst: 5}, 5, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			m := ratelimit.NewMemory(clk.Now, 0)
			for i := range tt.wantBurst {
				res := mustAllow(t, m, "k", tt.limit)
				if !res.Allowed || res.Remaining != tt.wantBurst-1-i {
					t.Fatalf("request %d: Allow = %+v, want allowed with %d remaining", i, res, tt.wantBurst-1-i)
				}
				if want := time.Duration(i+1) * tt.refill; res.ResetAfter != want {
					t.Errorf("request %d: ResetAfter = %v, want %v", i, res.ResetAfter, want)
				}
			}
			res := mustAllow(t, m, "k", tt.limit)
			if res.Allowed || res.Remaining != 0 || res.RetryAfter != tt.refill {
				t.Fatalf("over burst: Allow = %+v, want refused with RetryAfter %v", res, tt.refill)
			}
			if want := time.Duration(tt.wantBurst) * tt.refill; res.ResetAfter != want {
				t.Errorf("over burst: ResetAfter = %v, want %v", res.ResetAfter, want)
			}
			// Refusals must not push the reset further out.
			for range 100 {
				mustAllow(t, m, "k", tt.limit)
			}
			clk.Advance(tt.refill - time.Nanosecond)
			if res := mustAllow(t, m, "k", tt.limit); res.Allowed {
				t.Fatalf("1ns before refill: Allow = %+v, want refused", res)
			}
			clk.Advance(time.Nanosecond)
			if res := mustAllow(t, m, "k", tt.limit); !res.Allowed || res.Remaining != 0 {
				t.Fatalf("after refill: Allow = %+v, want exactly one allowed", res)
			}
			clk.Advance(time.Duration(tt.wantBurst) * tt.refill)
			if got := spendAll(t, m, "k", tt.limit, tt.wantBurst); got != tt.wantBurst {
				t.Errorf("after full refill: allowed %d, want %d", got, tt.wantBurst)
			}
		})
	}
}

func TestMemoryKeysAndNamesIndependent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := ratelimit.NewMemory(clk.Now, 0)
	auth := ratelimit.Limit{Name: "auth", Rate: 2, Period: time.Minute}
	user := ratelimit.Limit{Name: "user", Rate: 2, Period: time.Minute}
	long := strings.Repeat("x", 1<<20)
	// Each of these must get its own allowance: a client who exhausts one
	// must not exhaust (or refill) another.
	cases := []struct {
		key string
		lim ratelimit.Limit
	}{
		{"10.0.0.1", auth}, {"10.0.0.2", auth}, {"10.0.0.1", user},
		{long + "a", auth}, {long + "b", auth}, {"user:1", auth}, {"user", auth},
	}
	for _, c := range cases {
		if got := spendAll(t, m, c.key, c.lim, 2); got != 2 {
			t.Errorf("key %.20q limit %q: allowed %d, want 2", c.key, c.lim.Name, got)
		}
	}
}

func TestMemoryRejectsInvalidLimit(t *testing.T) {
	t.Parallel()
	m := ratelimit.NewMemory(time.Now, 0)
	tests := []struct {
		name  string
		limit ratelimit.Limit
	}{
		{"zero", ratelimit.Limit{}},
		{"no name", ratelimit.Limit{Rate: 1, Period: time.Second}},
		{"zero rate", ratelimit.Limit{Name: "a", Period: time.Second}},
		{"negative rate", ratelimit.Limit{Name: "a", Rate: -1, Period: time.Second}},
		{"zero period", ratelimit.Limit{Name: "a", Rate: 1}},
		{"negative burst", ratelimit.Limit{Name: "a", Rate: 1, Period: time.Second, Burst: -1}},
		{"rate finer than a microsecond", ratelimit.Limit{Name: "a", Rate: 1 << 30, Period: time.Second}},
		{"rate above one per nanosecond", ratelimit.Limit{Name: "a", Rate: 10, Period: time.Nanosecond}},
		{"name breaks header", ratelimit.Limit{Name: `a";q=999`, Rate: 1, Period: time.Second}},
		{"name breaks key", ratelimit.Limit{Name: "a:b", Rate: 1, Period: time.Second}},
		{"name too long", ratelimit.Limit{Name: strings.Repeat("a", 65), Rate: 1, Period: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := m.Allow(context.Background(), "k", tt.limit)
			if errs.KindOf(err) != errs.Internal || res.Allowed {
				t.Errorf("Allow(%+v) = %+v, %v; want refused with an internal error", tt.limit, res, err)
			}
		})
	}
}

func TestMemoryBoundedKeys(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := ratelimit.NewMemory(clk.Now, 3)
	lim := ratelimit.Limit{Name: "auth", Rate: 10, Period: time.Second}

	// "heavy" has spent its whole burst; an attacker now floods new keys to
	// push it out. The victim must be the key closest to full, never heavy.
	spendAll(t, m, "heavy", lim, 10)
	clk.Advance(time.Millisecond)
	for i := range 50 {
		mustAllow(t, m, fmt.Sprintf("flood-%d", i), lim)
		if n := m.Len(); n > 3 {
			t.Fatalf("after %d keys: Len() = %d, want at most 3", i+2, n)
		}
	}
	if res := mustAllow(t, m, "heavy", lim); res.Allowed {
		t.Errorf("heavy after flood: Allow = %+v, want still refused", res)
	}

	// Keys that have refilled completely are forgotten.
	clk.Advance(2 * time.Second)
	mustAllow(t, m, "fresh", lim)
	if n := m.Len(); n != 1 {
		t.Errorf("after refill: Len() = %d, want 1", n)
	}
}

func TestMemoryConcurrentNeverExceedsBurst(t *testing.T) {
	t.Parallel()
	clk := newClock() // frozen: nothing refills while the goroutines run
	m := ratelimit.NewMemory(clk.Now, 0)
	lim := ratelimit.Limit{Name: "transfers", Rate: 30, Period: time.Minute, Burst: 20}
	if got := concurrentAllowed(t, m, "user-1", lim); got != 20 {
		t.Errorf("50 goroutines: allowed %d, want exactly 20", got)
	}
}

// concurrentAllowed hammers key from 50 goroutines, 5 requests each, and
// returns how many were allowed.
func concurrentAllowed(t *testing.T, l ratelimit.Limiter, key string, lim ratelimit.Limit) int {
	t.Helper()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
		start   = make(chan struct{})
	)
	for range 50 {
		wg.Go(func() {
			<-start
			for range 5 {
				res, err := l.Allow(context.Background(), key, lim)
				if err != nil {
					t.Errorf("Allow(%q) error = %v", key, err)
					return
				}
				if res.Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	close(start)
	wg.Wait()
	return allowed
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := ratelimit.NewMemory(time.Now, 0)
	lim := ratelimit.Limit{Name: "user", Rate: 100, Period: time.Minute}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := m.Allow(context.Background(), keys[i%len(keys)], lim); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
