// Package postgres stores the auth service's state in its own Postgres
// schema, "auth", and carries revocations between replicas with
// LISTEN/NOTIFY.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/errs"
	bankpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// Schema is the auth service's schema.
const Schema = "auth"

// Channel is the NOTIFY channel that carries revocations between replicas.
const Channel = "auth_revocations"

//go:embed migrations/*.sql
var migrations embed.FS

// grants is what the auth service's runtime role may do: read everything;
// register users; change only a user's roles, status and password hash; end
// sessions and mark refresh tokens used; enrol TOTP and spend MFA tickets;
// count login failures; record and purge revocations, expired sessions and
// tickets; and append and seal audit rows. It may delete no user, no
// credential and no TOTP enrolment.
var grants = bankpg.Grants{
	"users":            "SELECT, INSERT, UPDATE (roles, status, updated_at)",
	"credentials":      "SELECT, INSERT, UPDATE (password_hash, updated_at)",
	"refresh_families": "SELECT, INSERT, UPDATE (revoked_at), DELETE",
	"refresh_tokens":   "SELECT, INSERT, UPDATE (used_at), DELETE",
	"revoked_tokens":   "SELECT, INSERT, DELETE",
	"login_counters":   "SELECT, INSERT, UPDATE (count, window_start), DELETE",
	"totp":             "SELECT, INSERT, UPDATE (secret, pending, pending_at, enabled_at, last_step, updated_at)",
	"mfa_tickets":      "SELECT, INSERT, UPDATE (used_at), DELETE",
	"audit_events":     audit.RuntimeGrant,
}

// Migrate brings the auth schema, including its audit table, up to date and
// gives the runtime role its grants. Run it as the schema's owner
// (`auth migrate`).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	own, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return errs.Wrap(errs.Internal, "database migration failed", err)
	}
	return bankpg.Migrate(ctx, pool, Schema, grants, own, auditMigrations())
}

// CheckSchema returns an error unless the auth schema is migrated to exactly
// this build's migrations, and logs an error if pool's role could alter it
// (postgres.CheckSchema). The service runs it at start-up.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	own, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return errs.Wrap(errs.Internal, "database not ready", err)
	}
	return bankpg.CheckSchema(ctx, pool, Schema, logger, own, auditMigrations())
}

// Store is the Postgres implementation of domain.Store.
type Store struct {
	pool  *pgxpool.Pool
	audit auditor
}

var _ domain.Store = (*Store)(nil)

// New returns a Store on pool. now stamps the audit chain.
func New(pool *pgxpool.Pool, now func() time.Time) *Store {
	return &Store{pool: pool, audit: newAuditor(now)}
}

// InTx runs fn in one READ COMMITTED transaction, retried on serialization
// failures and deadlocks. Rows that must not change underneath are locked
// explicitly (SELECT … FOR UPDATE), which is what serialises concurrent
// refreshes of one token.
func (r *Store) InTx(ctx context.Context, fn func(domain.Tx) error) error {
	err := bankpg.InTx(ctx, r.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return fn(&txn{tx: tx, audit: r.audit})
	})
	return bankpg.MapError(err)
}

// ActiveRevocations returns every revocation unexpired at now.
func (r *Store) ActiveRevocations(ctx context.Context, now time.Time) ([]domain.Revocation, error) {
	rows, err := r.pool.Query(ctx,
		`SELECT token_id, expires_at FROM auth.revoked_tokens WHERE expires_at > $1 ORDER BY token_id`, now)
	if err != nil {
		return nil, bankpg.MapError(err)
	}
	revs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Revocation, error) {
		var v domain.Revocation
		err := row.Scan(&v.TokenID, &v.ExpiresAt)
		return v, err
	})
	return revs, bankpg.MapError(err)
}

// PurgeExpired deletes expired revocations, stale login counters, expired
// refresh tokens and the families left without a live token.
func (r *Store) PurgeExpired(ctx context.Context, now time.Time, window time.Duration) error {
	// Each delete is its own statement, so none holds many locks for long.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM auth.revoked_tokens WHERE expires_at <= $1`, []any{now}},
		{`DELETE FROM auth.mfa_tickets WHERE expires_at <= $1`, []any{now}},
		{`DELETE FROM auth.login_counters WHERE window_start <= $1`, []any{now.Add(-window)}},
		{`DELETE FROM auth.refresh_tokens WHERE expires_at <= $1 AND access_expires_at <= $1`, []any{now}},
		{`DELETE FROM auth.refresh_families f WHERE created_at <= $1
		    AND NOT EXISTS (SELECT 1 FROM auth.refresh_tokens t WHERE t.family_id = f.id)`, []any{now.Add(-time.Hour)}},
	} {
		if _, err := r.pool.Exec(ctx, q.sql, q.args...); err != nil {
			return bankpg.MapError(fmt.Errorf("purge: %w", err))
		}
	}
	return nil
}

// notifyBatch bounds the revocations per NOTIFY, keeping each payload well
// under Postgres's 8000-byte limit.
const notifyBatch = 64

// payload is one NOTIFY's body.
type payload struct {
	Revocations []wireRevocation `json:"r"`
}

type wireRevocation struct {
	ID  string `json:"i"`
	Exp int64  `json:"e"` // unix milliseconds
}

func encodePayloads(revs []domain.Revocation) ([]string, error) {
	var out []string
	for start := 0; start < len(revs); start += notifyBatch {
		var p payload
		for _, v := range revs[start:min(start+notifyBatch, len(revs))] {
			p.Revocations = append(p.Revocations, wireRevocation{ID: v.TokenID, Exp: v.ExpiresAt.UnixMilli()})
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		out = append(out, string(b))
	}
	return out, nil
}

func decodePayload(s string) ([]domain.Revocation, error) {
	var p payload
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("revocation notice: %w", err)
	}
	out := make([]domain.Revocation, 0, len(p.Revocations))
	for _, w := range p.Revocations {
		out = append(out, domain.Revocation{TokenID: w.ID, ExpiresAt: time.UnixMilli(w.Exp).UTC()})
	}
	return out, nil
}
