package password

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// These tests drive the pool's admission with places held by the test and
// a fixed clock and estimate, never with sleeps: an overloaded pool must
// answer at once, so a test that needed time to pass would prove nothing.

// fixedClock freezes h's clock at t0 and its estimate of one hash at cost.
func fixedClock(h *Hasher, cost time.Duration) time.Time {
	t0 := time.Now()
	h.now = func() time.Time { return t0 }
	h.cost.Store(int64(cost))
	return t0
}

func wantBusy(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("%s = %v, want ErrBusy", what, err)
	}
	if e, _ := errs.As(err); e.Kind != errs.RateLimited || e.RetryAfter < time.Second {
		t.Errorf("%s = %+v, want RateLimited with a Retry-After of at least 1s", what, e)
	}
}

func TestAdmitShedsWhenEveryPlaceIsTaken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHasher(t, cheap, PoolConfig{Workers: 1, Queue: 2})
	var held []*Ticket
	for i := range 3 {
		tk, err := h.Admit(ctx)
		if err != nil {
			t.Fatalf("Admit(%d of 3 places) = %v, want a ticket", i+1, err)
		}
		held = append(held, tk)
	}
	// Nobody is hashing: the places alone are the limit, since the ones
	// admitted are still on their way to the hash (loading the account).
	_, err := h.Admit(ctx)
	wantBusy(t, "Admit(every place taken)", err)
	_, err = h.Hash(ctx, "a registration password")
	wantBusy(t, "Hash(every place taken)", err)
	_, _, err = h.Verify(ctx, "a login password", "")
	wantBusy(t, "Verify(every place taken)", err)

	held[0].Release()
	held[0].Release() // a second release must not free a place it does not hold
	if got := len(h.places); got != 2 {
		t.Fatalf("places taken after releasing one ticket twice = %d, want 2", got)
	}
	tk, err := h.Admit(ctx)
	if err != nil {
		t.Fatalf("Admit(after a release) = %v, want a ticket", err)
	}
	tk.Release()
	for _, tk := range held[1:] {
		tk.Release()
	}
	if got := len(h.places); got != 0 {
		t.Errorf("places taken after every release = %d, want 0", got)
	}
}

func TestTicketVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHasher(t, cheap, PoolConfig{Workers: 1, Queue: -1})
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pw, encoded string
		want              bool
	}{
		{"right", "correct horse battery staple", encoded, true},
		{"wrong", "correct horse battery stapler", encoded, false},
		{"unknown account", "correct horse battery staple", "", false},
	} {
		tk, err := h.Admit(ctx)
		if err != nil {
			t.Fatalf("%s: Admit() = %v", tc.name, err)
		}
		// The ticket holds the pool's only place: its own Verify must not
		// need another one.
		ok, rehash, err := tk.Verify(ctx, tc.pw, tc.encoded)
		tk.Release()
		if ok != tc.want || rehash || err != nil {
			t.Errorf("%s: Ticket.Verify() = %v, %v, %v; want %v, false, nil", tc.name, ok, rehash, err, tc.want)
		}
	}
}

func TestAdmitShedsWhatCannotFinishBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{Workers: 1, Queue: 4})
	t0 := fixedClock(h, time.Minute) // one hash takes a minute
	in := func(d time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), t0.Add(d))
		t.Cleanup(cancel)
		return ctx
	}
	// Free places, but less time left than one hash takes: refused at once.
	_, err := h.Admit(in(59 * time.Second))
	wantBusy(t, "Admit(deadline before one hash could end)", err)
	_, err = h.Hash(in(59*time.Second), "a registration password")
	wantBusy(t, "Hash(deadline before one hash could end)", err)
	if got := len(h.places); got != 0 {
		t.Fatalf("places taken after the refusals = %d, want 0", got)
	}
	// Enough for one hash: admitted.
	first, err := h.Admit(in(61 * time.Second))
	if err != nil {
		t.Fatalf("Admit(room for one hash) = %v, want a ticket", err)
	}
	defer first.Release()
	// With one worker and one caller ahead, two hashes must fit.
	_, err = h.Admit(in(119 * time.Second))
	wantBusy(t, "Admit(one ahead, room for one hash)", err)
	second, err := h.Admit(in(121 * time.Second))
	if err != nil {
		t.Fatalf("Admit(one ahead, room for two hashes) = %v, want a ticket", err)
	}
	second.Release()
	// Without a deadline there is nothing to miss.
	third, err := h.Admit(context.Background())
	if err != nil {
		t.Fatalf("Admit(no deadline) = %v, want a ticket", err)
	}
	third.Release()
}

func TestWaitingCallerGivesUpWhileItsHashCanStillBeAnswered(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{Workers: 1, Queue: 4})
	t0 := fixedClock(h, time.Minute)
	// The test owns the timer that bounds the wait.
	asked := make(chan time.Duration, 1)
	fire := make(chan time.Time)
	h.timer = func(d time.Duration) (<-chan time.Time, func() bool) {
		asked <- d
		return fire, func() bool { return true }
	}
	busy, err := h.acquire(context.Background()) // the only worker is busy
	if err != nil {
		t.Fatal(err)
	}
	defer busy()

	// Too little time to wait a round and hash: refused without waiting.
	short, cancel := context.WithDeadline(context.Background(), t0.Add(119*time.Second))
	defer cancel()
	_, err = h.Hash(short, "a registration password")
	wantBusy(t, "Hash(deadline before the wait and the hash could end)", err)

	// Time for that: it waits, but only until a hash's time is left.
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(time.Hour))
	defer cancel()
	tk, err := h.Admit(ctx)
	if err != nil {
		t.Fatalf("Admit() = %v", err)
	}
	defer tk.Release()
	done := make(chan error, 1)
	go func() {
		_, _, err := tk.Verify(ctx, "a login password", "")
		done <- err
	}()
	if d := <-asked; d != time.Hour-time.Minute {
		t.Errorf("wait bounded by %v, want %v: the deadline less one hash", d, time.Hour-time.Minute)
	}
	fire <- t0.Add(time.Hour - time.Minute)
	wantBusy(t, "Ticket.Verify(wait ran out)", <-done)
	if n := h.waiting.Load(); n != 0 {
		t.Errorf("waiting = %d after the caller gave up, want 0", n)
	}
}

func TestEstimateFollowsMeasuredHashes(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{})
	t0 := fixedClock(h, 0)
	h.now = func() time.Time { return t0.Add(8 * time.Second) }
	h.measure(t0) // one hash of 8s moves the estimate by an eighth of the way
	if got := h.estimate(); got != time.Second {
		t.Errorf("estimate after one 8s hash from 0 = %v, want 1s", got)
	}
	for range 100 {
		h.measure(t0)
	}
	if got := h.estimate(); got < 7900*time.Millisecond || got > 8*time.Second {
		t.Errorf("estimate after many 8s hashes = %v, want about 8s", got)
	}
}
