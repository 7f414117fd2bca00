package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/audit"
	platformpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// runtimeLedger provisions a database of the test's own with the ledger's
// roles, migrates it as the schema's owner (as `transactions migrate` does)
// and returns it as the runtime role the service connects as, and as a
// superuser. The database and its roles are dropped when the test ends.
func runtimeLedger(t *testing.T) (runtime, admin string) {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 5)
	rand.Read(b)
	s := hex.EncodeToString(b)
	db := "ledger_roles_" + s
	t.Cleanup(func() {
		if err := platformpg.Deprovision(context.Background(), pgtest.AdminURL(), db); err != nil {
			t.Errorf("Deprovision(%s) = %v", db, err)
		}
	})
	spec := platformpg.RoleSpec{Schema: postgres.Schema,
		Owner: db + "_owner", OwnerPassword: "owner-password-" + s,
		Role: db + "_runtime", Password: "runtime-password-" + s}
	if err := platformpg.Provision(ctx, pgtest.AdminURL(), db, []platformpg.RoleSpec{spec}); err != nil {
		t.Fatalf("Provision(%s) = %v", db, err)
	}
	if err := platformpg.MigrateAt(ctx, as(t, spec.Owner, db), "ledger-test", postgres.Migrate); err != nil {
		t.Fatalf("Migrate as %s = %v", spec.Owner, err)
	}
	return as(t, spec.Role, db), as(t, "postgres", db)
}

// as returns the server's URL for user in database db (the test server
// trusts local connections, so no password is needed).
func as(t *testing.T, user, db string) string {
	t.Helper()
	u, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User, u.Path = url.User(user), "/"+db
	return u.String()
}

// TestRuntimeRoleCannotRewriteMoney connects as the ledger's runtime role,
// which the service uses and an attacker who takes the service holds, and
// tries to change money and history without the books: every attempt must
// fail, and leave balances, entries and the audit chain as they were.
func TestRuntimeRoleCannotRewriteMoney(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, admin := runtimeLedger(t)
	e := newEnvAt(t, runtime)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	if _, err := audit.New(postgres.Schema, time.Now).Seal(ctx, e.pool); err != nil {
		t.Fatalf("Seal as the runtime role = %v", err)
	}
	money := []struct {
		name string
		sql  string
		args []any
	}{
		{"raise a balance", `UPDATE ledger.accounts SET balance = balance + 1000000 WHERE id = $1`, []any{a}},
		{"open an account with money", `INSERT INTO ledger.accounts (id, owner_id, currency, status, kind, balance, created_at, updated_at)
			VALUES (gen_random_uuid(), gen_random_uuid(), 'EUR', 'ACTIVE', 'customer', 1000000, now(), now())`, nil},
		{"book a transfer without moving the money", `WITH t AS (INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, status, kind, initiated_by, created_at)
			VALUES (gen_random_uuid(), $1, $2, 5, 'EUR', 'COMPLETED', 'transfer', gen_random_uuid(), now()) RETURNING id)
			INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
			SELECT id, $1, $2, -5, 995, now() FROM t UNION ALL SELECT id, $2, $1, 5, 5, now() FROM t`, []any{a, b}},
		{"entries that skip the history", `WITH t AS (INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, status, kind, initiated_by, created_at)
			VALUES (gen_random_uuid(), $1, $2, 5, 'EUR', 'COMPLETED', 'transfer', gen_random_uuid(), now()) RETURNING id),
			moved AS (UPDATE ledger.accounts SET balance = CASE id WHEN $1 THEN 995000 ELSE 5 END WHERE id IN ($1, $2))
			INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
			SELECT id, $1, $2, -5, 995000, now() FROM t UNION ALL SELECT id, $2, $1, 5, 5, now() FROM t`, []any{a, b}},
	}
	for _, at := range money {
		t.Run(at.name, func(t *testing.T) {
			if err := attempt(ctx, e, true, at.sql, at.args...); sqlState(err) != "23514" {
				t.Errorf("as the runtime role, %s (%s) = %v, want refused by the balance checks (23514)", at.name, at.sql, err)
			}
		})
	}
	// The rest fail when they run; each is rolled back regardless, so that
	// one that succeeds (a failure of this test) does not hide the others.
	attacks := []struct {
		name string
		sql  string
		args []any
	}{
		{"delete an account", `DELETE FROM ledger.accounts WHERE id = $1`, []any{b}},
		{"disable the audit triggers", `ALTER TABLE ledger.audit_events DISABLE TRIGGER USER`, nil},
		{"disable the audit triggers and cut the tail", `ALTER TABLE ledger.audit_events DISABLE TRIGGER USER;
			DELETE FROM ledger.audit_events WHERE seq > (SELECT max(seq) - 3 FROM ledger.audit_events)`, nil},
		{"disable the books' triggers", `ALTER TABLE ledger.entries DISABLE TRIGGER USER`, nil},
		{"drop the overdraft check", `ALTER TABLE ledger.accounts DROP CONSTRAINT accounts_no_overdraft`, nil},
		{"replace a trigger function", `CREATE OR REPLACE FUNCTION ledger.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`, nil},
		{"skip every trigger", `SET session_replication_role = replica`, nil},
		{"delete audit rows", `DELETE FROM ledger.audit_events`, nil},
		{"edit an audit row", `UPDATE ledger.audit_events SET actor = 'someone else'`, nil},
		{"truncate the audit trail", `TRUNCATE ledger.audit_events`, nil},
		{"forget a migration", `DELETE FROM ledger.schema_migrations`, nil},
		{"drop the books", `DROP TABLE ledger.entries CASCADE`, nil},
		{"plant a table", `CREATE TABLE ledger.planted (x int)`, nil},
		{"take the schema", `ALTER SCHEMA ledger RENAME TO mine`, nil},
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			if err := attempt(ctx, e, false, at.sql, at.args...); sqlState(err) != "42501" {
				t.Errorf("as the runtime role, %s (%s) = %v, want permission denied (42501)", at.name, at.sql, err)
			}
		})
	}
	if got := e.money(a); got.Balance != 1_000 {
		t.Errorf("balance after the attacks = %d, want 1000", got.Balance)
	}
	rep, err := audit.New(postgres.Schema, time.Now).Verify(ctx, openAs(t, admin))
	if err != nil || rep.Sealed == 0 {
		t.Errorf("Verify after the attacks = %+v, %v; want the chain whole", rep, err)
	}
}

