package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// BatchSender sends a batch of statements: *pgxpool.Pool on a connection
// of its own, pgx.Tx and *BatchTx inside their transaction.
type BatchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// BatchTx is a transaction whose BEGIN costs no round trip of its own: it
// travels in the same round trip as the transaction's first batch, ahead of
// the batch's statements (pgx's Batch.BeginTx). A transaction that only
// sends batches, as the ledger's money paths do, saves one round trip of
// its four or five. On a busy host each round trip is two wake-ups and a
// wait to be scheduled on both sides, so that is latency and CPU on every
// transfer (docs/performance.md, "Fourth round").
//
// COMMIT keeps its own round trip, sent only after the caller has read and
// checked every result, so that a check the caller makes (rows touched, a
// balance where the entries say) can still refuse the transaction.
//
// Like pgx.Tx, a BatchTx is used by one goroutine, inside InBatchTx.
type BatchTx struct {
	db   BatchSender
	opts pgx.TxOptions
	tx   pgx.Tx // once the first batch is sent
}

// SendBatch sends b in the transaction; the first call begins it. If BEGIN
// fails, so does every statement of b: each of its results reports the
// error.
func (t *BatchTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.tx != nil {
		return t.tx.SendBatch(ctx, b)
	}
	first := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, 1+len(b.QueuedQueries))}
	first.BeginTx(t.opts)
	first.QueuedQueries = append(first.QueuedQueries, b.QueuedQueries...)
	br := t.db.SendBatch(ctx, first)
	t.tx = br.Tx()
	// BEGIN's result. An error stays with br: every result after it, and
	// Close, report it.
	br.Exec()
	return br
}

// InBatchTx runs fn in a BatchTx with opts on a connection of db and
// commits it if fn returns nil, with InTx's contract: a lost serialization
// or deadlock race runs fn again from the start (up to MaxTxAttempts, then
// an Unavailable error), any other error from fn or COMMIT is returned
// unchanged, and a panic in fn rolls back and continues. A function that
// sends nothing begins nothing. A connection whose transaction could not be
// ended is closed rather than reused (pgxpool's rule for a connection
// released inside a transaction).
func InBatchTx(ctx context.Context, db BatchSender, opts pgx.TxOptions, fn func(*BatchTx) error) error {
	return retry(ctx, func() error { return runBatchTx(ctx, db, opts, fn) })
}

// runBatchTx makes one attempt.
func runBatchTx(ctx context.Context, db BatchSender, opts pgx.TxOptions, fn func(*BatchTx) error) (err error) {
	t := &BatchTx{db: db, opts: opts}
	rollback := func() {
		// Even if ctx is done, so the connection goes back to the pool
		// clean; its own error adds nothing to fn's.
		if t.tx != nil {
			t.tx.Rollback(context.WithoutCancel(ctx))
		}
	}
	defer func() {
		if p := recover(); p != nil {
			rollback()
			panic(p)
		}
	}()
	if err := fn(t); err != nil {
		rollback()
		return err
	}
	if t.tx == nil {
		return nil
	}
	return t.tx.Commit(ctx)
}
