package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// exposition is a transactions process's /metrics as the OpenTelemetry
// Prometheus exporter writes it: the group-commit histograms among other
// series. Waits fall in three buckets: up to 1 ms, up to 10 ms, beyond.
func exposition(batches, moves, commitSum float64, waits [3]float64, waitSum float64) string {
	return fmt.Sprintf(`# HELP bank_ledger_batch_size Money movements the ledger committed in one transaction.
# TYPE bank_ledger_batch_size histogram
bank_ledger_batch_size_bucket{le="64"} %[1]g
bank_ledger_batch_size_bucket{le="+Inf"} %[1]g
bank_ledger_batch_size_sum %[2]g
bank_ledger_batch_size_count %[1]g
bank_ledger_batch_duration_seconds_bucket{le="0.01"} %[1]g
bank_ledger_batch_duration_seconds_bucket{le="+Inf"} %[1]g
bank_ledger_batch_duration_seconds_sum %[3]g
bank_ledger_batch_duration_seconds_count %[1]g
bank_ledger_queue_wait_seconds_bucket{le="0.001"} %[4]g
bank_ledger_queue_wait_seconds_bucket{le="0.01"} %[5]g
bank_ledger_queue_wait_seconds_bucket{le="+Inf"} %[6]g
bank_ledger_queue_wait_seconds_sum %[7]g
bank_ledger_queue_wait_seconds_count %[6]g
bank_ledger_queued 3
rpc_server_call_duration_seconds_count{rpc_method="CreateTransfer"} 42
`, batches, moves, commitSum, waits[0], waits[0]+waits[1], waits[0]+waits[1]+waits[2], waitSum)
}

func TestLedgerDelta(t *testing.T) {
	before := parseLedger(strings.NewReader(exposition(10, 10, 0.02, [3]float64{10, 0, 0}, 0.001)))
	// Then 100 batches carrying 2,000 movements, 0.4 s of transactions;
	// of the 2,000 waits, 1,000 under 1 ms, 980 up to 10 ms, 20 beyond.
	after := parseLedger(strings.NewReader(exposition(110, 2010, 0.42, [3]float64{1010, 980, 20}, 0.001+8)))
	got, ok := ledgerDelta(before, after)
	if !ok {
		t.Fatal("ledgerDelta found no batches")
	}
	want := ledgerStats{PerCommit: 20, Commit: 4 * time.Millisecond, CommitP99: 9900 * time.Microsecond,
		Wait: 4 * time.Millisecond, WaitP99: 10 * time.Millisecond}
	near := func(a, b time.Duration) bool { return a-b < time.Microsecond && b-a < time.Microsecond }
	if got.PerCommit != want.PerCommit || !near(got.Commit, want.Commit) || !near(got.CommitP99, want.CommitP99) ||
		!near(got.Wait, want.Wait) || !near(got.WaitP99, want.WaitP99) {
		t.Errorf("ledgerDelta = %+v, want %+v", got, want)
	}

	tests := []struct {
		name          string
		before, after ledgerSample
	}{
		{"a build without the metrics", nil, nil},
		{"no scrape before the phase", nil, after},
		{"no batch during the phase", after, after},
		{"a process without them before", parseLedger(strings.NewReader("rpc_server_call_duration_seconds_count 1\n")), after},
	}
	for _, tt := range tests {
		if got, ok := ledgerDelta(tt.before, tt.after); ok {
			t.Errorf("%s: ledgerDelta = %+v, want none", tt.name, got)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := &histogram{buckets: map[float64]float64{0.001: 50, 0.01: 90, 0.1: 100, inf(): 100}, count: 100}
	tests := []struct {
		q, want float64
	}{
		{0.5, 0.001},    // exactly the first bucket's count
		{0.25, 0.0005},  // halfway into the first bucket, from 0
		{0.7, 0.0055},   // halfway into the second
		{0.95, 0.055},   // halfway into the third
		{0.999, 0.0991}, // near the top of the last finite one
	}
	for _, tt := range tests {
		if got := h.quantile(tt.q); got-tt.want > 1e-9 || tt.want-got > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	beyond := &histogram{buckets: map[float64]float64{0.01: 1, inf(): 10}, count: 10}
	if got := beyond.quantile(0.99); got != 0.01 {
		t.Errorf("quantile in +Inf = %v, want the highest finite bound 0.01", got)
	}
}

func inf() float64 { return math.Inf(1) }
