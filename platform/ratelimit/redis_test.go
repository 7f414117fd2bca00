package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// redisAddr is the Redis the tests share; each test uses keys of its own.
const redisAddr = "127.0.0.1:6379"

// newRedisClient returns a client to the test Redis, failing the test with
// instructions if it is not running.
func newRedisClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s is not reachable (%v); start it with: redis-server --daemonize yes", redisAddr, err)
	}
	return c
}

// uniqueKey returns a key no other test or run uses, so tests can share one
// Redis and run in parallel.
func uniqueKey(t testing.TB) string {
	b := make([]byte, 8)
	rand.Read(b)
	return t.Name() + ":" + hex.EncodeToString(b)
}

func TestRedisSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	// Two clients and two limiters stand for two replicas of the gateway.
	a := ratelimit.NewRedis(newRedisClient(t))
	b := ratelimit.NewRedis(newRedisClient(t))
	lim := ratelimit.Limit{Name: "auth", Rate: 20, Period: time.Minute}
	key := uniqueKey(t)

	allowed := 0
	for i := range 40 {
		l := a
		if i%2 == 1 {
			l = b
		}
		res := mustAllow(t, l, key, lim)
		if res.Allowed {
			allowed++
			if want := 20 - allowed; res.Remaining != want {
				t.Errorf("request %d: Remaining = %d, want %d", i, res.Remaining, want)
			}
		}
	}
	if allowed != 20 {
		t.Errorf("two replicas, 40 requests: allowed %d, want 20 in total", allowed)
	}
	res := mustAllow(t, b, key, lim)
	if res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > 3*time.Second || res.ResetAfter < 57*time.Second {
		t.Errorf("over burst: Allow = %+v, want refused, retry within 3s, reset near 60s", res)
	}
	// A different key is unaffected.
	if got := spendAll(t, a, key+"-other", lim, 20); got != 20 {
		t.Errorf("other key: allowed %d, want 20", got)
	}
}

func TestRedisRecovers(t *testing.T) {
	t.Parallel()
	r := ratelimit.NewRedis(newRedisClient(t))
	lim := ratelimit.Limit{Name: "user", Rate: 10, Period: time.Second, Burst: 2}
	key := uniqueKey(t)

	first := mustAllow(t, r, key, lim)
	if !first.Allowed || first.Remaining != 1 || first.RetryAfter != 0 {
		t.Fatalf("first: Allow = %+v, want allowed, 1 remaining, no retry", first)
	}
	mustAllow(t, r, key, lim)
	res := mustAllow(t, r, key, lim)
	if res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > 100*time.Millisecond {
		t.Fatalf("third: Allow = %+v, want refused with RetryAfter in (0, 100ms]", res)
	}
	time.Sleep(res.RetryAfter + 20*time.Millisecond)
	if res := mustAllow(t, r, key, lim); !res.Allowed {
		t.Errorf("after RetryAfter: Allow = %+v, want allowed", res)
	}
}

func TestRedisConcurrentNeverExceedsBurst(t *testing.T) {
	t.Parallel()
	r := ratelimit.NewRedis(newRedisClient(t))
	lim := ratelimit.Limit{Name: "transfers", Rate: 30, Period: time.Minute, Burst: 20}
	if got := concurrentAllowed(t, r, uniqueKey(t), lim); got != 20 {
		t.Errorf("50 goroutines: allowed %d, want exactly 20", got)
	}
}

func TestRedisErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		client   func(t *testing.T) redis.UniversalClient
		limit    ratelimit.Limit
		wantKind errs.Kind
	}{
		{"unreachable", deadRedis, ratelimit.Limit{Name: "a", Rate: 1, Period: time.Second}, errs.Unavailable},
		{"invalid limit", func(t *testing.T) redis.UniversalClient { return newRedisClient(t) }, ratelimit.Limit{Name: "a"}, errs.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ratelimit.NewRedis(tt.client(t))
			res, err := r.Allow(context.Background(), "k", tt.limit)
			if errs.KindOf(err) != tt.wantKind || res.Allowed {
				t.Errorf("Allow() = %+v, %v; want refused with kind %v", res, err, tt.wantKind)
			}
			if msg := errs.SafeMessage(err); msg != "internal error" && msg != "rate limiter unavailable" {
				t.Errorf("SafeMessage = %q, leaks detail", msg)
			}
		})
	}
}

// deadRedis returns a client pointed at a port nothing listens on.
func deadRedis(t *testing.T) redis.UniversalClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

func BenchmarkRedisAllow(b *testing.B) {
	r := ratelimit.NewRedis(newRedisClient(b))
	lim := ratelimit.Limit{Name: "user", Rate: 1_000_000, Period: time.Second}
	prefix := uniqueKey(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := r.Allow(context.Background(), fmt.Sprintf("%s-%d", prefix, i%64), lim); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
