// Package postgres is the accounts service's storage on PostgreSQL: schema
// "accounts", migrations embedded in the binary (with the platform's audit
// table), and the domain.Store implementation.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// Schema is the Postgres schema the accounts service owns.
const Schema = "accounts"

//go:embed migrations/*.sql
var migrations embed.FS

// grants is what the accounts service's runtime role may do: read and open
// accounts, change what may change of one (its name and status, never its
// owner, currency or creation), and append and seal audit rows. No DELETE.
var grants = postgres.Grants{
	"accounts":     "SELECT, INSERT, UPDATE (display_name, status, status_reason, status_changed_by, updated_at)",
	"audit_events": audit.RuntimeGrant,
}

// Migrate brings the accounts schema, and its audit table, up to date and
// gives the runtime role its grants. Run it as the schema's owner
// (`accounts migrate`).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("accounts migrations: %w", err)
	}
	return postgres.Migrate(ctx, pool, Schema, grants, sub, audit.Migrations(Schema))
}

// CheckSchema returns an error unless the accounts schema is migrated to
// exactly this build's migrations, and logs an error if pool's role could
// alter it (postgres.CheckSchema). The service runs it at start-up.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("accounts migrations: %w", err)
	}
	return postgres.CheckSchema(ctx, pool, Schema, logger, sub, audit.Migrations(Schema))
}

// Store implements domain.Store on a pool.
type Store struct {
	pool  *pgxpool.Pool
	audit *audit.Log
}

var _ domain.Store = (*Store)(nil)

// New returns a store on pool that stamps audit events with now.
func New(pool *pgxpool.Pool, now func() time.Time) *Store {
	return &Store{pool: pool, audit: audit.New(Schema, now)}
}

// columns are the account columns, in the order scanAccount reads them.
const columns = `id::text, owner_id::text, currency, display_name, status, status_reason,
	COALESCE(status_changed_by::text, ''), created_at, updated_at`

// scanAccount reads one row selected with columns.
func scanAccount(row pgx.Row) (domain.Account, error) {
	var a domain.Account
	var status string
	err := row.Scan(&a.ID, &a.OwnerID, &a.Currency, &a.DisplayName, &status, &a.StatusReason,
		&a.StatusChangedBy, &a.CreatedAt, &a.UpdatedAt)
	a.Status = domain.Status(status)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

// inTx runs fn in one READ COMMITTED transaction. Each path takes its one
// lock (the owner's open lock or the account row) first, so retries for
// serialization failures should never be needed; postgres.InTx does them
// if they are.
func (r *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return mapErr(postgres.InTx(ctx, r.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn))
}

// Open implements domain.Store. Opens for one owner are serialised by
// a transaction-scoped advisory lock on the owner id, taken before the
// count, so two concurrent opens cannot both see nine accounts and both
// insert a tenth. Owners that hash alike merely wait for each other.
func (r *Store) Open(ctx context.Context, ownerID string,
	build func(int) (domain.Account, domain.Event, error), confirm func(domain.Account) error) (domain.Account, error) {
	var out domain.Account
	err := r.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('accounts.open:' || $1::text, 0))`, ownerID); err != nil {
			return fmt.Errorf("lock owner: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM accounts.accounts
			WHERE owner_id = $1 AND status <> 'CLOSED'`, ownerID).Scan(&n); err != nil {
			return fmt.Errorf("count open accounts: %w", err)
		}
		a, ev, err := build(n)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO accounts.accounts
			(id, owner_id, currency, display_name, status, status_reason, status_changed_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, '')::uuid, $8, $9)`,
			a.ID, a.OwnerID, a.Currency, a.DisplayName, string(a.Status), a.StatusReason, a.StatusChangedBy,
			a.CreatedAt, a.UpdatedAt); err != nil {
			return fmt.Errorf("insert account: %w", err)
		}
		if err := confirm(a); err != nil {
			return err
		}
		// Last, once the insert is confirmed: the record commits with it.
		if err := r.audit.Append(ctx, tx, auditEvent(ctx, ev)); err != nil {
			return err
		}
		out = a
		return nil
	})
	if err != nil {
		return domain.Account{}, err
	}
	return out, nil
}

// Update implements domain.Store. The row lock makes concurrent status
// changes of one account take turns, and confirm (the ledger call) runs
// while it is held, so the ledger sees changes in the order they commit.
func (r *Store) Update(ctx context.Context, id string,
	change func(*domain.Account) (*domain.Event, error), confirm func(domain.Account) error) (domain.Account, error) {
	var out domain.Account
	err := r.inTx(ctx, func(tx pgx.Tx) error {
		before, err := scanAccount(tx.QueryRow(ctx, `SELECT `+columns+` FROM accounts.accounts WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock account: %w", err)
		}
		a := before
		ev, err := change(&a)
		if err != nil {
			return err
		}
		if a != before {
			if err := write(ctx, tx, before, a); err != nil {
				return err
			}
		}
		if err := confirm(a); err != nil {
			return err
		}
		if ev != nil {
			if err := r.audit.Append(ctx, tx, auditEvent(ctx, *ev)); err != nil {
				return err
			}
		}
		out = a
		return nil
	})
	if err != nil {
		return domain.Account{}, err
	}
	return out, nil
}

