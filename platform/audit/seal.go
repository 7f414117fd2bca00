package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// SealEvery is how often a running sealer links new rows into the chain:
// the longest a committed row stays pending while sealers are healthy.
const SealEvery = 250 * time.Millisecond

// sealBatch is the most rows one sealing transaction links, so that a
// backlog (sealers down for a while) is caught up in short transactions.
const sealBatch = 1000

// sealStopTimeout bounds the last pass a stopping sealer makes.
const sealStopTimeout = 5 * time.Second

// Seal links pending rows into the chain, oldest insert first, until none
// is left, and returns how many it linked. Every row committed before Seal
// was called is sealed when it returns without error: tests call it before
// reading seq or hash. Pass a pool: each batch is a transaction of its own.
//
// Each batch takes the schema's chain lock, an advisory lock only sealers
// take, so several sealers (one per replica) take turns and extend one
// chain. A row whose transaction commits late is invisible until it commits
// and is sealed by a later batch, after the rows sealed before it: rows are
// chained in the order sealers see them committed, never skipped, since a
// sealer looks for every row still pending rather than for ids past the last
// it sealed.
func (l *Log) Seal(ctx context.Context, q Querier) (int, error) {
	// Outside the lock, one index probe: the common case of an idle schema
	// costs each replica no lock and no transaction.
	var pending bool
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+l.table+" WHERE seq IS NULL)").Scan(&pending); err != nil {
		return 0, errs.Wrap(errs.Internal, "audit seal failed", fmt.Errorf("look for pending rows in %s: %w", l.table, err))
	}
	total := 0
	for pending {
		n, err := l.sealOnce(ctx, q)
		total += n
		if err != nil {
			return total, errs.Wrap(errs.Internal, "audit seal failed", err)
		}
		pending = n == sealBatch
	}
	return total, nil
}

// sealOnce links up to sealBatch pending rows in one transaction.
//
// The lock, the chain head and the pending rows are read in one pipelined
// batch. Under READ COMMITTED (set here, whatever the database's default)
// each statement of the batch takes its own snapshot when it starts, after
// the lock is granted, so the head includes whatever the previous holder
// sealed.
func (l *Log) sealOnce(ctx context.Context, q Querier) (int, error) {
	tx, err := q.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	b.Queue("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
	b.Queue("SELECT pg_advisory_xact_lock(hashtextextended('bastion.audit:' || $1, 0))", l.schema)
	b.Queue("SELECT seq, hash FROM " + l.table + " WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
	b.Queue(`SELECT id, at, actor, action, resource, outcome, reason, client_ip, trace_id, detail::text
		FROM `+l.table+" WHERE seq IS NULL ORDER BY id LIMIT $1", sealBatch)
	ids, recs, err := l.readPending(tx.SendBatch(ctx, b))
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	seqs := make([]int64, len(recs))
	prevs := make([][]byte, len(recs))
	hashes := make([][]byte, len(recs))
	for i, r := range recs {
		seqs[i], prevs[i], hashes[i] = r.seq, r.prevHash, r.hash
	}
	tag, err := tx.Exec(ctx, "UPDATE "+l.table+` t SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
		FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS v(id, seq, prev_hash, hash)
		WHERE t.id = v.id`, ids, seqs, prevs, hashes)
	if err != nil {
		return 0, fmt.Errorf("seal rows of %s: %w", l.table, err)
	}
	if int(tag.RowsAffected()) != len(ids) {
		return 0, fmt.Errorf("seal rows of %s: %d of %d rows updated", l.table, tag.RowsAffected(), len(ids))
	}
	// The deferred link check runs here: a row not linked to its
	// predecessor fails the commit.
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit sealed rows of %s: %w", l.table, err)
	}
	return len(ids), nil
}

// readPending reads sealOnce's batch and links the pending rows after the
// head, in order: each gets the next seq, the previous row's hash and its
// own. A row whose detail is not a map of strings (only a write past the
// trigger or Append could store one) is sealed as if its detail were empty,
// so that it cannot stop the chain behind it; Verify reports it.
func (l *Log) readPending(br pgx.BatchResults) (ids []int64, recs []*record, err error) {
	defer func() { err = errors.Join(err, br.Close()) }()
	for range 2 { // isolation level, lock
		if _, err := br.Exec(); err != nil {
			return nil, nil, fmt.Errorf("lock %s: %w", l.table, err)
		}
	}
	var last int64
	prev := genesis
	if err := br.QueryRow().Scan(&last, &prev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("read chain head of %s: %w", l.table, err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("read pending rows of %s: %w", l.table, err)
	}
	var id int64
	var detail string
	r := &record{}
	_, err = pgx.ForEachRow(rows, []any{&id, &r.at, &r.actor, &r.action, &r.resource, &r.outcome, &r.reason,
		&r.clientIP, &r.traceID, &detail}, func() error {
		c := *r
		c.detail = nil
		if json.Unmarshal([]byte(detail), &c.detail) != nil {
			c.detail = nil
		}
		last++
		c.seq, c.prevHash = last, prev
		c.hash = c.chainHash(prev)
		prev = c.hash
		ids, recs = append(ids, id), append(recs, &c)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read pending rows of %s: %w", l.table, err)
	}
	return ids, recs, nil
}

// RunSealer seals every interval until ctx ends, then seals once more
// (bounded by a few seconds) so that rows committed while the service
// drained do not wait for another replica or the next start. A failure is
// logged when it starts, at most once a minute while it lasts, and when
// sealing recovers; rows are never lost meanwhile, only left pending, which
// Verify reports once they wait longer than its bound.
func (l *Log) RunSealer(ctx context.Context, q Querier, every time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var failing, logged time.Time
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), sealStopTimeout)
			defer cancel()
			if _, err := l.Seal(last, q); err != nil {
				logger.ErrorContext(last, "audit sealing on shutdown failed; pending rows wait for another sealer",
					"schema", l.schema, "error", err.Error())
			}
			return
		case <-tick.C:
		}
		_, err := l.Seal(ctx, q)
		switch {
		case ctx.Err() != nil:
		case err != nil && (failing.IsZero() || time.Since(logged) >= time.Minute):
			if failing.IsZero() {
				failing = time.Now()
			}
			logged = time.Now()
			logger.ErrorContext(ctx, "audit sealing failed; rows stay pending until it recovers",
				"schema", l.schema, "failing_for", time.Since(failing).Round(time.Second).String(), "error", err.Error())
		case err == nil && !failing.IsZero():
			logger.InfoContext(ctx, "audit sealing recovered", "schema", l.schema,
				"failed_for", time.Since(failing).Round(time.Second).String())
			failing = time.Time{}
		}
	}
}

// StartSealer runs RunSealer on q every SealEvery in the background and
// returns the function that stops it: that function makes the last pass and
// returns once the sealer has ended. Call it after the server has drained
// and before the pool closes. Every replica runs one; they take turns.
func (l *Log) StartSealer(q Querier, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.RunSealer(ctx, q, SealEvery, logger)
	}()
	return func() {
		cancel()
		<-done
	}
}
