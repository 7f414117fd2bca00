package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// logBuffer is a log destination that tests read while sealers write.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// pendingCount counts the committed rows not sealed yet.
func (e env) pendingCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+e.schema+".audit_events WHERE seq IS NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTwoReplicasSealOneChain runs what production runs: many audited
// transactions at once, some rolled back and some held open while others
// commit, with a sealer in each of two "replicas" (pools of their own) the
// whole time. The result must be one gap-free chain holding every committed
// event exactly once and no rolled-back one.
func TestTwoReplicasSealOneChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var logs logBuffer
	for range 2 {
		replica, err := postgres.Open(ctx, packageURL, postgres.PoolConfig{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer replica.Close()
		sealCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			audit.New(e.schema, clock).RunSealer(sealCtx, replica, 2*time.Millisecond, logs.logger())
		}()
		defer func() { stop(); <-done }()
	}

	const workers, each = 10, 20
	var mu sync.Mutex
	committed := map[string]bool{}
	rolledBack := map[string]bool{}
	// One transaction appends first and commits last, after sealers have
	// sealed rows inserted long after its own.
	late, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.log.Append(ctx, late, audit.Event{Actor: "late", Action: "transfer"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range each {
				actor := fmt.Sprintf("w%d-%d", w, i)
				rollback := r.IntN(4) == 0
				errAbort := errors.New("abort")
				err := postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
					if err := e.log.Append(ctx, tx, audit.Event{Actor: actor, Action: "transfer"}); err != nil {
						return err
					}
					// Held open a little, so commits come out of insert order.
					time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
					if rollback {
						return errAbort
					}
					return nil
				})
				mu.Lock()
				switch {
				case rollback && errors.Is(err, errAbort):
					rolledBack[actor] = true
				case !rollback && err == nil:
					committed[actor] = true
				default:
					t.Errorf("transaction %s (rollback %v) = %v", actor, rollback, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Everything else is sealed before the first-inserted row commits.
	eventually(t, "the sealers to seal the workers' rows", func() bool { return e.pendingCount(t) == 0 })
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	committed["late"] = true
	eventually(t, "the sealers to seal every committed row", func() bool { return e.pendingCount(t) == 0 })

	rows := e.rows(t)
	assertChain(t, rows)
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.Actor]++
		if rolledBack[r.Actor] {
			t.Errorf("rolled-back event %s is in the chain at seq %d", r.Actor, r.Seq)
		}
	}
	for actor := range committed {
		if seen[actor] != 1 {
			t.Errorf("committed event %s is in the chain %d times, want once", actor, seen[actor])
		}
	}
	if len(rows) != len(committed) {
		t.Errorf("chain holds %d rows, want the %d committed events", len(rows), len(committed))
	}
	if rows[len(rows)-1].Actor != "late" {
		t.Errorf("the newest sealed row is %s, want the late commit, inserted first", rows[len(rows)-1].Actor)
	}
	e.verify(t, len(committed))
	if strings.Contains(logs.String(), "failed") {
		t.Errorf("sealers logged failures:\n%s", logs.String())
	}
	t.Logf("%d committed, %d rolled back", len(committed), len(rolledBack))
}

// TestLateCommitIsSealedAfter: a row inserted first but committed after a
// seal is not skipped by it; the next seal links it after the rows sealed
// meanwhile.
func TestLateCommitIsSealedAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback(ctx)
	if err := e.log.Append(ctx, open, audit.Event{Actor: "first-in", Action: "x"}); err != nil {
		t.Fatal(err)
	}
	e.append(t, audit.Event{Actor: "second-in", Action: "x"})
	// The open transaction's row is invisible, and nothing waits for it.
	if n := e.seal(t); n != 1 {
		t.Fatalf("Seal() with one row committed = %d, want 1", n)
	}
	e.verify(t, 1)
	if err := open.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.log.Verify(ctx, e.pool); err != nil || rep.Sealed != 1 || rep.Pending != 1 {
		t.Fatalf("Verify() after the late commit = %+v, %v; want 1 sealed and 1 pending", rep, err)
	}
	if n := e.seal(t); n != 1 {
		t.Fatalf("Seal() after the late commit = %d, want 1", n)
	}
	rs, err := e.pool.Query(ctx, "SELECT actor FROM "+e.schema+".audit_events ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	order, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "second-in,first-in" {
		t.Errorf("chain order = %v, want second-in then first-in (commit order as the sealer saw it)", order)
	}
	var firstID, secondID int64
	if err := e.pool.QueryRow(ctx, "SELECT min(id) FILTER (WHERE actor = 'first-in'), min(id) FILTER (WHERE actor = 'second-in') FROM "+
		e.schema+".audit_events").Scan(&firstID, &secondID); err != nil || firstID >= secondID {
		t.Errorf("ids first-in %d, second-in %d (%v); want first-in inserted first", firstID, secondID, err)
	}
	e.verify(t, 2)
}

func TestVerifyReportsPendingRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.append(t, audit.Event{Action: "a"})
	e.seal(t)
	e.append(t, audit.Event{Action: "b"})
	e.append(t, audit.Event{Action: "c"})
	rep, err := e.log.Verify(ctx, e.pool)
	if err != nil || rep.Sealed != 1 || rep.Pending != 2 || rep.Overdue != 0 || rep.OldestPending < 0 || rep.OldestPending > audit.DefaultMaxPending {
		t.Fatalf("Verify() = %+v, %v; want 1 sealed, 2 pending, none overdue", rep, err)
	}
	// Wait until both rows are older than the bound by the database's clock,
	// which is the one Verify reads, rather than sleeping past it.
	strict := e.log.WithMaxPending(20 * time.Millisecond)
	eventually(t, "two rows pending for longer than 20ms", func() bool {
		rep, err = strict.Verify(ctx, e.pool)
		return rep.Overdue == 2
	})
	var pe *audit.PendingError
	if !errors.As(err, &pe) || pe.Overdue != 2 || pe.Oldest < 20*time.Millisecond || rep.Pending != 2 || rep.Overdue != 2 || rep.Sealed != 1 {
		t.Fatalf("Verify(bound 20ms) = %+v, %v; want a PendingError for 2 rows", rep, err)
	}
	if !strings.Contains(err.Error(), "2 rows pending for longer than 20ms") {
		t.Errorf("error %q does not say how many rows and the bound", err)
	}
	e.seal(t)
	if rep, err := strict.Verify(ctx, e.pool); err != nil || rep.Sealed != 3 || rep.Pending != 0 {
		t.Errorf("Verify(bound 20ms) after Seal = %+v, %v; want 3 sealed, none pending", rep, err)
	}
}

