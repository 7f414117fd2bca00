package domain

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// subscriberBuffer is how many batches a watcher may fall behind before it is
// dropped. A dropped watcher reconnects and gets a fresh snapshot, which is
// cheaper and safer than letting one slow verifier hold memory without bound.
const subscriberBuffer = 256

// Revocations is this replica's view of every revoked access token still in
// force, and the fan-out to everyone watching it (WatchRevocations streams
// and the service's own verifier). It is fed by this replica's own
// revocations, by Postgres notifications from the other replicas, and by a
// periodic resync from the table; adding a known id again does nothing, so
// the three paths may overlap freely.
type Revocations struct {
	now func() time.Time

	mu    sync.Mutex
	set   map[string]time.Time
	subs  map[*Subscription]struct{}
	hooks []func([]Revocation)
}

// NewRevocations returns an empty set.
func NewRevocations(now func() time.Time) *Revocations {
	if now == nil {
		now = time.Now
	}
	return &Revocations{now: now, set: make(map[string]time.Time), subs: make(map[*Subscription]struct{})}
}

// Add records revocations and passes the new, unexpired ones to every hook
// and subscriber. It also forgets revocations that have expired.
func (r *Revocations) Add(revs []Revocation) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, exp := range r.set {
		if !exp.After(now) {
			delete(r.set, id)
		}
	}
	var fresh []Revocation
	for _, v := range revs {
		if _, known := r.set[v.TokenID]; known || v.TokenID == "" || !v.ExpiresAt.After(now) {
			continue
		}
		r.set[v.TokenID] = v.ExpiresAt
		fresh = append(fresh, v)
	}
	if len(fresh) == 0 {
		return
	}
	for _, h := range r.hooks {
		h(fresh)
	}
	for s := range r.subs {
		select {
		case s.c <- fresh:
		default:
			// The watcher is too slow: drop it so it reconnects and resyncs.
			delete(r.subs, s)
			close(s.c)
		}
	}
}

// Contains reports whether the token id is revoked and unexpired.
func (r *Revocations) Contains(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, ok := r.set[id]
	return ok && exp.After(r.now())
}

// OnAdd registers fn to be called, synchronously and in order, with the
// current set and then with every batch of new revocations. It is for
// in-process consumers that must never lag, such as the service's own
// token verifier; fn must not block or call back into r.
func (r *Revocations) OnAdd(fn func([]Revocation)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.snapshotLocked())
	r.hooks = append(r.hooks, fn)
}

// Subscribe returns the current set and a subscription that receives every
// later batch of new revocations, with nothing lost in between.
func (r *Revocations) Subscribe() ([]Revocation, *Subscription) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Subscription{r: r, c: make(chan []Revocation, subscriberBuffer)}
	r.subs[s] = struct{}{}
	return r.snapshotLocked(), s
}

func (r *Revocations) snapshotLocked() []Revocation {
	now := r.now()
	out := make([]Revocation, 0, len(r.set))
	for _, id := range slices.Sorted(maps.Keys(r.set)) {
		if exp := r.set[id]; exp.After(now) {
			out = append(out, Revocation{TokenID: id, ExpiresAt: exp})
		}
	}
	return out
}

// Sync loads every active revocation from repo into r.
func (r *Revocations) Sync(ctx context.Context, repo Store) error {
	revs, err := repo.ActiveRevocations(ctx, r.now())
	if err != nil {
		return err
	}
	r.Add(revs)
	return nil
}

// Subscription is one watcher of a Revocations set.
type Subscription struct {
	r    *Revocations
	c    chan []Revocation
	once sync.Once
}

// Updates delivers batches of new revocations. It is closed when the
// subscription is closed or was dropped for falling behind.
func (s *Subscription) Updates() <-chan []Revocation { return s.c }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.r.mu.Lock()
		defer s.r.mu.Unlock()
		if _, ok := s.r.subs[s]; ok {
			delete(s.r.subs, s)
			close(s.c)
		}
	})
}

// RunMaintenance resyncs the revocation set from the database and purges
// expired rows every interval until ctx ends. The resync is the fallback for
// notifications lost while a replica's listener was reconnecting; errors are
// passed to report and the loop carries on.
func (s *Service) RunMaintenance(ctx context.Context, every time.Duration, report func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.revs.Sync(ctx, s.store); err != nil && ctx.Err() == nil {
			report(err)
		}
		if err := s.store.PurgeExpired(ctx, s.now().UTC(), s.cfg.Window); err != nil && ctx.Err() == nil {
			report(err)
		}
	}
}
