package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// collected is one collection of a reader's metrics, by instrument name.
type collected map[string]metricdata.Aggregation

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	c := collected{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			c[m.Name] = m.Data
		}
	}
	return c
}

// histogram returns the count and sum of an instrument's one data point.
func (c collected) histogram(t *testing.T, name string) (count uint64, sum float64) {
	t.Helper()
	switch h := c[name].(type) {
	case metricdata.Histogram[int64]:
		if len(h.DataPoints) == 1 {
			return h.DataPoints[0].Count, float64(h.DataPoints[0].Sum)
		}
	case metricdata.Histogram[float64]:
		if len(h.DataPoints) == 1 {
			return h.DataPoints[0].Count, h.DataPoints[0].Sum
		}
	}
	t.Fatalf("%s = %#v, want a histogram with one data point", name, c[name])
	return 0, 0
}

func (c collected) value(t *testing.T, name string) int64 {
	t.Helper()
	switch d := c[name].(type) {
	case metricdata.Gauge[int64]:
		if len(d.DataPoints) == 1 {
			return d.DataPoints[0].Value
		}
	case metricdata.Sum[int64]:
		if len(d.DataPoints) == 1 {
			return d.DataPoints[0].Value
		}
	case nil:
		return 0 // a counter nothing has added to yet
	}
	t.Fatalf("%s = %#v, want one data point", name, c[name])
	return 0
}

// TestBatchMetrics: the group commit's metrics tell an operator what it
// did: a transaction of three movements after two alone shows as three
// batches carrying five, each movement's wait is recorded, the queue gauge
// follows the queue, and a movement refused on a full queue is counted.
func TestBatchMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e := newEnv(t, withGroupCommit(postgres.GroupCommit{Committers: 1, MaxQueue: 3, Metrics: mp}))
	alice := user()
	a, b := e.open(alice, "EUR"), e.open(user(), "EUR")
	e.fund(a, 1_000, "EUR")
	base := collect(t, reader)
	batches0, _ := base.histogram(t, "bank_ledger_batch_size")
	_, moves0 := base.histogram(t, "bank_ledger_batch_size")
	waits0, _ := base.histogram(t, "bank_ledger_queue_wait")

	release := e.holdCommitter()
	waiting := make(chan error, 3)
	for i := range 3 {
		go func() { waiting <- e.transfer(alice, a, b, 1, uuid.NewString(), nil)() }()
		waitFor(t, func() bool { return e.store.Stats().Queued == i+1 })
	}
	if got := collect(t, reader).value(t, "bank_ledger_queued"); got != 3 {
		t.Errorf("bank_ledger_queued = %d while three wait, want 3", got)
	}
	if err := e.transfer(alice, a, b, 1, uuid.NewString(), nil)(); !sameErr(err, domain.ErrBusy) {
		t.Fatalf("Transfer(queue full) = %v, want %v", err, domain.ErrBusy)
	}
	release()
	for range 3 {
		if err := <-waiting; err != nil {
			t.Fatalf("Transfer(queued) = %v", err)
		}
	}
	c := collect(t, reader)
	batches, moves := c.histogram(t, "bank_ledger_batch_size")
	// holdCommitter seeds its account (a deposit, alone) and holds the
	// committer with a transfer (alone); then the three go together.
	if batches-batches0 != 3 || moves-moves0 != 5 {
		t.Errorf("bank_ledger_batch_size: %d batches carrying %v movements, want 3 carrying 5 (two alone, then three together)",
			batches-batches0, moves-moves0)
	}
	if n, _ := c.histogram(t, "bank_ledger_batch_duration"); n != batches {
		t.Errorf("bank_ledger_batch_duration has %d samples, want one per batch (%d)", n, batches)
	}
	waits, waited := c.histogram(t, "bank_ledger_queue_wait")
	if waits-waits0 != 5 || waited <= 0 {
		t.Errorf("bank_ledger_queue_wait: %d samples totalling %v s, want one per movement (5), and the three held ones waited", waits-waits0, waited)
	}
	if got := c.value(t, "bank_ledger_queued"); got != 0 {
		t.Errorf("bank_ledger_queued = %d after the batch, want 0", got)
	}
	if got := c.value(t, "bank_ledger_busy"); got != 1 {
		t.Errorf("bank_ledger_busy = %d, want the one refused movement", got)
	}
}
