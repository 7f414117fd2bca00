package password

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// ErrBusy is returned when every hashing slot is taken and the wait queue is
// full. It maps to RESOURCE_EXHAUSTED (HTTP 429) with a short Retry-After:
// shedding the excess is better than queueing it without limit, which would
// only turn a login storm into memory growth and timeouts for everyone.
var ErrBusy = errs.Throttled("hash_pool_busy", "server busy, try again shortly", time.Second)

// PoolConfig bounds the hashing work.
type PoolConfig struct {
	// Workers is how many hashes may run at once; 0 means GOMAXPROCS.
	Workers int
	// Queue is how many callers may wait for a worker; 0 means 4 per worker.
	// A negative value means none may wait.
	Queue int
}

// Hasher hashes and verifies passwords with argon2id, running at most Workers
// hashes at a time. It is safe for concurrent use.
type Hasher struct {
	params   Params
	slots    chan struct{}
	waiting  atomic.Int64
	maxQueue int64
	dummy    string // a hash of a random password, for unknown accounts
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
	h := &Hasher{params: params, slots: make(chan struct{}, pool.Workers), maxQueue: int64(pool.Queue)}
	dummy, err := hash(rand.Text(), params)
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

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

// acquire takes a worker slot, waiting only if fewer than maxQueue callers
// already wait. The returned function gives the slot back.
func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	release := func() { <-h.slots }
	select {
	case h.slots <- struct{}{}:
		return release, nil
	default:
	}
	if h.waiting.Add(1) > h.maxQueue {
		h.waiting.Add(-1)
		return nil, ErrBusy
	}
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, errs.Wrap(errs.Unavailable, "request cancelled", ctx.Err())
	}
}
