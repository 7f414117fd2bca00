package postgres

import (
	"testing"
	"time"
)

// TestBackoffBounds pins the retry pause: from half to all of a ceiling
// that doubles from 1 ms with each attempt and stops at 50 ms, and random
// within those bounds, so two losers of one race do not meet again.
func TestBackoffBounds(t *testing.T) {
	tests := []struct {
		attempt int
		ceiling time.Duration
	}{
		{1, time.Millisecond},
		{2, 2 * time.Millisecond},
		{3, 4 * time.Millisecond},
		{6, 32 * time.Millisecond},
		{7, 50 * time.Millisecond},
		{MaxTxAttempts, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(tt.attempt)
			if d < tt.ceiling/2 || d > tt.ceiling {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.attempt, d, tt.ceiling/2, tt.ceiling)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Errorf("backoff(%d) took %d distinct values in 200 draws, want it random", tt.attempt, len(seen))
		}
	}
}
