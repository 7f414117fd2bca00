package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// DefaultMaxPending is how long a committed row may wait to be sealed
// before Verify calls it a problem. Sealers run every SealEvery, so a row
// that waits this long means no sealer is running or every one is failing.
// A row's wait is counted from its insert, so a transaction that stays open
// this long after appending also trips it.
const DefaultMaxPending = time.Minute

// Log appends to, seals and verifies one schema's audit_events table.
type Log struct {
	schema     string // plain name, for the lock key
	table      string // quoted schema.audit_events
	now        func() time.Time
	maxPending time.Duration
}

// New returns the Log for schema's audit_events table, reading the time from
// now (time.Now outside tests). It panics on a schema name that is not a
// plain lower-case identifier.
func New(schema string, now func() time.Time) *Log {
	return &Log{schema: schema, table: mustSchema(schema) + ".audit_events", now: now, maxPending: DefaultMaxPending}
}

// WithMaxPending returns a copy of l whose Verify reports rows pending for
// longer than d (instead of DefaultMaxPending) as a problem.
func (l *Log) WithMaxPending(d time.Duration) *Log {
	c := *l
	c.maxPending = d
	return &c
}

// Append records ev as a pending row: inserted, not yet linked into the
// chain. A sealer (Seal, RunSealer) links it shortly after it commits.
//
// Pass the transaction that makes the change being audited, so the change
// and its record commit or roll back together; given anything else (a pool)
// Append inserts in a statement of its own. Append takes no lock and reads
// no other row, so audited transactions do not wait for each other here,
// whatever their isolation level.
//
// Errors are Internal and wrap the cause.
func (l *Log) Append(ctx context.Context, q Querier, ev Event) error {
	sql, args, err := l.insert(ev)
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, sql, args...); err != nil {
		return l.AppendFailed(err)
	}
	return nil
}

// Queue queues the insert Append would run on b, for a caller that sends
// the audited change as one batch inside its transaction: the record then
// costs no round trip of its own. The caller reads its result in turn with
// BatchResults.Exec and passes any error to AppendFailed. As with Append,
// the row is pending and commits or rolls back with the transaction.
func (l *Log) Queue(b *pgx.Batch, ev Event) error {
	sql, args, err := l.insert(ev)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	return nil
}

// QueueAll queues on b one insert of every event of evs, in their order,
// for a caller that audits several changes in one transaction: one
// statement carries them all instead of one each. Each row is pending, as
// with Queue. The caller reads the result with BatchResults.Exec, whose
// RowsAffected is len(evs), and passes any error to AppendFailed. It queues
// nothing for no events.
func (l *Log) QueueAll(b *pgx.Batch, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	at := make([]time.Time, n)
	actor, action, resource, outcome := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	reason, clientIP, traceID, detail := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, ev := range evs {
		r, d, err := l.row(ev)
		if err != nil {
			return err
		}
		at[i], actor[i], action[i], resource[i], outcome[i] = r.at, r.actor, r.action, r.resource, r.outcome
		reason[i], clientIP[i], traceID[i], detail[i] = r.reason, r.clientIP, r.traceID, string(d)
	}
	b.Queue("INSERT INTO "+l.table+` (at, actor, action, resource, outcome, reason, client_ip, trace_id, detail)
		SELECT v.at, v.actor, v.action, v.resource, v.outcome, v.reason, v.client_ip, v.trace_id, v.detail::jsonb
		FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
			WITH ORDINALITY AS v(at, actor, action, resource, outcome, reason, client_ip, trace_id, detail, i)
		ORDER BY v.i`, at, actor, action, resource, outcome, reason, clientIP, traceID, detail)
	return nil
}

// AppendFailed wraps the error of an insert queued by Queue as Append
// wraps its own: Internal, with the cause.
func (l *Log) AppendFailed(err error) error {
	return errs.Wrap(errs.Internal, "audit failed", fmt.Errorf("insert into %s: %w", l.table, err))
}

