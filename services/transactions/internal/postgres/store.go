// Package postgres is the ledger's storage on PostgreSQL: schema "ledger",
// migrations embedded in the binary, and the domain.Store implementation
// that runs money movements in transactions with row locks taken in a
// fixed order: each alone when the ledger is idle, and under load those
// that arrive together in one transaction and one commit (committer.go,
// batch.go).
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// Schema is the Postgres schema the ledger owns.
const Schema = "ledger"

//go:embed migrations/*.sql
var migrations embed.FS

// grants is what the ledger's runtime role may do, table by table: read
// everything; insert accounts, transfers, entries, usage and idempotency
// records; change only an account's status and money, a pending transfer's
// decision and a usage total; delete only expired usage and idempotency
// records; and append and seal audit rows. It owns nothing, so the
// triggers that keep the books stay on, and a balance changes only with
// the entries that explain it (migration 0004).
var grants = postgres.Grants{
	"accounts":         "SELECT, INSERT, UPDATE (status, balance, held, updated_at)",
	"transfers":        "SELECT, INSERT, UPDATE (status, decided_by, decided_at, reason)",
	"entries":          "SELECT, INSERT",
	"daily_usage":      "SELECT, INSERT, UPDATE (amount), DELETE",
	"idempotency_keys": "SELECT, INSERT, DELETE",
	"audit_events":     audit.RuntimeGrant,
}

// Migrate brings the ledger schema up to date and gives the runtime role its
// grants. Run it as the schema's owner (`transactions migrate`).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("ledger migrations: %w", err)
	}
	return postgres.Migrate(ctx, pool, Schema, grants, sub, audit.Migrations(Schema))
}

// CheckSchema returns an error unless the ledger schema is migrated to
// exactly this build's migrations, and logs an error if pool's role could
// alter it (postgres.CheckSchema). The service runs it at start-up.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("ledger migrations: %w", err)
	}
	return postgres.CheckSchema(ctx, pool, Schema, logger, sub, audit.Migrations(Schema))
}

// Store implements domain.Store on a pool.
type Store struct {
	pool  *pgxpool.Pool
	audit *audit.Log
	moves *committer
}

var _ domain.Store = (*Store)(nil)

// New returns a store on pool that writes audit events to log, the audit
// chain of the ledger schema (audit.New(Schema, now)), and commits money
// movements in batches as g says.
func New(pool *pgxpool.Pool, log *audit.Log, g GroupCommit) *Store {
	s := &Store{pool: pool, audit: log}
	s.moves = newCommitter(g.withDefaults(), s.runBatch)
	return s
}

// txOptions are every ledger transaction's: READ COMMITTED, with the rows
// each path needs locked in the documented global order.
var txOptions = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// inTx runs fn in one transaction whose BEGIN travels with fn's first batch
// (postgres.InBatchTx): every ledger path only sends batches, so none
// spends a round trip on BEGIN. Every path locks its rows in the documented
// global order, so deadlocks should not happen; if one ever does (or a
// serialization failure), fn runs again, so no client ever sees one.
func (s *Store) inTx(ctx context.Context, fn func(*postgres.BatchTx) error) error {
	return mapErr(postgres.InBatchTx(ctx, s.pool, txOptions, fn))
}

// Audit appends one event in a transaction of its own.
func (s *Store) Audit(ctx context.Context, e domain.Event) error {
	return mapErr(postgres.InTx(ctx, s.pool, txOptions, func(tx pgx.Tx) error { return s.audit.Append(ctx, tx, auditEvent(ctx, e)) }))
}

// queueAudit queues e's append on b, a batch sent inside the transaction
// that makes the change, so the record commits or rolls back with it. The
// row is inserted pending, with no lock and no read of the chain; the
// sealer that cmd/transactions runs links it after commit.
func (s *Store) queueAudit(ctx context.Context, b *pgx.Batch, e domain.Event) error {
	return s.audit.Queue(b, auditEvent(ctx, e))
}

// auditEvent is e as the audit log records it, with the client address and
// trace id of the request that caused it.
func auditEvent(ctx context.Context, e domain.Event) audit.Event {
	ip, _ := identity.ClientIPFrom(ctx)
	var traceID string
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		traceID = sc.TraceID().String()
	}
	return audit.Event{Actor: e.Actor, Action: e.Action, Resource: e.Resource,
		Outcome: e.Outcome, Reason: e.Reason, ClientIP: ip, TraceID: traceID, Detail: e.Detail}
}

// mapErr turns storage errors into kinds with the platform's one mapping. A
// lost connection says more here than elsewhere: the transaction was rolled
// back, or committed together with its idempotency record, which a retry
// with the same key finds, so retrying with the same key is always safe.
func mapErr(err error) error {
	if postgres.ConnectionLost(err) {
		return errs.Wrap(errs.Unavailable, "ledger unavailable, retry with the same idempotency key", err)
	}
	return postgres.MapError(err)
}
