package token

import (
	"fmt"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/identity"
)

// TestVerifiedCacheIsBounded: however many distinct tokens a client sends,
// the verifier remembers at most its bound (a cache that only grows is a
// memory exhaustion anyone with a valid token can drive), and when full it
// forgets the expired entries before any live one.
func TestVerifiedCacheIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	entry := func(exp time.Time) verifiedEntry { return verifiedEntry{user: identity.User{ID: "u", ExpiresAt: exp}} }
	live, expired := entry(now.Add(time.Minute)), entry(now)
	tests := []struct {
		name     string
		first    []verifiedEntry // put in order, then one more live entry
		wantLen  int             // after the last put
		keepLive bool            // every live entry of first is still there
	}{
		{"filling up with live entries", []verifiedEntry{live, live, live, live, live, live}, 3, false},
		{"expired entries go first", []verifiedEntry{expired, live, expired}, 2, true},
		{"below the bound nothing goes", []verifiedEntry{live}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newVerified(3)
			for i, e := range append(tt.first, live) {
				c.put(cacheKey(fmt.Sprint(i)), e, now)
				if n := c.len(); n > 3 {
					t.Fatalf("after %d puts the cache holds %d entries, want at most 3", i+1, n)
				}
			}
			if n := c.len(); n != tt.wantLen {
				t.Errorf("cache holds %d entries, want %d", n, tt.wantLen)
			}
			if _, ok := c.get(cacheKey(fmt.Sprint(len(tt.first)))); !ok {
				t.Errorf("the entry put last is not in the cache")
			}
			for i, e := range tt.first {
				if _, ok := c.get(cacheKey(fmt.Sprint(i))); tt.keepLive && e.user.ExpiresAt.After(now) && !ok {
					t.Errorf("live entry %d was dropped while an expired one could go", i)
				}
			}
		})
	}
}