// insert returns the statement that inserts ev as a pending row.
func (l *Log) insert(ev Event) (string, []any, error) {
	r, detail, err := l.row(ev)
	if err != nil {
		return "", nil, err
	}
	return "INSERT INTO " + l.table + ` (at, actor, action, resource, outcome, reason,
		client_ip, trace_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		[]any{r.at, r.actor, r.action, r.resource, r.outcome, r.reason, r.clientIP, r.traceID, detail}, nil
}

// row returns ev as a row and its detail as JSON.
func (l *Log) row(ev Event) (*record, []byte, error) {
	r := l.record(ev)
	detail, err := json.Marshal(r.detail)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, "audit failed", err)
	}
	return r, detail, nil
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

// Report is what Verify found.
type Report struct {
	Sealed   int    // rows in the chain, each one checked: seq 1 to HeadSeq
	HeadSeq  int64  // the newest sealed row's seq; 0 when none is sealed
	HeadHash []byte // its hash: the anchor to keep outside the database

	Pending       int           // committed rows not sealed yet
	OldestPending time.Duration // how long the oldest of them has waited, by the database's clock
	Overdue       int           // pending rows that have waited longer than the Log's bound
}

// Verify walks the whole chain and counts the rows waiting to be sealed, in
// one snapshot (the caller's, given a transaction). If a sealed row was
// edited, removed from the middle, or inserted without being linked
// properly, it returns a *ChainError naming the first bad seq, with
// Report.Sealed the rows checked before it. If the chain is whole but some
// row has waited to be sealed for longer than DefaultMaxPending (or the
// bound set by WithMaxPending), it returns a *PendingError. If it cannot
// read the table, an Internal error.
//
// Pending rows are not checked: they are not linked yet. The trigger keeps
// them from being changed or deleted, as it does sealed rows.
func (l *Log) Verify(ctx context.Context, q Querier) (Report, error) {
	tx, ok := q.(pgx.Tx)
	if !ok {
		t, err := q.Begin(ctx)
		if err != nil {
			return Report{}, errs.Wrap(errs.Internal, "audit verify failed", err)
		}
		defer t.Rollback(context.WithoutCancel(ctx))
		if _, err := t.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
			return Report{}, errs.Wrap(errs.Internal, "audit verify failed", err)
		}
		tx = t
	}
	rep, err := l.walk(ctx, tx)
	if err != nil {
		return rep, err
	}
	var oldest float64
	err = tx.QueryRow(ctx, `SELECT count(*),
		coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)::float8,
		count(*) FILTER (WHERE recorded_at < clock_timestamp() - make_interval(secs => $1))
		FROM `+l.table+" WHERE seq IS NULL", l.maxPending.Seconds()).Scan(&rep.Pending, &oldest, &rep.Overdue)
	if err != nil {
		return rep, errs.Wrap(errs.Internal, "audit verify failed", err)
	}
	rep.OldestPending = time.Duration(oldest * float64(time.Second)).Round(time.Millisecond)
	if rep.Overdue > 0 {
		return rep, &PendingError{Overdue: rep.Overdue, Oldest: rep.OldestPending, Bound: l.maxPending}
	}
	return rep, nil
}

// walk checks every sealed row in seq order.
func (l *Log) walk(ctx context.Context, tx pgx.Tx) (Report, error) {
	var rep Report
	rows, err := tx.Query(ctx, `SELECT seq, at, actor, action, resource, outcome, reason,
		client_ip, trace_id, detail::text, prev_hash, hash FROM `+l.table+" WHERE seq IS NOT NULL ORDER BY seq")
	if err != nil {
		return rep, errs.Wrap(errs.Internal, "audit verify failed", err)
	}
	defer rows.Close()
	prev := genesis
	for rows.Next() {
		var r record
		var detail string
		if err := rows.Scan(&r.seq, &r.at, &r.actor, &r.action, &r.resource, &r.outcome, &r.reason,
			&r.clientIP, &r.traceID, &detail, &r.prevHash, &r.hash); err != nil {
			return rep, errs.Wrap(errs.Internal, "audit verify failed", err)
		}
		if err := check(&r, int64(rep.Sealed)+1, prev, detail); err != nil {
			return rep, err
		}
		prev = r.hash
		rep.Sealed++
		rep.HeadSeq, rep.HeadHash = r.seq, r.hash
	}
	if err := rows.Err(); err != nil {
		return rep, errs.Wrap(errs.Internal, "audit verify failed", err)
	}
	return rep, nil
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

// PendingError reports committed rows that have waited too long to be
// sealed: until sealed, they are kept only by the trigger, not the chain.
type PendingError struct {
	Overdue int           // rows pending for longer than Bound
	Oldest  time.Duration // how long the oldest has waited
	Bound   time.Duration
}

// Error says how many rows, and that the likely cause is the sealers.
func (e *PendingError) Error() string {
	return fmt.Sprintf("audit: %d rows pending for longer than %s (oldest %s); is a sealer running?", e.Overdue, e.Bound, e.Oldest)
}
