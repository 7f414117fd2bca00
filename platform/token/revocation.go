package token

import (
	"sync"
	"time"
)

// Revocations answers whether an access token id has been revoked.
type Revocations interface {
	IsRevoked(jti string) bool
}

// RevocationList is an in-memory set of revoked token ids, each kept until
// its token expires (after that the token is refused anyway), so memory is
// bounded by the tokens issued in one token lifetime.
type RevocationList struct {
	now  func() time.Time
	mu   sync.RWMutex
	m    map[string]time.Time
	adds int
}

// NewRevocationList returns an empty list.
func NewRevocationList() *RevocationList {
	return &RevocationList{now: time.Now, m: map[string]time.Time{}}
}

// Add revokes jti until exp.
func (r *RevocationList) Add(jti string, exp time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[jti] = exp
	r.adds++
	if r.adds%256 == 0 {
		r.pruneLocked()
	}
}

// Replace swaps the whole set, for a resynchronising snapshot.
func (r *RevocationList) Replace(all map[string]time.Time) {
	m := make(map[string]time.Time, len(all))
	for k, v := range all {
		m[k] = v
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m = m
	r.pruneLocked()
}

// IsRevoked reports whether jti is revoked.
func (r *RevocationList) IsRevoked(jti string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.m[jti]
	return ok
}

// Len returns the number of revocations held.
func (r *RevocationList) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// Prune forgets revocations whose tokens have expired.
func (r *RevocationList) Prune() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked()
}

func (r *RevocationList) pruneLocked() {
	now := r.now()
	for k, exp := range r.m {
		if now.After(exp.Add(pruneMargin)) {
			delete(r.m, k)
		}
	}
}

// pruneMargin keeps a revocation a little past its token's expiry, longer
// than any verifier's clock leeway.
const pruneMargin = time.Minute
