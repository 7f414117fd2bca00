package rbac_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/bastion-bank/bastion/platform/rbac"
)

// BenchmarkOwnerCacheHit is the ownership look-up of a resource already seen:
// what the owner step pays per request instead of a query (about 100 µs of
// round trip and pgx decoding on the dev machine, docs/performance.md).
func BenchmarkOwnerCacheHit(b *testing.B) {
	next := rbac.OwnerFunc(func(context.Context, string, string) ([]string, error) { return []string{owner}, nil })
	c := rbac.CacheOwners(next, rbac.DefaultOwnerCacheSize, "account", "transfer")
	ctx := context.Background()
	if _, err := c.Owners(ctx, "account", acct); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Owners(ctx, "account", acct); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Owners(ctx, "account", acct); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkOwnerCacheFull fills a cache with distinct account ids, as a
// long-running service does, and reports the heap each answer takes
// (B/entry); then each op asks for an id never seen, on the full cache: a
// miss that evicts, with the formatting of the id and the fake resolver's
// answer included.
func BenchmarkOwnerCacheFull(b *testing.B) {
	const size = 100_000
	next := rbac.OwnerFunc(func(context.Context, string, string) ([]string, error) {
		return []string{fmt.Sprintf("%08x-0000-4000-8000-00000000000a", size)}, nil
	})
	id := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000001", i) }
	ids := make([]string, size)
	for i := range ids {
		ids[i] = id(i)
	}
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := rbac.CacheOwners(next, size, "account")
	for _, id := range ids {
		if _, err := c.Owners(ctx, "account", id); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / size
	ids = nil
	b.ReportAllocs()
	i := size
	for b.Loop() {
		if _, err := c.Owners(ctx, "account", id(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(perEntry, "B/entry")
	runtime.KeepAlive(c)
}
