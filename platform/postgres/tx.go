package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// MaxTxAttempts is how many times InTx runs a function that keeps losing
// serialization races before it gives up.
const MaxTxAttempts = 10

// TxStarter begins transactions; *pgxpool.Pool and *pgx.Conn satisfy it.
type TxStarter interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// InTx runs fn in a transaction with opts and commits it if fn returns nil.
//
// When Postgres aborts the transaction with serialization_failure (40001) or
// deadlock_detected (40P01), which SERIALIZABLE transactions and
// lock-ordering races cause in normal operation, InTx rolls back and runs fn
// again from the start, up to MaxTxAttempts times with a short random pause
// between tries. fn must therefore have no effects outside the transaction.
// After the last attempt it returns an Unavailable error wrapping the
// Postgres error. Any other error from fn, Begin or Commit is returned
// unchanged. If fn panics, the transaction is rolled back and the panic
// continues.
func InTx(ctx context.Context, db TxStarter, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	return retry(ctx, func() error { return runTx(ctx, db, opts, fn) })
}

// retry runs attempt until it succeeds, fails with an error that is not a
// lost race, or has lost MaxTxAttempts races (InTx's policy).
func retry(ctx context.Context, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if err == nil || !retryable(err) {
			return err
		}
		if n == MaxTxAttempts {
			return errs.Wrap(errs.Unavailable, "too much contention, try again",
				fmt.Errorf("transaction gave up after %d attempts: %w", n, err))
		}
		if err := sleep(ctx, backoff(n)); err != nil {
			return errs.Wrap(errs.Unavailable, "request cancelled", err)
		}
	}
}

// runTx makes one attempt.
func runTx(ctx context.Context, db TxStarter, opts pgx.TxOptions, fn func(pgx.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		// The rollback runs even if ctx is done, so the connection goes back
		// to the pool clean; its own error adds nothing to fn's.
		tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return tx.Commit(ctx)
}

// retryable reports whether err means "run the whole transaction again".
func retryable(err error) bool {
	code := sqlState(err)
	return code == codeSerializationFailure || code == codeDeadlockDetected
}

// backoff returns a random pause before attempt+1: up to 1ms, 2ms, 4ms …
// capped at 50ms. The randomness keeps two losers of the same race from
// colliding again on the next try.
func backoff(attempt int) time.Duration {
	ceiling := min(time.Millisecond<<(attempt-1), 50*time.Millisecond)
	return ceiling/2 + rand.N(ceiling/2+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
