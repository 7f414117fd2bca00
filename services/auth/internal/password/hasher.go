package password

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// ErrBusy is returned when the pool cannot take the caller in time: every
// place is taken, or the queue ahead of it would outlast the caller's
// deadline. It maps to RESOURCE_EXHAUSTED (HTTP 429) with a short
// Retry-After: shedding the excess at once is better than queueing it,
// which only turns a login storm into memory growth and timeouts for
// everyone.
var ErrBusy = errs.Throttled("hash_pool_busy", "server busy, try again shortly", time.Second)

// PoolConfig bounds the hashing work.
type PoolConfig struct {
	// Workers is how many hashes may run at once; 0 means GOMAXPROCS.
	Workers int
	// Queue is how many callers may wait for a worker; 0 means 4 per worker.
	// A negative value means none may wait.
	Queue int
}

// costWeight is the weight of the newest hash in the running estimate of
// one hash's duration (an exponentially weighted moving average): heavy
// enough to follow a machine that slows down under load within a few
// hashes, light enough that one slow hash does not start a shedding spree.
const costWeight = 0.125

// Hasher hashes and verifies passwords with argon2id, running at most Workers
// hashes at a time and letting at most Queue more callers wait. It is safe
// for concurrent use.
//
// Admission is deadline-aware. The Hasher keeps a running estimate of how
// long one hash takes; a caller whose deadline would pass before the
// callers ahead of it and its own hash are done is refused with ErrBusy at
// once, and one already waiting gives up with ErrBusy when only its own
// hash's time is left. A request that cannot be served in time thus gets a
// 429 now rather than a 503 when its deadline passes.
type Hasher struct {
	params  Params
	workers int
	places  chan struct{} // Workers+Queue: every caller admitted, hashing or not
	slots   chan struct{} // Workers: callers hashing now
	waiting atomic.Int64  // callers waiting for a slot
	cost    atomic.Int64  // estimated duration of one hash, in nanoseconds
	dummy   string        // a hash of a random password, for unknown accounts

	// Test seams; time.Now and time.NewTimer outside tests.
	now   func() time.Time
	timer func(time.Duration) (<-chan time.Time, func() bool)
}

// NewHasher returns a Hasher that makes new hashes with params.
func NewHasher(params Params, pool PoolConfig) (*Hasher, error) {
	if err := params.check(); err != nil {
		return nil, fmt.Errorf("password: parameters: %w", err)
	}
	if pool.Workers <= 0 {
		pool.Workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case pool.Queue == 0:
		pool.Queue = 4 * pool.Workers
	case pool.Queue < 0:
		pool.Queue = 0
	}
	h := &Hasher{params: params, workers: pool.Workers,
		places: make(chan struct{}, pool.Workers+pool.Queue), slots: make(chan struct{}, pool.Workers),
		now: time.Now, timer: newTimer}
	// The dummy hash is also the first measurement of what a hash costs.
	start := time.Now()
	dummy, err := hash(rand.Text(), params)
	if err != nil {
		return nil, err
	}
	h.cost.Store(int64(time.Since(start)))
	h.dummy = dummy
	return h, nil
}

func newTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Ticket is a place in the pool, taken by Admit before the work that leads
// up to a hash. Holding it keeps that work bounded too: while every place is
// taken, further callers are refused before they touch the database.
type Ticket struct {
	h    *Hasher
	once sync.Once
}

// Admit takes a place in the pool without waiting, for a caller that has
// work to do (such as loading the stored hash) before it can Verify. It
// returns ErrBusy if every place is taken or if, by the current estimate,
// the callers already admitted would keep this one past its deadline. The
// ticket must be released.
func (h *Hasher) Admit(ctx context.Context) (*Ticket, error) {
	if err := h.takePlace(ctx); err != nil {
		return nil, err
	}
	return &Ticket{h: h}, nil
}

// Release gives the place back. It may be called more than once.
func (t *Ticket) Release() { t.once.Do(func() { <-t.h.places }) }

