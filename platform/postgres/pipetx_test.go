package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/postgres"
)

// roundTrips records what a pool sends: each batch (its statements) and
// each query sent alone, in order.
type roundTrips struct {
	mu   sync.Mutex
	sent [][]string
}

func (r *roundTrips) add(sqls ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, sqls)
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(strings.ToLower(d.SQL))
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	var sqls []string
	for _, q := range d.Batch.QueuedQueries {
		sqls = append(sqls, strings.ToLower(q.SQL))
	}
	r.add(sqls...)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// tracedPool opens a pool on the package database whose every connection
// reports to r.
func tracedPool(t *testing.T, r *roundTrips) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(packageURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = r
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// update queues a statement that sets row id of table to v.
func update(b *pgx.Batch, table string, id, v int) {
	b.Queue("UPDATE "+table+" SET v = $1 WHERE id = $2", v, id)
}

// sendAll sends b on tx and reads every result, returning the first error.
func sendAll(ctx context.Context, tx postgres.BatchSender, b *pgx.Batch) error {
	return tx.SendBatch(ctx, b).Close()
}

func values(t *testing.T, pool *pgxpool.Pool, table string) [2]int {
	t.Helper()
	var v [2]int
	if err := pool.QueryRow(context.Background(), "SELECT (SELECT v FROM "+table+" WHERE id = 1), (SELECT v FROM "+table+" WHERE id = 2)").Scan(&v[0], &v[1]); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestInBatchTxSendsBeginWithTheFirstBatch pins the point of InBatchTx: no
// round trip of its own for BEGIN (InTx spends one), the first batch's
// statements inside the transaction, COMMIT alone and last.
func TestInBatchTxSendsBeginWithTheFirstBatch(t *testing.T) {
	t.Parallel()
	var r roundTrips
	pool := tracedPool(t, &r)
	table := newTable(t, pool)
	ctx := context.Background()
	r.mu.Lock()
	r.sent = nil
	r.mu.Unlock()

	err := postgres.InBatchTx(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx *postgres.BatchTx) error {
		b := &pgx.Batch{}
		update(b, table, 1, 5)
		if err := sendAll(ctx, tx, b); err != nil {
			return err
		}
		b = &pgx.Batch{}
		update(b, table, 2, 6)
		return sendAll(ctx, tx, b)
	})
	if err != nil {
		t.Fatalf("InBatchTx error = %v", err)
	}
	r.mu.Lock()
	sent := r.sent
	r.mu.Unlock()
	if len(sent) != 3 || len(sent[0]) != 2 || sent[0][0] != "begin isolation level read committed" ||
		len(sent[1]) != 1 || len(sent[2]) != 1 || sent[2][0] != "commit" {
		t.Errorf("round trips = %q, want [[begin isolation level read committed, update] [update] [commit]]", sent)
	}
	if v := values(t, pool, table); v != [2]int{5, 6} {
		t.Errorf("values = %v, want [5 6] committed", v)
	}
}

// TestInBatchTxRollsBack tries to leave a change behind: a failing fn, a
// statement that fails inside the first batch, a panic, and a BEGIN the
// server refuses. In each, every statement sent must be rolled back, and
// every connection returned.
func TestInBatchTxRollsBack(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	table := newTable(t, pool)
	ctx := context.Background()
	errBusiness := errors.New("business rule")
	rc := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

	tests := []struct {
		name string
		opts pgx.TxOptions
		fn   func(tx *postgres.BatchTx) error
		want func(error) bool
	}{
		{"fn refuses after both batches", rc, func(tx *postgres.BatchTx) error {
			b := &pgx.Batch{}
			update(b, table, 1, 91)
			if err := sendAll(ctx, tx, b); err != nil {
				return err
			}
			b = &pgx.Batch{}
			update(b, table, 2, 92)
			if err := sendAll(ctx, tx, b); err != nil {
				return err
			}
			return errBusiness
		}, func(err error) bool { return err == errBusiness }},
		{"statement fails in the first batch", rc, func(tx *postgres.BatchTx) error {
			b := &pgx.Batch{}
			update(b, table, 1, 93)
			b.Queue("SELECT 1/0")
			update(b, table, 2, 94)
			return sendAll(ctx, tx, b)
		}, func(err error) bool { return sqlState(err) == "22012" }},
		{"server refuses BEGIN", pgx.TxOptions{IsoLevel: "no such level"}, func(tx *postgres.BatchTx) error {
			b := &pgx.Batch{}
			update(b, table, 1, 95)
			br := tx.SendBatch(ctx, b)
			if _, err := br.Exec(); err == nil {
				t.Error("the batch's statement reported success after a failed BEGIN")
			}
			return br.Close()
		}, func(err error) bool { return sqlState(err) == "42601" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := postgres.InBatchTx(ctx, pool, tt.opts, tt.fn)
			if !tt.want(err) {
				t.Errorf("InBatchTx error = %v (SQLSTATE %q)", err, sqlState(err))
			}
			if v := values(t, pool, table); v != [2]int{0, 0} {
				t.Errorf("values = %v, want [0 0]: nothing committed", v)
			}
		})
	}
	t.Run("panic", func(t *testing.T) {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the fn's panic to continue", p)
			}
			if v := values(t, pool, table); v != [2]int{0, 0} {
				t.Errorf("values = %v, want [0 0] after the panic", v)
			}
		}()
		postgres.InBatchTx(ctx, pool, rc, func(tx *postgres.BatchTx) error {
			b := &pgx.Batch{}
			update(b, table, 1, 96)
			sendAll(ctx, tx, b)
			panic("boom")
		})
	})
	calls := 0
	if err := postgres.InBatchTx(ctx, pool, rc, func(*postgres.BatchTx) error { calls++; return nil }); err != nil || calls != 1 {
		t.Errorf("InBatchTx(nothing sent) = %v after %d calls, want nil after 1", err, calls)
	}
	if st := pool.Stat(); st.AcquiredConns() != 0 || st.NewConnsCount() > 1 {
		t.Errorf("%d connections still acquired and %d opened, want all returned and one reused throughout (each rolled back, none left to be closed)",
			st.AcquiredConns(), st.NewConnsCount())
	}
}

// TestInBatchTxRetriesSerializationFailure is InTx's write skew through
// InBatchTx: the loser's whole function runs again, BEGIN included.
func TestInBatchTxRetriesSerializationFailure(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	retriesWriteSkew(t, pool, "InBatchTx", func(ctx context.Context, body func(postgres.BatchSender) error) error {
		return postgres.InBatchTx(ctx, pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx *postgres.BatchTx) error { return body(tx) })
	})
}
