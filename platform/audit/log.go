package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Log appends to and verifies one schema's audit_events table.
type Log struct {
	schema string // plain name, for the lock key
	table  string // quoted schema.audit_events
	now    func() time.Time
}

// New returns the Log for schema's audit_events table, reading the time from
// now (time.Now outside tests). It panics on a schema name that is not a
// plain lower-case identifier.
func New(schema string, now func() time.Time) *Log {
	return &Log{schema: schema, table: mustSchema(schema) + ".audit_events", now: now}
}

// Append records ev as the next link of the chain.
//
// Pass the transaction that makes the change being audited, so the change
// and its record commit or roll back together; given anything else (a pool)
// Append runs in a transaction of its own. Appends to one schema are
// serialized by a transaction-scoped advisory lock, held until the caller's
// transaction ends, so call Append as late in the transaction as you can.
// In a REPEATABLE READ or SERIALIZABLE transaction whose snapshot was taken
// before another append committed, Append fails with an error wrapping a
// serialization failure (40001), which postgres.InTx retries.
//
// Errors are Internal and wrap the cause.
func (l *Log) Append(ctx context.Context, q Querier, ev Event) error {
	r := l.record(ev)
	if tx, ok := q.(pgx.Tx); ok {
		return l.append(ctx, tx, r)
	}
	tx, err := q.Begin(ctx)
	if err != nil {
		return errs.Wrap(errs.Internal, "audit failed", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := l.append(ctx, tx, r); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return errs.Wrap(errs.Internal, "audit failed", err)
	}
	return nil
}

// record turns ev into a row, cleaned and without secrets.
func (l *Log) record(ev Event) *record {
	at := ev.At
	if at.IsZero() {
		at = l.now()
	}
	return &record{
		at:       at.UTC().Truncate(time.Microsecond),
		actor:    clean(ev.Actor),
		action:   clean(ev.Action),
		resource: clean(ev.Resource),
		outcome:  clean(ev.Outcome),
		reason:   clean(ev.Reason),
		clientIP: clean(ev.ClientIP),
		traceID:  clean(ev.TraceID),
		detail:   cleanDetail(ev.Detail),
	}
}

// append links r to the last row and inserts it, inside tx.
//
// The lock and the read of the chain head go to the server in one pipelined
// batch: one round trip instead of two, while the lock is what every
// audited transaction of the schema queues on. Under READ COMMITTED the head
// is read with a snapshot taken after the lock was granted, as each
// statement of a pipeline takes its own.
func (l *Log) append(ctx context.Context, tx pgx.Tx, r *record) error {
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock(hashtextextended('bastion.audit:' || $1, 0))", l.schema)
	b.Queue("SELECT seq, hash FROM " + l.table + " ORDER BY seq DESC LIMIT 1")
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return errs.Wrap(errs.Internal, "audit failed", fmt.Errorf("lock %s: %w", l.table, err))
	}
	var last int64
	prev := genesis
	scanErr := br.QueryRow().Scan(&last, &prev)
	closeErr := br.Close()
	if scanErr != nil && !errors.Is(scanErr, pgx.ErrNoRows) {
		return errs.Wrap(errs.Internal, "audit failed", fmt.Errorf("read chain head of %s: %w", l.table, scanErr))
	}
	if closeErr != nil {
		return errs.Wrap(errs.Internal, "audit failed", fmt.Errorf("read chain head of %s: %w", l.table, closeErr))
	}
	r.seq, r.prevHash = last+1, prev
	r.hash = r.chainHash(prev)
	detail, err := json.Marshal(r.detail)
	if err != nil {
		return errs.Wrap(errs.Internal, "audit failed", err)
	}
	_, err = tx.Exec(ctx, "INSERT INTO "+l.table+` (seq, at, actor, action, resource, outcome, reason,
		client_ip, trace_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.seq, r.at, r.actor, r.action, r.resource, r.outcome, r.reason, r.clientIP, r.traceID, detail, r.prevHash, r.hash)
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "audit_events_pkey" {
		// Only a REPEATABLE READ snapshot taken before another append
		// committed gets here. Retrying the whole transaction is the cure,
		// so say so in the code postgres.InTx retries.
		stale := &pgconn.PgError{Code: "40001", Message: "audit chain advanced after this transaction's snapshot"}
		return errs.Wrap(errs.Internal, "audit failed", fmt.Errorf("insert into %s: %w (%w)", l.table, stale, err))
	}
	if err != nil {
		return errs.Wrap(errs.Internal, "audit failed", fmt.Errorf("insert into %s: %w", l.table, err))
	}
	return nil
}

// Verify walks the whole chain in one snapshot and returns how many rows
// it checked. If a row was edited, removed from the middle, or inserted
// without being linked properly, it returns a *ChainError naming the first
// bad seq; if it cannot read the table, an Internal error.
func (l *Log) Verify(ctx context.Context, q Querier) (checked int, err error) {
	rows, err := q.Query(ctx, `SELECT seq, at, actor, action, resource, outcome, reason,
		client_ip, trace_id, detail::text, prev_hash, hash FROM `+l.table+" ORDER BY seq")
	if err != nil {
		return 0, errs.Wrap(errs.Internal, "audit verify failed", err)
	}
	defer rows.Close()
	prev := genesis
	for rows.Next() {
		var r record
		var detail string
		if err := rows.Scan(&r.seq, &r.at, &r.actor, &r.action, &r.resource, &r.outcome, &r.reason,
			&r.clientIP, &r.traceID, &detail, &r.prevHash, &r.hash); err != nil {
			return checked, errs.Wrap(errs.Internal, "audit verify failed", err)
		}
		if err := check(&r, int64(checked)+1, prev, detail); err != nil {
			return checked, err
		}
		prev = r.hash
		checked++
	}
	if err := rows.Err(); err != nil {
		return checked, errs.Wrap(errs.Internal, "audit verify failed", err)
	}
	return checked, nil
}

// check verifies one row against its expected seq and predecessor's hash.
func check(r *record, want int64, prev []byte, detail string) error {
	switch {
	case r.seq != want:
		return &ChainError{Seq: want, Problem: fmt.Sprintf("missing (next row is seq %d)", r.seq)}
	case !bytes.Equal(r.prevHash, prev):
		return &ChainError{Seq: r.seq, Problem: "prev_hash does not match the previous row's hash"}
	case json.Unmarshal([]byte(detail), &r.detail) != nil:
		return &ChainError{Seq: r.seq, Problem: "detail is not a map of strings"}
	case !bytes.Equal(r.chainHash(prev), r.hash):
		return &ChainError{Seq: r.seq, Problem: "hash does not match the row's contents"}
	}
	return nil
}