// Verify is Hasher.Verify for the holder of the ticket, which already has
// its place and only waits for a worker.
func (t *Ticket) Verify(ctx context.Context, pw, encoded string) (ok, rehash bool, err error) {
	if err := CheckLength(pw); err != nil {
		return false, false, err
	}
	release, err := t.h.takeSlot(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	return t.h.verify(pw, encoded)
}

// Hash returns the PHC string of pw. It returns an Invalid error for a
// password that is empty or too long, and ErrBusy when the pool is full.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := CheckLength(pw); err != nil {
		return "", err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	defer h.measure(h.now())
	return hash(pw, h.params)
}

// Verify reports whether pw matches encoded. If encoded is "", pw is checked
// against a dummy hash made with the current parameters and the answer is
// false: an unknown account then costs the same time as a known one, so
// response time does not reveal which emails are registered.
//
// rehash is true when the password matched but the stored hash is weaker
// than the current parameters. Verify returns ErrBusy when the pool is full
// and an Internal error for a malformed stored hash.
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) (ok, rehash bool, err error) {
	if err := CheckLength(pw); err != nil {
		return false, false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	return h.verify(pw, encoded)
}

// verify does Verify's work; the caller holds a slot.
func (h *Hasher) verify(pw, encoded string) (ok, rehash bool, err error) {
	defer h.measure(h.now())
	if encoded == "" {
		_, _, _ = verify(pw, h.dummy)
		return false, false, nil
	}
	match, p, err := verify(pw, encoded)
	if err != nil {
		return false, false, errs.Wrap(errs.Internal, "", err)
	}
	return match, match && p.weakerThan(h.params), nil
}

// measure folds the duration of a hash that started at start into the
// estimate.
func (h *Hasher) measure(start time.Time) {
	d := float64(h.now().Sub(start))
	for {
		old := h.cost.Load()
		next := int64(float64(old)*(1-costWeight) + d*costWeight)
		if h.cost.CompareAndSwap(old, next) {
			return
		}
	}
}

// acquire takes a place and then a slot. The returned function gives both back.
func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	if err := h.takePlace(ctx); err != nil {
		return nil, err
	}
	release, err := h.takeSlot(ctx)
	if err != nil {
		<-h.places
		return nil, err
	}
	return func() { release(); <-h.places }, nil
}

// takePlace takes a place without waiting, unless none is free or the
// callers already admitted would, by the estimate, keep this one past its
// deadline: those are shed.
func (h *Hasher) takePlace(ctx context.Context) error {
	select {
	case h.places <- struct{}{}:
	default:
		return ErrBusy
	}
	// Everyone admitted before us (len includes us) is served ahead of us,
	// Workers at a time; the last round is our own hash.
	rounds := (len(h.places) + h.workers - 1) / h.workers
	if !h.inTime(ctx, time.Duration(rounds)*h.estimate()) {
		<-h.places
		return ErrBusy
	}
	return nil
}

// takeSlot waits for a worker, for as long as the caller's deadline leaves
// room for its own hash after the wait. It returns ErrBusy when that room
// runs out (or is not there to begin with) and Unavailable if ctx is
// cancelled first. The returned function gives the slot back.
func (h *Hasher) takeSlot(ctx context.Context) (func(), error) {
	release := func() { <-h.slots }
	select {
	case h.slots <- struct{}{}:
		return release, nil
	default:
	}
	cost := h.estimate()
	ahead := h.waiting.Add(1) - 1
	defer h.waiting.Add(-1)
	// A slot frees each time a running hash ends; this caller's turn comes
	// after ahead+1 such ends, Workers at a time, and then its own hash runs.
	w := int64(h.workers)
	if !h.inTime(ctx, time.Duration((ahead+w)/w+1)*cost) {
		return nil, ErrBusy
	}
	var budget <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		c, stop := h.timer(deadline.Sub(h.now()) - cost)
		defer stop()
		budget = c
	}
	select {
	case h.slots <- struct{}{}:
		return release, nil
	case <-budget:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, errs.Wrap(errs.Unavailable, "request cancelled", ctx.Err())
	}
}

// estimate is the current estimate of one hash's duration.
func (h *Hasher) estimate() time.Duration { return time.Duration(h.cost.Load()) }

// inTime reports whether work expected to take d can finish before ctx's
// deadline; without a deadline, anything can.
func (h *Hasher) inTime(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || h.now().Add(d).Before(deadline)
}
