package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// The three ways services hold a database must all be usable.
var (
	_ audit.Querier = (*pgxpool.Pool)(nil)
	_ audit.Querier = (*pgx.Conn)(nil)
	_ audit.Querier = pgx.Tx(nil)
)

// packageURL is this package's test database; each test uses its own schema.
var packageURL string

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { packageURL = u }) }

// clock is a fixed test clock.
func clock() time.Time { return time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC) }

// env is one test's schema with the audit table migrated in.
type env struct {
	pool   *pgxpool.Pool
	schema string
	log    *audit.Log
}

func newEnv(t *testing.T) env {
	t.Helper()
	pool, err := postgres.Open(context.Background(), packageURL, postgres.PoolConfig{MaxConns: 25})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := make([]byte, 5)
	rand.Read(b)
	schema := "audit_" + hex.EncodeToString(b)
	if err := postgres.Migrate(context.Background(), pool, schema, auditGrants, audit.Migrations(schema)); err != nil {
		t.Fatalf("Migrate(audit.Migrations(%q)) error = %v", schema, err)
	}
	return env{pool: pool, schema: schema, log: audit.New(schema, clock)}
}

func (e env) append(t *testing.T, ev audit.Event) {
	t.Helper()
	if err := e.log.Append(context.Background(), e.pool, ev); err != nil {
		t.Fatalf("Append(%+v) error = %v", ev, err)
	}
}

// seal links every committed pending row into the chain.
func (e env) seal(t *testing.T) int {
	t.Helper()
	n, err := e.log.Seal(context.Background(), e.pool)
	if err != nil {
		t.Fatalf("Seal() error = %v", err)
	}
	return n
}

// verify runs Verify and fails unless the chain is whole with want sealed
// rows and none pending.
func (e env) verify(t *testing.T, want int) {
	t.Helper()
	rep, err := e.log.Verify(context.Background(), e.pool)
	if err != nil || rep.Sealed != want || rep.HeadSeq != int64(want) || rep.Pending != 0 {
		t.Fatalf("Verify() = %+v, %v; want %d sealed, none pending", rep, err, want)
	}
}

// row is a stored audit row as the test reads it back, after sealing.
type row struct {
	Seq                                                         int64
	At                                                          time.Time
	Actor, Action, Resource, Outcome, Reason, ClientIP, TraceID string
	Detail                                                      map[string]string
	PrevHash, Hash                                              []byte
}

