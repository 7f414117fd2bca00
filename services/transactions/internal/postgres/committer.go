package postgres

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// GroupCommit bounds the ledger's group commit. Money movements queue for a
// committer; each committer takes every movement waiting (up to MaxBatch)
// and decides and writes them in one transaction, so that under load one
// commit carries many transfers and an idle ledger commits each at once,
// with no timer. Zero fields take the defaults below.
type GroupCommit struct {
	// MaxBatch is the most movements one transaction carries.
	MaxBatch int
	// MaxQueue is the most movements that may wait for a committer; one
	// more is refused with domain.ErrBusy (503 with Retry-After) rather
	// than made to wait longer.
	MaxQueue int
	// Committers is how many batches one process may have in flight at
	// once. One by default: batches side by side mostly wait on each other's
	// row locks (transfers share accounts, every deposit the settlement
	// account), so a second committer measured slower and its batches
	// smaller (docs/performance.md, "Third round"). Replicas still run
	// their batches side by side, which is what the row locks are for.
	Committers int
	// Metrics receives the group commit's metrics (see batchMetrics); nil
	// records none.
	Metrics metric.MeterProvider
}

// The group commit defaults: at the service's 2-core scale, 64 movements
// make one transaction of about 2 ms, a queue of 1024 is about half a
// second of work at saturation, and one committer served 3,460–3,500
// transfers/s end to end where two served 3,080–3,200, with a lower p99 at
// saturation and at half of it.
const (
	DefaultMaxBatch   = 64
	DefaultMaxQueue   = 1024
	DefaultCommitters = 1
)

func (g GroupCommit) withDefaults() GroupCommit {
	if g.MaxBatch <= 0 {
		g.MaxBatch = DefaultMaxBatch
	}
	if g.MaxQueue <= 0 {
		g.MaxQueue = DefaultMaxQueue
	}
	if g.Committers <= 0 {
		g.Committers = DefaultCommitters
	}
	return g
}

// BatchStats counts what the group commit did since the store was made.
type BatchStats struct {
	Queued  int   // movements waiting for a committer now
	Batches int64 // transactions run by the committers (a batch of one included)
	Moves   int64 // movements those transactions carried
	Largest int64 // the most movements one transaction carried
	Failed  int64 // batches of several whose transaction failed as a whole
}

// Stats returns the group commit's counters.
func (s *Store) Stats() BatchStats {
	c := s.moves
	c.mu.Lock()
	queued := len(c.queue)
	c.mu.Unlock()
	return BatchStats{Queued: queued, Batches: c.batches.Load(), Moves: c.moved.Load(), Largest: c.largest.Load(),
		Failed: c.failed.Load()}
}

// member is one movement on its way through the committer.
type member struct {
	ctx    context.Context
	locks  domain.MoveLocks
	decide func(*domain.MoveState) (*domain.Posting, error)
	done   chan error // the outcome; buffered, so a committer never waits
	queued time.Time  // when submit queued it

	// Set by the batch, afresh on each attempt of its transaction.
	claimed bool
	posting *domain.Posting
	err     error
}

// committer queues movements and runs them in batches, at most
// cfg.Committers at a time, each batch on a goroutine that exits once the
// queue is empty: nothing runs while the ledger is idle.
type committer struct {
	cfg     GroupCommit
	run     func([]*member)
	metrics batchMetrics

	mu    sync.Mutex
	queue []*member
	busy  int // goroutines running batches

	batches, moved, largest, failed atomic.Int64
}

func newCommitter(cfg GroupCommit, run func([]*member)) *committer {
	c := &committer{cfg: cfg, run: run}
	c.metrics = newBatchMetrics(cfg.Metrics, c.queued)
	return c
}

// queued is how many movements wait for a committer now.
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// submit queues m and returns its outcome: ErrBusy at once if the queue is
// full. A caller that gives up while m still waits takes it out of the
// queue; once a batch holds m, the caller waits for the batch, which ends
// by the latest deadline of its members.
func (c *committer) submit(m *member) error {
	m.queued = time.Now()
	c.mu.Lock()
	if len(c.queue) >= c.cfg.MaxQueue {
		c.mu.Unlock()
		c.metrics.refused(m.ctx)
		return domain.ErrBusy
	}
	c.queue = append(c.queue, m)
	if c.busy < c.cfg.Committers {
		c.busy++
		go c.loop()
	}
	c.mu.Unlock()
	select {
	case err := <-m.done:
		return err
	case <-m.ctx.Done():
	}
	c.mu.Lock()
	if i := slices.Index(c.queue, m); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
		c.mu.Unlock()
		return errs.Wrap(errs.Unavailable, "request cancelled", m.ctx.Err())
	}
	c.mu.Unlock()
	return <-m.done
}

// loop runs batches of whatever waits until nothing does.
func (c *committer) loop() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.cfg.MaxBatch)
		if n == 0 {
			c.busy--
			c.mu.Unlock()
			return
		}
		batch := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		c.mu.Unlock()
		c.batches.Add(1)
		c.moved.Add(int64(n))
		for l := c.largest.Load(); int64(n) > l && !c.largest.CompareAndSwap(l, int64(n)); l = c.largest.Load() {
		}
		start := time.Now()
		c.run(batch)
		c.metrics.ran(batch, start, time.Now())
	}
}
