package token

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
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

// TestVerifierCachesAsConfigured: CacheSize zero means DefaultCacheSize, a
// size given is the bound, a negative one turns the cache off; and a token
// verified once is remembered exactly when there is a cache, its next use
// answered from the entry within the clock's leeway. Which path answered
// shows by lowering the lifetime bound after the first check: only the
// full check looks at it again.
func TestVerifierCachesAsConfigured(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Unix(1_900_000_000, 0) }
	ks, err := OpenKeyStore(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	signer := NewSigner(ks, SignerConfig{Issuer: "bastion-auth", Audience: "bastion", Now: now})
	raw, _, err := signer.Sign("0b8c1a2e-4f6d-4e3a-9c1b-2d3e4f5a6b7c", []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		size  int
		bound int // of the cache; 0: no cache
	}{
		{"zero is the default", 0, DefaultCacheSize},
		{"a size is the bound", 5, 5},
		{"negative is off", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys := NewKeySet(func(context.Context) ([]JWK, error) { return ks.PublicKeys(), nil }, KeySetConfig{Now: now})
			v := NewVerifier(keys, VerifierConfig{Issuer: "bastion-auth", Audience: "bastion", Now: now, CacheSize: tt.size}, nil)
			bound := 0
			if v.cache != nil {
				bound = v.cache.max
			}
			if bound != tt.bound {
				t.Fatalf("NewVerifier(CacheSize %d) remembers up to %d tokens, want %d", tt.size, bound, tt.bound)
			}
			if _, err := v.Verify(context.Background(), raw); err != nil {
				t.Fatalf("Verify = %v", err)
			}
			cached := tt.bound > 0
			if cached && v.cache.len() != 1 {
				t.Errorf("after one Verify the cache holds %d entries, want 1", v.cache.len())
			}
			v.cfg.MaxLifetime = time.Second
			_, err := v.Verify(context.Background(), raw)
			if cached && err != nil {
				t.Errorf("Verify(remembered token) = %v, want it answered from the cache", err)
			}
			if e, ok := errs.As(err); !cached && (!ok || e.Reason != ReasonTooLong) {
				t.Errorf("Verify(no cache, lifetime bound lowered) = %v, want %s", err, ReasonTooLong)
			}
		})
	}
}