// TestRuntimeRoleRunsTheLedger: what the runtime role is granted is enough
// for everything the service does: open, deposit, transfer, hold and
// approve or reject, freeze, read, prune and seal, with the balance check
// on.
func TestRuntimeRoleRunsTheLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, admin := runtimeLedger(t)
	e := newEnvAt(t, runtime)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 50_000, "EUR")
	steps := []struct {
		name string
		run  func() error
	}{
		{"transfer", func() error {
			_, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: a, To: b, Amount: 100, Currency: "EUR", IdempotencyKey: "t1"})
			return err
		}},
		{"replay", func() error {
			_, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: a, To: b, Amount: 100, Currency: "EUR", IdempotencyKey: "t1"})
			return err
		}},
		{"hold, then approve", func() error {
			out, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: a, To: b, Amount: 20_000, Currency: "EUR", IdempotencyKey: "t2"})
			if err == nil {
				_, err = e.svc.Approve(ctx, manager(), out.Transfer.ID)
			}
			return err
		}},
		{"hold, then reject", func() error {
			out, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: a, To: b, Amount: 15_000, Currency: "EUR", IdempotencyKey: "t3"})
			if err == nil {
				_, err = e.svc.Reject(ctx, manager(), out.Transfer.ID, "no")
			}
			return err
		}},
		{"freeze and unfreeze", func() error {
			if err := e.svc.SetAccountStatus(ctx, b, domain.AccountFrozen); err != nil {
				return err
			}
			return e.svc.SetAccountStatus(ctx, b, domain.AccountActive)
		}},
		{"read", func() error {
			_, err := e.svc.ListEntries(ctx, a, 0, 10)
			return err
		}},
		{"prune", func() error {
			_, err := e.svc.Prune(ctx, domain.MinKeyTTL)
			return err
		}},
		{"seal", func() error {
			_, err := audit.New(postgres.Schema, time.Now).Seal(ctx, e.pool)
			return err
		}},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("as the runtime role, %s = %v", st.name, err)
		}
	}
	if got, want := e.money(a).Balance+e.money(b).Balance, int64(50_000); got != want {
		t.Errorf("money of the two accounts = %d, want %d", got, want)
	}
	if rep, err := audit.New(postgres.Schema, time.Now).Verify(ctx, openAs(t, admin)); err != nil || rep.Pending != 0 {
		t.Errorf("Verify = %+v, %v; want every row sealed by the runtime role", rep, err)
	}
}

// attempt runs sql as e's role in a transaction, and commits it if commit
// is set (so that checks deferred to commit run) or else rolls it back. It
// returns the first error.
func attempt(ctx context.Context, e *env, commit bool, sql string, args ...any) error {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, sql, args...); err != nil || !commit {
		return err
	}
	return tx.Commit(ctx)
}

// openAs opens a pool on url that the test closes when it ends.
func openAs(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := platformpg.Open(context.Background(), url, platformpg.PoolConfig{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// sqlState returns err's SQLSTATE, or "" when it is not from Postgres.
func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}
