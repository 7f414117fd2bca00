package ratelimit

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of keys a Memory limiter tracks when NewMemory
// is given zero or less. At about a hundred bytes a key it bounds the limiter
// to roughly ten megabytes.
const DefaultMaxKeys = 100_000

// Memory is a GCRA limiter that keeps its state in this process. It is safe
// for concurrent use, and its memory is bounded: a key whose allowance has
// refilled completely is forgotten (it behaves exactly like a new key), and
// when maxKeys keys are still refilling the one closest to full is evicted,
// which grants that key at most the few requests it had not yet regained.
//
// An attacker who cycles through more than maxKeys keys faster than they
// refill can therefore earn extra requests; size maxKeys for the expected
// number of active clients, and limit by a key the attacker cannot mint freely.
type Memory struct {
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex
	entries map[string]*entry
	byTAT   tatHeap // entries ordered by theoretical arrival time, earliest first
}

// entry is one key's state: its theoretical arrival time (TAT), the instant
// at which its allowance will have refilled completely plus one interval.
type entry struct {
	key   string
	tat   time.Time
	index int // position in the heap, kept by tatHeap
}

// NewMemory returns an in-memory limiter that reads the time from now (pass
// time.Now outside tests) and tracks at most maxKeys keys.
func NewMemory(now func() time.Time, maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Memory{now: now, maxKeys: maxKeys, entries: make(map[string]*entry)}
}

// Allow spends one request of key's allowance under l, if there is one.
// It returns an error only for an invalid Limit.
func (m *Memory) Allow(_ context.Context, key string, l Limit) (Result, error) {
	l, err := l.normalize()
	if err != nil {
		return Result{}, err
	}
	k := storageKey(l.Name, key)

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.forgetFull(now)

	e := m.entries[k]
	tat := now
	if e != nil && e.tat.After(now) {
		tat = e.tat
	}
	interval := l.interval()
	newTAT := tat.Add(interval)
	// The request fits if, after it, the key is no more than Burst intervals
	// ahead of now.
	diff := now.Sub(newTAT.Add(-interval * time.Duration(l.Burst)))
	if diff < 0 {
		return Result{Limit: l, RetryAfter: -diff, ResetAfter: tat.Sub(now)}, nil
	}
	m.store(k, e, newTAT)
	return Result{
		Allowed:    true,
		Limit:      l,
		Remaining:  int(diff / interval),
		ResetAfter: newTAT.Sub(now),
	}, nil
}

// Check reports whether key could spend one request under l now, without
// spending it. It returns an error only for an invalid Limit.
func (m *Memory) Check(_ context.Context, key string, l Limit) (Result, error) {
	l, err := l.normalize()
	if err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	tat := now
	if e := m.entries[storageKey(l.Name, key)]; e != nil && e.tat.After(now) {
		tat = e.tat
	}
	interval := l.interval()
	diff := now.Sub(tat.Add(interval).Add(-interval * time.Duration(l.Burst)))
	if diff < 0 {
		return Result{Limit: l, RetryAfter: -diff, ResetAfter: tat.Sub(now)}, nil
	}
	return Result{Allowed: true, Limit: l, Remaining: int(diff/interval) + 1, ResetAfter: tat.Sub(now)}, nil
}

// Len returns the number of keys currently tracked, for metrics and tests.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// forgetFull drops every key whose allowance has refilled: forgetting it
// changes no future decision.
func (m *Memory) forgetFull(now time.Time) {
	for len(m.byTAT) > 0 && !m.byTAT[0].tat.After(now) {
		e := heap.Pop(&m.byTAT).(*entry)
		delete(m.entries, e.key)
	}
}

// store records key's new TAT, evicting the key closest to full if the
// limiter is at capacity.
func (m *Memory) store(key string, e *entry, tat time.Time) {
	if e != nil {
		e.tat = tat
		heap.Fix(&m.byTAT, e.index)
		return
	}
	for len(m.entries) >= m.maxKeys {
		old := heap.Pop(&m.byTAT).(*entry)
		delete(m.entries, old.key)
	}
	e = &entry{key: key, tat: tat}
	m.entries[key] = e
	heap.Push(&m.byTAT, e)
}

// tatHeap is a min-heap of entries by TAT, so that both the keys that have
// refilled and the eviction victim are found in O(log n).
type tatHeap []*entry

func (h tatHeap) Len() int           { return len(h) }
func (h tatHeap) Less(i, j int) bool { return h[i].tat.Before(h[j].tat) }

func (h tatHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *tatHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *tatHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}
