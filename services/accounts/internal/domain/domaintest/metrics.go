package domaintest

import (
	"context"
	"sync"
)

// Metrics is a domain.Metrics that remembers what it counted.
type Metrics struct {
	mu     sync.Mutex
	counts map[string]int
}

// NewMetrics returns an empty Metrics.
func NewMetrics() *Metrics { return &Metrics{counts: make(map[string]int)} }

// Event implements domain.Metrics; it counts under event+":"+reason.
func (m *Metrics) Event(_ context.Context, event, reason string) { m.add(event + ":" + reason) }

func (m *Metrics) add(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[key]++
}

// Count returns how often key was counted.
func (m *Metrics) Count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[key]
}
