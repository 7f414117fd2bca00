package postgres

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// The scope under which the group commit's instruments are created.
const metricsScope = "github.com/bastion-bank/bastion/services/transactions/internal/postgres"

// batchMetrics are what an operator needs to see the group commit at
// work, in Prometheus as:
//
//	bank_ledger_batch_size            movements per transaction (histogram)
//	bank_ledger_batch_duration_seconds  a batch's transaction, first statement to commit (histogram)
//	bank_ledger_queue_wait_seconds    a movement's wait for its batch to start (histogram)
//	bank_ledger_queued                movements waiting now (gauge)
//	bank_ledger_busy_total            movements refused because the queue was full (counter)
//
// A transfer's time in the ledger is its queue wait plus its batch's
// duration: under load the first grows before the second does, and a batch
// size stuck at MaxBatch with the queue full means the ledger, not the edge,
// is the bottleneck (docs/runbooks.md, "BastionLedgerBusy"). Nothing in them
// names a user, an account or an amount.
type batchMetrics struct {
	size     metric.Int64Histogram
	duration metric.Float64Histogram
	wait     metric.Float64Histogram
	busy     metric.Int64Counter
}

// Bucket bounds: sizes up to DefaultMaxBatch; times from a lone transfer on
// an idle ledger (a few hundred µs) to a stalled batch (seconds).
var (
	sizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128}
	timeBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
)

// newBatchMetrics creates the instruments on mp (nil: a no-op provider) and
// reports queued as the gauge. An instrument the SDK refuses is replaced
// by a no-op one: metrics must never stop the ledger.
func newBatchMetrics(mp metric.MeterProvider, queued func() int) batchMetrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(metricsScope)
	nm := noop.Meter{}
	var b batchMetrics
	var err error
	if b.size, err = m.Int64Histogram("bank_ledger_batch_size",
		metric.WithDescription("Money movements the ledger committed in one transaction."),
		metric.WithExplicitBucketBoundaries(sizeBuckets...)); err != nil {
		b.size, _ = nm.Int64Histogram("")
	}
	if b.duration, err = m.Float64Histogram("bank_ledger_batch_duration", metric.WithUnit("s"),
		metric.WithDescription("Time one group-commit transaction took, first statement to commit."),
		metric.WithExplicitBucketBoundaries(timeBuckets...)); err != nil {
		b.duration, _ = nm.Float64Histogram("")
	}
	if b.wait, err = m.Float64Histogram("bank_ledger_queue_wait", metric.WithUnit("s"),
		metric.WithDescription("Time a money movement waited for its group-commit transaction to start."),
		metric.WithExplicitBucketBoundaries(timeBuckets...)); err != nil {
		b.wait, _ = nm.Float64Histogram("")
	}
	if b.busy, err = m.Int64Counter("bank_ledger_busy",
		metric.WithDescription("Money movements refused because the group-commit queue was full (503 ledger_busy).")); err != nil {
		b.busy, _ = nm.Int64Counter("")
	}
	// The series exists from the start, at 0: a dashboard or an alert sees
	// the first refusal as an increase rather than as a new series.
	b.busy.Add(context.Background(), 0)
	_, _ = m.Int64ObservableGauge("bank_ledger_queued",
		metric.WithDescription("Money movements waiting for a group-commit transaction now."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(queued()))
			return nil
		}))
	return b
}

// ran records a batch that started at start and ended at end.
func (b batchMetrics) ran(ms []*member, start, end time.Time) {
	ctx := ms[0].ctx
	b.size.Record(ctx, int64(len(ms)))
	b.duration.Record(ctx, end.Sub(start).Seconds())
	for _, m := range ms {
		b.wait.Record(m.ctx, start.Sub(m.queued).Seconds())
	}
}

// refused records a movement refused with ErrBusy.
func (b batchMetrics) refused(ctx context.Context) { b.busy.Add(ctx, 1) }
