// Package postgres is the ledger's storage on PostgreSQL: schema "ledger",
// migrations embedded in the binary, and the domain.Store implementation
// that runs each money movement in one transaction with row locks taken in
// a fixed order.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Migrate brings the ledger schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("ledger migrations: %w", err)
	}
	return postgres.Migrate(ctx, pool, Schema, sub, audit.Migrations(Schema))
}

// Store implements domain.Store on a pool.
type Store struct {
	pool  *pgxpool.Pool
	audit *audit.Log
}

var _ domain.Store = (*Store)(nil)

// New returns a store on pool that writes audit events to log, the audit
// chain of the ledger schema (audit.New(Schema, now)).
func New(pool *pgxpool.Pool, log *audit.Log) *Store {
	return &Store{pool: pool, audit: log}
}

// inTx runs fn in one READ COMMITTED transaction. Every path locks its rows
// in the documented global order, so deadlocks should not happen; if one
// ever does (or a serialization failure), postgres.InTx runs fn again, so no
// client ever sees one.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return mapErr(postgres.InTx(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn))
}

// Audit appends one event in a transaction of its own.
func (s *Store) Audit(ctx context.Context, e domain.Event) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return s.appendAudit(ctx, tx, e) })
}

// appendAudit appends e to the chain inside tx, with the client address and
// trace id of the request that caused it. Callers append last in their
// transaction: the chain's lock serializes every append in the schema and
// is held until commit, so taking it after the row locks keeps the global
// lock order and holds it as briefly as possible.
func (s *Store) appendAudit(ctx context.Context, tx pgx.Tx, e domain.Event) error {
	ip, _ := identity.ClientIPFrom(ctx)
	var traceID string
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		traceID = sc.TraceID().String()
	}
	return s.audit.Append(ctx, tx, audit.Event{Actor: e.Actor, Action: e.Action, Resource: e.Subject,
		Outcome: e.Outcome, Reason: e.Reason, ClientIP: ip, TraceID: traceID, Detail: e.Detail})
}

// mapErr turns storage errors into kinds. A lost connection is Unavailable:
// the transaction was rolled back (or committed with its idempotency record,
// which a retry with the same key finds), so retrying is safe.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	// Checked first: a lost connection may come wrapped in another
	// package's Internal error (the audit log's, say), and it is still safe
	// to retry.
	if connectionLost(err) {
		return errs.Wrap(errs.Unavailable, "ledger unavailable, retry with the same idempotency key", err)
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errs.Wrap(errs.Unavailable, "request cancelled", err)
	}
	return postgres.MapError(err)
}

// connectionLost reports whether err means the database connection failed,
// as opposed to the database refusing a statement.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection exceptions; 57P01-57P03 are the server
		// shutting down or terminating our backend.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}