// TestTriggerAllowsOnlySealing tries every way to change a row with the
// trigger on. The pool is a superuser's: the trigger binds even that. The
// one change let through is sealing a pending row, and only when it leaves
// every other column as it was and links to the chain's head.
func TestTriggerAllowsOnlySealing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.append(t, audit.Event{Actor: "u-1", Action: "auth.login", Detail: map[string]string{"k": "v"}})
	e.append(t, audit.Event{Actor: "u-2", Action: "auth.login"})
	e.seal(t)
	e.append(t, audit.Event{Actor: "u-3", Action: "auth.login"}) // pending
	table := e.schema + ".audit_events"
	head := "(SELECT hash FROM " + table + " WHERE seq = 2)"
	someHash := `'\x` + strings.Repeat("ab", 32) + `'::bytea`
	seal := func(set string) string {
		return "UPDATE " + table + " SET seq = 3, prev_hash = " + head + ", hash = " + someHash + set + " WHERE seq IS NULL"
	}
	const (
		appendOnly = "42501"
		unlinked   = "23000"
		duplicate  = "23505"
		halfSealed = "23514"
	)
	for _, tt := range []struct {
		name, sql, code string
	}{
		{"edit sealed", "UPDATE " + table + " SET actor = 'someone-else' WHERE seq = 1", appendOnly},
		{"edit sealed detail", "UPDATE " + table + ` SET detail = '{"k": "w"}' WHERE seq = 1`, appendOnly},
		{"rewrite sealed row unchanged", "UPDATE " + table + " SET actor = actor WHERE seq = 1", appendOnly},
		{"edit every row", "UPDATE " + table + " SET actor = 'someone-else'", appendOnly},
		{"edit pending", "UPDATE " + table + " SET actor = 'someone-else' WHERE seq IS NULL", appendOnly},
		{"backdate pending", "UPDATE " + table + " SET at = at - interval '1 day' WHERE seq IS NULL", appendOnly},
		{"re-seal sealed", "UPDATE " + table + " SET hash = prev_hash WHERE seq = 1", appendOnly},
		{"re-seal sealed with same values", "UPDATE " + table + " SET seq = seq, prev_hash = prev_hash, hash = hash WHERE seq = 2", appendOnly},
		{"renumber sealed", "UPDATE " + table + " SET seq = 9 WHERE seq = 2", appendOnly},
		{"unseal", "UPDATE " + table + " SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 2", appendOnly},
		{"seal and edit actor", seal(", actor = 'someone-else'"), appendOnly},
		{"seal and edit detail", seal(`, detail = '{"k": "x"}'`), appendOnly},
		{"seal and backdate recorded_at", seal(", recorded_at = recorded_at - interval '1 hour'"), appendOnly},
		{"seal and move to another id", seal(", id = DEFAULT"), appendOnly},
		{"delete sealed", "DELETE FROM " + table + " WHERE seq = 1", appendOnly},
		{"delete pending", "DELETE FROM " + table + " WHERE seq IS NULL", appendOnly},
		{"delete all", "DELETE FROM " + table, appendOnly},
		{"truncate", "TRUNCATE " + table, appendOnly},
		{"insert a sealed row", "INSERT INTO " + table + ` (seq, at, actor, action, resource, outcome, reason, client_ip,
			trace_id, detail, prev_hash, hash) SELECT 3, at, 'forger', action, resource, outcome, reason, client_ip, trace_id,
			detail, hash, sha256(hash) FROM ` + table + " WHERE seq = 2", appendOnly},
		// The insert check runs only for a row with a chain column set
		// (the trigger's WHEN clause, audit_0004): each column alone must
		// still call it.
		{"insert with only a seq", "INSERT INTO " + table + ` (seq, at, actor, action, resource, outcome, reason, client_ip,
			trace_id, detail) SELECT 3, at, 'forger', action, resource, outcome, reason, client_ip, trace_id, detail FROM ` + table + " WHERE seq = 2", appendOnly},
		{"insert with only a prev_hash", "INSERT INTO " + table + ` (at, actor, action, resource, outcome, reason, client_ip,
			trace_id, detail, prev_hash) SELECT at, 'forger', action, resource, outcome, reason, client_ip, trace_id, detail, hash FROM ` + table + " WHERE seq = 2", appendOnly},
		{"insert with only a hash", "INSERT INTO " + table + ` (at, actor, action, resource, outcome, reason, client_ip,
			trace_id, detail, hash) SELECT at, 'forger', action, resource, outcome, reason, client_ip, trace_id, detail, sha256(hash) FROM ` + table + " WHERE seq = 2", appendOnly},
		{"upsert over a sealed row", "INSERT INTO " + table + ` (seq, at, actor, action, resource, outcome, reason, client_ip,
			trace_id, detail, prev_hash, hash) SELECT seq, at, actor, action, resource, outcome, reason, client_ip, trace_id,
			detail, prev_hash, hash FROM ` + table + " WHERE seq = 1 ON CONFLICT (seq) DO UPDATE SET actor = 'x'", appendOnly},
		{"seal without the hash", "UPDATE " + table + " SET seq = 3 WHERE seq IS NULL", halfSealed},
		{"seal as an existing seq", "UPDATE " + table + " SET seq = 2, prev_hash = " + head + ", hash = " + someHash + " WHERE seq IS NULL", duplicate},
		{"seal after a gap", "UPDATE " + table + " SET seq = 4, prev_hash = " + head + ", hash = " + someHash + " WHERE seq IS NULL", unlinked},
		{"seal not linked to the head", "UPDATE " + table + " SET seq = 3, prev_hash = " + someHash + ", hash = " + someHash + " WHERE seq IS NULL", unlinked},
		{"seal as a second genesis", "UPDATE " + table + ` SET seq = 3, prev_hash = '\x` + strings.Repeat("00", 32) + `', hash = ` + someHash + " WHERE seq IS NULL", unlinked},
	} {
		_, err := e.pool.Exec(ctx, tt.sql)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != tt.code {
			t.Errorf("%s: error %v, want SQLSTATE %s", tt.name, err, tt.code)
			continue
		}
		if tt.code == appendOnly && !strings.Contains(pg.Message, "append-only") {
			t.Errorf("%s: error %v, want the append-only trigger's refusal", tt.name, err)
		}
		if tt.code == unlinked && !strings.Contains(pg.Message, "does not link") {
			t.Errorf("%s: error %v, want the link check's refusal", tt.name, err)
		}
	}
	rows := e.rows(t) // seals u-3 the proper way
	if len(rows) != 3 || rows[0].Actor != "u-1" || rows[0].Detail["k"] != "v" || rows[1].Actor != "u-2" || rows[2].Actor != "u-3" {
		t.Errorf("rows after the attacks = %+v, want u-1, u-2, u-3 as appended", rows)
	}
	e.verify(t, 3)

	// A seal that links is the database's to accept; whether its hash
	// matches the row is Verify's to find out.
	e.append(t, audit.Event{Actor: "u-4", Action: "auth.login"})
	if _, err := e.pool.Exec(ctx, "UPDATE "+table+" SET seq = 4, prev_hash = (SELECT hash FROM "+table+
		" WHERE seq = 3), hash = "+someHash+" WHERE seq IS NULL"); err != nil {
		t.Fatalf("a linked seal with a made-up hash: %v, want accepted", err)
	}
	_, err := e.log.Verify(ctx, e.pool)
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 4 || !strings.Contains(ce.Problem, "hash does not match") {
		t.Errorf("Verify() after a forged seal = %v, want a ChainError at seq 4", err)
	}
}

