package rbac

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// DefaultOwnerCacheSize is how many owner answers a service remembers by
// default (BANK_OWNER_CACHE_SIZE): the accounts a busy replica's users touch,
// at about 200 bytes an answer (BenchmarkOwnerCacheFull measures it), so
// about 20 MB of heap when full.
const DefaultOwnerCacheSize = 100_000

// CacheOwners returns a resolver that remembers resolver's answers for the
// resources named in immutable, up to size of them, so that the ownership
// check of a resource already seen costs a map look-up instead of a query.
// With size 0 or less, or no immutable resource, it returns resolver itself.
//
// Only what cannot become wrong is kept:
//   - only resources whose owners never change: a resource may be named in
//     immutable only if its owners are fixed when it is created and it is
//     never deleted (the services' schemas refuse both at the database);
//   - only answers, never errors: NotFound (an account the ledger has not
//     heard of yet, a random id) and failures are asked again next time, so
//     an attacker's made-up ids cost queries but never memory;
//   - never more than size entries: a new answer past the bound replaces an
//     arbitrary one, since a miss costs only the query it saves.
//
// The cache also assumes that resolver's answer depends on the resource and
// the id alone, not on ctx (who asks): an answer is served to every caller.
// It decides nothing: CheckOwner still compares the caller with the owners
// on every call, cached or not. Each call returns a slice of its own.
func CacheOwners(resolver OwnerResolver, size int, immutable ...string) OwnerResolver {
	if size <= 0 || len(immutable) == 0 {
		return resolver
	}
	return &ownerCache{
		next:      resolver,
		immutable: slices.Clone(immutable),
		max:       size,
		entries:   make(map[ownerKey][]string),
	}
}

// ownerCache is CacheOwners' resolver. Reads share the lock: after warm-up
// nearly every call is a hit.
type ownerCache struct {
	next      OwnerResolver
	immutable []string // one or two names: a scan beats a map

	mu      sync.RWMutex
	max     int
	entries map[ownerKey][]string // owner lists nobody appends to or edits
}

type ownerKey struct{ resource, id string }

// Owners answers from the cache, or asks the wrapped resolver and remembers
// a successful answer for an immutable resource.
func (c *ownerCache) Owners(ctx context.Context, resource, id string) ([]string, error) {
	if !slices.Contains(c.immutable, resource) {
		return c.next.Owners(ctx, resource, id)
	}
	k := ownerKey{resource, id}
	c.mu.RLock()
	owners, ok := c.entries[k]
	c.mu.RUnlock()
	if ok {
		return slices.Clone(owners), nil
	}
	owners, err := c.next.Owners(ctx, resource, id)
	if err != nil {
		return owners, err
	}
	c.put(ownerKey{resource, strings.Clone(id)}, slices.Clone(owners))
	return owners, nil
}

// put remembers owners under k, first forgetting an arbitrary entry when the
// cache is full (Go starts each map iteration at a random place). The key's
// id is a copy, so that an entry never keeps a request's buffer alive.
func (c *ownerCache) put(k ownerKey, owners []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = owners
}

// len reports how many answers the cache holds, for the tests.
func (c *ownerCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