func (e env) rows(t *testing.T) []row {
	t.Helper()
	e.seal(t)
	rs, err := e.pool.Query(context.Background(), `SELECT seq, at, actor, action, resource, outcome, reason,
		client_ip, trace_id, detail, prev_hash, hash FROM `+e.schema+".audit_events ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.Seq, &x.At, &x.Actor, &x.Action, &x.Resource, &x.Outcome, &x.Reason,
			&x.ClientIP, &x.TraceID, &x.Detail, &x.PrevHash, &x.Hash)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertChain checks the links between stored rows directly, independently
// of Verify.
func assertChain(t *testing.T, rows []row) {
	t.Helper()
	prev := make([]byte, 32)
	for i, r := range rows {
		if r.Seq != int64(i+1) || !bytes.Equal(r.PrevHash, prev) || len(r.Hash) != 32 || bytes.Equal(r.Hash, r.PrevHash) {
			t.Fatalf("row %d: seq %d prev %x hash %x; want seq %d prev %x and a new 32-byte hash", i, r.Seq, r.PrevHash, r.Hash, i+1, prev)
		}
		prev = r.Hash
	}
}

func TestAppendChainsAndVerifies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if rep, err := e.log.Verify(ctx, e.pool); rep.Sealed != 0 || rep.Pending != 0 || rep.HeadHash != nil || err != nil {
		t.Fatalf("Verify(empty) = %+v, %v; want nothing, nil", rep, err)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 999, time.FixedZone("x", 3600))
	events := []audit.Event{
		{Actor: "u-1", Action: "auth.login", Outcome: "success", ClientIP: "10.0.0.1", TraceID: "t1", At: at},
		{Actor: "u-1", Action: "accounts.freeze", Resource: "account/9", Outcome: "denied", Reason: "not_owner",
			Detail: map[string]string{"role": "user", "account_id": "9"}},
		{Actor: "anonymous", Action: "auth.login", Outcome: "failure", Reason: "bad_credentials", ClientIP: "10.0.0.2"},
	}
	for _, ev := range events {
		e.append(t, ev)
	}
	rows := e.rows(t)
	assertChain(t, rows)
	want := []row{
		{Seq: 1, At: at.Truncate(time.Microsecond), Actor: "u-1", Action: "auth.login", Outcome: "success", ClientIP: "10.0.0.1", TraceID: "t1", Detail: map[string]string{}},
		{Seq: 2, At: clock().Truncate(time.Microsecond), Actor: "u-1", Action: "accounts.freeze", Resource: "account/9", Outcome: "denied", Reason: "not_owner",
			Detail: map[string]string{"role": "user", "account_id": "9"}},
		{Seq: 3, At: clock().Truncate(time.Microsecond), Actor: "anonymous", Action: "auth.login", Outcome: "failure", Reason: "bad_credentials", ClientIP: "10.0.0.2", Detail: map[string]string{}},
	}
	ignoreHashes := cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "PrevHash" || s == "Hash"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, rows, ignoreHashes, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("stored rows (-want +got):\n%s", diff)
	}
	rep, err := e.log.Verify(ctx, e.pool)
	if err != nil || rep.Sealed != 3 || rep.HeadSeq != 3 || !bytes.Equal(rep.HeadHash, rows[2].Hash) || rep.Pending != 0 {
		t.Errorf("Verify() = %+v, %v; want 3 sealed, head seq 3 with hash %x, none pending", rep, err, rows[2].Hash)
	}
}

func TestAppendInCallersTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.append(t, audit.Event{Action: "first"})
	errAbort := errors.New("abort")
	// The audited change fails, so its audit record must vanish with it.
	err := postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := e.log.Append(ctx, tx, audit.Event{Action: "rolled.back"}); err != nil {
			return err
		}
		return errAbort
	})
	if err != errAbort {
		t.Fatalf("InTx = %v, want %v", err, errAbort)
	}
	err = postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return e.log.Append(ctx, tx, audit.Event{Action: "committed"})
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := e.rows(t)
	assertChain(t, rows)
	if len(rows) != 2 || rows[1].Action != "committed" {
		t.Errorf("rows = %+v, want first and committed only, gapless", rows)
	}
}

// TestQueueInCallersBatch: an event queued on the audited change's batch
// is stored as Append stores it, commits with the change, and is neither
// committed when the transaction rolls back nor run when a statement before
// it in the batch fails.
func TestQueueInCallersBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	send := func(tx pgx.Tx, before string, ev audit.Event) error {
		return queue(ctx, e.log, tx, before, ev)
	}
	errAbort := errors.New("abort")
	err := postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := send(tx, "SELECT 1", audit.Event{Action: "rolled.back"}); err != nil {
			return err
		}
		return errAbort
	})
	if err != errAbort {
		t.Fatalf("InTx = %v, want %v", err, errAbort)
	}
	err = postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return send(tx, "SELECT 1/0", audit.Event{Action: "after.failure"})
	})
	if err == nil || errs.KindOf(err) == errs.Internal {
		t.Fatalf("InTx(failing statement before the event) = %v, want the statement's own error", err)
	}
	err = postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return send(tx, "SELECT 1", audit.Event{Actor: "u-1", Action: "committed", Detail: map[string]string{"k": "v"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := e.rows(t)
	assertChain(t, rows)
	if len(rows) != 1 || rows[0].Action != "committed" || rows[0].Actor != "u-1" || rows[0].Detail["k"] != "v" {
		t.Errorf("rows = %+v, want the committed event only", rows)
	}
	// pgx prepares a batch's statements before sending it, so a missing
	// table fails the batch at its first result.
	missing := audit.New("no_such_schema", clock)
	err = postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return queue(ctx, missing, tx, "SELECT 1", audit.Event{Action: "x"})
	})
	if err == nil {
		t.Error("queued append to no table: no error")
	}
	if err := e.log.AppendFailed(errors.New("boom")); errs.KindOf(err) != errs.Internal ||
		errs.SafeMessage(err) != "internal error" || !strings.Contains(err.Error(), "boom") {
		t.Errorf("AppendFailed(boom) = %v, want internal wrapping boom", err)
	}
}

