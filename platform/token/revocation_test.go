package token_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
)

func TestRevocationList(t *testing.T) {
	t.Parallel()
	now := time.Now()
	r := token.NewRevocationList()
	r.Add("live", now.Add(time.Hour))
	r.Add("just-expired", now.Add(-10*time.Second)) // still within a verifier's leeway
	r.Add("long-expired", now.Add(-time.Hour))
	for jti, want := range map[string]bool{"live": true, "just-expired": true, "long-expired": true, "other": false, "": false} {
		if got := r.IsRevoked(jti); got != want {
			t.Errorf("IsRevoked(%q) after Add = %v, want %v", jti, got, want)
		}
	}
	r.Prune()
	for jti, want := range map[string]bool{"live": true, "just-expired": true, "long-expired": false} {
		if got := r.IsRevoked(jti); got != want {
			t.Errorf("IsRevoked(%q) after Prune = %v, want %v", jti, got, want)
		}
	}
	snapshot := map[string]time.Time{"b": now.Add(time.Hour), "stale": now.Add(-time.Hour)}
	r.Replace(snapshot)
	snapshot["c"] = now.Add(time.Hour) // the list must not share the caller's map
	for jti, want := range map[string]bool{"live": false, "b": true, "stale": false, "c": false} {
		if got := r.IsRevoked(jti); got != want {
			t.Errorf("IsRevoked(%q) after Replace = %v, want %v", jti, got, want)
		}
	}
	if r.Len() != 1 {
		t.Errorf("Len() after Replace = %d, want 1", r.Len())
	}
}

// TestRevocationListBoundsItself: a stream of revocations of expired tokens
// (or a flood of logouts) does not grow the list without bound even if
// nobody calls Prune.
func TestRevocationListBoundsItself(t *testing.T) {
	t.Parallel()
	r := token.NewRevocationList()
	past := time.Now().Add(-time.Hour)
	for i := range 10_000 {
		r.Add(fmt.Sprint(i), past)
	}
	if n := r.Len(); n >= 256 {
		t.Errorf("Len() after 10000 expired Adds = %d, want fewer than 256", n)
	}
}

// TestRevocationListConcurrent runs adders, a resync loop and readers at
// once (run with -race). A revocation present in every snapshot must never
// look absent, not even for the instant a Replace swaps the set.
func TestRevocationListConcurrent(t *testing.T) {
	t.Parallel()
	r := token.NewRevocationList()
	exp := time.Now().Add(time.Hour)
	const pinned = "in-every-snapshot"
	r.Add(pinned, exp)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 500 {
			r.Replace(map[string]time.Time{pinned: exp})
			r.Prune()
		}
	})
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				r.Add(fmt.Sprintf("%d-%d", w, i), exp)
			}
		})
		wg.Go(func() {
			for range 500 {
				if !r.IsRevoked(pinned) {
					t.Errorf("IsRevoked(%q) = false during a resync", pinned)
					return
				}
			}
		})
	}
	wg.Wait()
	r.Add("after", exp)
	if !r.IsRevoked("after") || !r.IsRevoked(pinned) {
		t.Error("IsRevoked = false for revocations added after the storm")
	}
}