// TestSealerIsNotStoppedByJunk: a row the application could never write,
// inserted by hand, is still sealed (and reported by Verify) rather than
// left to hold up every row behind it.
func TestSealerIsNotStoppedByJunk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	table := e.schema + ".audit_events"
	e.append(t, audit.Event{Action: "before"})
	if _, err := e.pool.Exec(ctx, "INSERT INTO "+table+` (at, actor, action, resource, outcome, reason, client_ip, trace_id, detail)
		VALUES (now(), 'x', 'junk', '', '', '', '', '', '[1, 2]')`); err != nil {
		t.Fatal(err)
	}
	_, err := e.pool.Exec(ctx, "INSERT INTO "+table+` (at, actor, action, resource, outcome, reason, client_ip, trace_id, detail)
		VALUES ('infinity', 'x', 'junk', '', '', '', '', '', '{}')`)
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "23514" {
		t.Errorf("insert with an infinite time: %v, want a check violation", err)
	}
	e.append(t, audit.Event{Action: "after"})
	if n := e.seal(t); n != 3 {
		t.Fatalf("Seal() = %d, want 3 (the junk row too)", n)
	}
	if n := e.pendingCount(t); n != 0 {
		t.Errorf("%d rows still pending", n)
	}
	rep, err := e.log.Verify(ctx, e.pool)
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || !strings.Contains(ce.Problem, "detail is not a map of strings") || rep.Sealed != 1 {
		t.Errorf("Verify() = %+v, %v; want a ChainError at seq 2 about its detail", rep, err)
	}
}