// queue sends before and then l's insert of ev as one batch in tx, reading
// the results as a caller of Queue does.
func queue(ctx context.Context, l *audit.Log, tx pgx.Tx, before string, ev audit.Event) error {
	b := &pgx.Batch{}
	b.Queue(before)
	if err := l.Queue(b, ev); err != nil {
		return err
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	if _, err := br.Exec(); err != nil {
		return l.AppendFailed(err)
	}
	return nil
}

// TestQueueAllStoresEachAsQueueDoes: events queued together by QueueAll
// are stored in their order, each as Queue stores it alone (cleaned,
// secrets dropped), and chain and verify like any others; no events queue
// nothing.
func TestQueueAllStoresEachAsQueueDoes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	evs := []audit.Event{
		{Actor: "u-1", Action: "transfer.posted", Resource: "transfer/1", Outcome: "success", ClientIP: "203.0.113.7",
			TraceID: "trace-1", Detail: map[string]string{"amount": "5", "api_token": "never stored"}},
		{Actor: "u-2", Action: "transfer.held", Resource: "transfer/2", Outcome: "success", Reason: "amount\x00",
			At: time.Date(2031, 1, 2, 3, 4, 5, 678999, time.UTC)},
		{Actor: "u-1", Action: "deposit.posted", Detail: map[string]string{}},
	}
	if err := postgres.InTx(ctx, e.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		for _, ev := range evs {
			if err := queue(ctx, e.log, tx, "SELECT 1", ev); err != nil {
				return err
			}
		}
		b := &pgx.Batch{}
		if err := e.log.QueueAll(b, nil); err != nil || b.Len() != 0 {
			return fmt.Errorf("QueueAll(no events) = %v with %d statements, want nil and none", err, b.Len())
		}
		if err := e.log.QueueAll(b, evs); err != nil {
			return err
		}
		br := tx.SendBatch(ctx, b)
		tag, err := br.Exec()
		if err = errors.Join(err, br.Close()); err != nil {
			return e.log.AppendFailed(err)
		}
		if tag.RowsAffected() != int64(len(evs)) {
			return fmt.Errorf("QueueAll(%d events) inserted %d rows", len(evs), tag.RowsAffected())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rows := e.rows(t)
	assertChain(t, rows)
	e.verify(t, 2*len(evs))
	if len(rows) != 2*len(evs) {
		t.Fatalf("rows = %d, want %d", len(rows), 2*len(evs))
	}
	strip := func(r row) row { r.Seq, r.PrevHash, r.Hash = 0, nil, nil; return r }
	for i := range evs {
		alone, together := strip(rows[i]), strip(rows[len(evs)+i])
		if diff := cmp.Diff(alone, together); diff != "" {
			t.Errorf("event %d stored by QueueAll differs from Queue's (-Queue +QueueAll):\n%s", i, diff)
		}
	}
	if _, ok := rows[len(evs)].Detail["api_token"]; ok {
		t.Errorf("QueueAll stored a secret detail key: %v", rows[len(evs)].Detail)
	}
}

func TestConcurrentAppendsStayGapless(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts pgx.TxOptions
		tx   bool
	}{
		{"pool", pgx.TxOptions{}, false},
		{"read committed tx", pgx.TxOptions{}, true},
		// In these two the snapshot is taken by the read before Append;
		// appends read no other row, so none of them has to be retried.
		{"repeatable read tx", pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, true},
		{"serializable tx", pgx.TxOptions{IsoLevel: pgx.Serializable}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					ev := audit.Event{Actor: fmt.Sprintf("u-%d", i), Action: "transfer"}
					var err error
					if !tt.tx {
						err = e.log.Append(ctx, e.pool, ev)
					} else {
						err = postgres.InTx(ctx, e.pool, tt.opts, func(tx pgx.Tx) error {
							if _, err := tx.Exec(ctx, "SELECT count(*) FROM "+e.schema+".audit_events"); err != nil {
								return err
							}
							return e.log.Append(ctx, tx, ev)
						})
					}
					if err != nil {
						t.Errorf("Append(%d) error = %v", i, err)
					}
				})
			}
			wg.Wait()
			rows := e.rows(t)
			assertChain(t, rows)
			actors := map[string]bool{}
			for _, r := range rows {
				actors[r.Actor] = true
			}
			if len(rows) != 20 || len(actors) != 20 {
				t.Errorf("%d rows from %d actors, want 20 from 20", len(rows), len(actors))
			}
			e.verify(t, 20)
		})
	}
}

func TestSecretsAndJunkAreNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	detail := map[string]string{
		"password": "hunter2", "Password": "hunter2", "new_password": "hunter2", "refresh_token": "rt",
		"accessToken": "eyJ", "X-Api-Key": "k", "client_secret": "s", "Authorization": "Bearer x",
		"Cookie": "sid=1", "private.key": "pem", "otp_credential": "1", "jwt signature": "sig",
		"account_id": "acc-1", "amount": "100", "currency": "EUR",
	}
	long := strings.Repeat("é", audit.MaxFieldBytes) // 2 bytes each: the cut falls mid-rune
	e.append(t, audit.Event{
		Actor: "bad\x00actor\xff", Action: long, Detail: detail,
	})
	many := map[string]string{}
	for i := range audit.MaxDetailKeys + 10 {
		many[fmt.Sprintf("k%03d", i)] = "v"
	}
	e.append(t, audit.Event{Action: "many", Detail: many})

	rows := e.rows(t)
	wantDetail := map[string]string{"account_id": "acc-1", "amount": "100", "currency": "EUR"}
	if diff := cmp.Diff(wantDetail, rows[0].Detail); diff != "" {
		t.Errorf("stored detail (-want +got):\n%s", diff)
	}
	if rows[0].Actor != "badactor\uFFFD" {
		t.Errorf("stored actor = %q, want NUL removed and bad UTF-8 replaced", rows[0].Actor)
	}
	if a := rows[0].Action; len(a) > audit.MaxFieldBytes || !utf8.ValidString(a) || !strings.HasPrefix(long, a) {
		t.Errorf("stored action: %d bytes, valid %v; want a valid prefix of at most %d", len(a), utf8.ValidString(a), audit.MaxFieldBytes)
	}
	if n := len(rows[1].Detail); n != audit.MaxDetailKeys {
		t.Errorf("stored %d detail keys, want %d", n, audit.MaxDetailKeys)
	}
	if _, ok := rows[1].Detail["k000"]; !ok {
		t.Errorf("detail kept %v, want the first keys in sorted order", rows[1].Detail)
	}
	// What was stored is what was hashed.
	e.verify(t, 2)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(context.Background(), packageURL, postgres.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	missing := audit.New("no_such_schema", clock)
	if err := missing.Append(context.Background(), pool, audit.Event{Action: "x"}); errs.KindOf(err) != errs.Internal || errs.SafeMessage(err) != "internal error" {
		t.Errorf("Append(no table) error = %v, want internal", err)
	}
	if _, err := missing.Verify(context.Background(), pool); errs.KindOf(err) != errs.Internal {
		t.Errorf("Verify(no table) error = %v, want internal", err)
	}
	if n, err := missing.Seal(context.Background(), pool); n != 0 || errs.KindOf(err) != errs.Internal || errs.SafeMessage(err) != "internal error" {
		t.Errorf("Seal(no table) = %d, %v; want 0, internal", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := missing.Append(ctx, pool, audit.Event{Action: "x"}); errs.KindOf(err) != errs.Internal {
		t.Errorf("Append(cancelled) error = %v, want internal", err)
	}
}