// write stores the mutable fields of a. The id and owner are immutable: a
// change callback that alters them is a bug, refused here.
func write(ctx context.Context, tx pgx.Tx, before, a domain.Account) error {
	if a.ID != before.ID || a.OwnerID != before.OwnerID || a.Currency != before.Currency || !a.CreatedAt.Equal(before.CreatedAt) {
		return errors.New("update account: id, owner, currency and creation time are immutable")
	}
	_, err := tx.Exec(ctx, `UPDATE accounts.accounts SET display_name = $2, status = $3, status_reason = $4,
		status_changed_by = NULLIF($5, '')::uuid, updated_at = $6 WHERE id = $1`,
		a.ID, a.DisplayName, string(a.Status), a.StatusReason, a.StatusChangedBy, a.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	return nil
}

// Get implements domain.Store.
func (r *Store) Get(ctx context.Context, id string) (domain.Account, error) {
	a, err := scanAccount(r.pool.QueryRow(ctx, `SELECT `+columns+` FROM accounts.accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Account{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Account{}, mapErr(fmt.Errorf("get account: %w", err))
	}
	return a, nil
}

// Owner implements domain.Store.
func (r *Store) Owner(ctx context.Context, id string) (string, error) {
	var owner string
	err := r.pool.QueryRow(ctx, `SELECT owner_id::text FROM accounts.accounts WHERE id = $1`, id).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", domain.ErrNotFound
	}
	if err != nil {
		return "", mapErr(fmt.Errorf("get account owner: %w", err))
	}
	return owner, nil
}

// List implements domain.Store with keyset pagination on the
// (owner_id, created_at, id) index: each page costs the same however deep.
func (r *Store) List(ctx context.Context, ownerID string, after *domain.Cursor, limit int) ([]domain.Account, error) {
	var rows pgx.Rows
	var err error
	if after == nil {
		rows, err = r.pool.Query(ctx, `SELECT `+columns+` FROM accounts.accounts
			WHERE owner_id = $1 ORDER BY created_at, id LIMIT $2`, ownerID, limit)
	} else {
		rows, err = r.pool.Query(ctx, `SELECT `+columns+` FROM accounts.accounts
			WHERE owner_id = $1 AND (created_at, id) > ($2, $3::uuid)
			ORDER BY created_at, id LIMIT $4`, ownerID, after.CreatedAt, after.ID, limit)
	}
	if err != nil {
		return nil, mapErr(fmt.Errorf("list accounts: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Account, error) { return scanAccount(row) })
	if err != nil {
		return nil, mapErr(fmt.Errorf("list accounts: %w", err))
	}
	return out, nil
}

// Audit implements domain.Store.
func (r *Store) Audit(ctx context.Context, e domain.Event) error {
	return mapErr(r.audit.Append(ctx, r.pool, auditEvent(ctx, e)))
}