// TestRunSealerLogsFailuresOnceAndRecovers: a sealer that cannot seal
// says so once, not every tick, and says when it works again.
func TestRunSealerLogsFailuresOnceAndRecovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := postgres.Open(ctx, packageURL, postgres.PoolConfig{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A schema whose table does not exist yet: every pass fails.
	schema := e.schema + "_later"
	log := audit.New(schema, clock)
	var logs logBuffer
	q := &countingQuerier{Querier: pool}
	done := make(chan struct{})
	go func() {
		defer close(done)
		log.RunSealer(ctx, q, time.Millisecond, logs.logger())
	}()
	eventually(t, "a logged failure", func() bool { return strings.Contains(logs.String(), "audit sealing failed") })
	// Every pass starts with one probe for pending rows: wait for fifty
	// more failing passes, however slowly the machine runs them.
	after := q.probes.Load()
	eventually(t, "fifty more failing passes", func() bool { return q.probes.Load() >= after+50 })
	if n := strings.Count(logs.String(), "audit sealing failed"); n != 1 {
		t.Errorf("%d failure lines in %d failing passes, want 1:\n%s", n, q.probes.Load(), logs.String())
	}
	if err := postgres.Migrate(ctx, pool, schema, auditGrants, audit.Migrations(schema)); err != nil {
		t.Fatal(err)
	}
	if err := log.Append(ctx, pool, audit.Event{Action: "x"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery", func() bool { return strings.Contains(logs.String(), "audit sealing recovered") })
	eventually(t, "the row sealed", func() bool {
		rep, err := log.Verify(ctx, pool)
		return err == nil && rep.Sealed == 1
	})
	cancel()
	<-done
}

// countingQuerier counts the passes of a sealer by the probe each starts with.
type countingQuerier struct {
	audit.Querier
	probes atomic.Int64
}

func (q *countingQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	q.probes.Add(1)
	return q.Querier.QueryRow(ctx, sql, args...)
}

// TestStopSealsWhatCommittedBeforeIt: stopping a sealer makes one last pass,
// so rows committed while the service drained are not left pending.
func TestStopSealsWhatCommittedBeforeIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var logs logBuffer
	stop := e.log.StartSealer(e.pool, logs.logger())
	e.append(t, audit.Event{Action: "just before stop"})
	start := time.Now()
	stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
	if n := e.pendingCount(t); n != 0 {
		t.Errorf("%d rows pending after stop, want 0", n)
	}
	e.verify(t, 1)
	stop() // a second stop is harmless
}

// TestUpgradeKeepsTheOldChain: a table written by the first release (rows
// linked at insert) migrates in place, verifies as before, and new rows are
// sealed after its head.
func TestUpgradeKeepsTheOldChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, packageURL, postgres.PoolConfig{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	schema := fmt.Sprintf("audit_upgrade_%d", rand.Uint32())
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema+"; "+audit.FirstMigrationSQL(schema)); err != nil {
		t.Fatal(err)
	}
	e := env{pool: pool, schema: schema, log: audit.New(schema, clock)}
	prev := audit.Genesis
	for i := range 3 {
		if prev, err = e.log.AppendV1(ctx, pool, int64(i+1), prev, audit.Event{Actor: fmt.Sprintf("old-%d", i), Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, audit.SealingMigrationSQL(schema)); err != nil {
		t.Fatalf("sealing migration on a populated table: %v", err)
	}
	e.verify(t, 3)
	e.append(t, audit.Event{Actor: "new-1", Action: "x"})
	e.append(t, audit.Event{Actor: "new-2", Action: "x"})
	rows := e.rows(t)
	assertChain(t, rows)
	if len(rows) != 5 || rows[2].Actor != "old-2" || rows[3].Actor != "new-1" || !bytes.Equal(rows[2].Hash, prev) {
		t.Errorf("rows = %+v, want the old three unchanged, then the new two", rows)
	}
	e.verify(t, 5)
}
