package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/errs"
)

// grantRuntime gives the runtime role that RuntimeRoleSetting names exactly
// grants in schema, in one transaction, so that its privileges are never
// seen half-changed. The owner runs it: it may grant on what it owns.
func grantRuntime(ctx context.Context, conn *pgx.Conn, schema string, grants Grants) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("grant in %s: %w", schema, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var runtime string
	if err := tx.QueryRow(ctx, "SELECT coalesce(current_setting($1, true), '')", RuntimeRoleSetting).Scan(&runtime); err != nil {
		return fmt.Errorf("read %s: %w", RuntimeRoleSetting, err)
	}
	tables, err := tablesOf(ctx, tx, schema)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, ok := grants[t]; !ok && t != "schema_migrations" {
			return fmt.Errorf("table %s.%s has no grant for the runtime role: add it to the service's Grants", schema, t)
		}
	}
	for t := range grants {
		if !slices.Contains(tables, t) {
			return fmt.Errorf("grants name %s.%s, which does not exist", schema, t)
		}
	}
	if runtime == "" {
		return nil // no runtime role: a superuser or a lone owner runs the service
	}
	if err := checkName("role", runtime); err != nil {
		return fmt.Errorf("%s: %w", RuntimeRoleSetting, err)
	}
	s, r := ident(schema), ident(runtime)
	stmts := []string{
		"REVOKE ALL ON ALL TABLES IN SCHEMA " + s + " FROM " + r,
		"REVOKE ALL ON ALL SEQUENCES IN SCHEMA " + s + " FROM " + r,
		"GRANT USAGE ON SCHEMA " + s + " TO " + r,
		"GRANT SELECT ON " + s + ".schema_migrations TO " + r,
	}
	for _, t := range slices.Sorted(maps.Keys(grants)) {
		if grants[t] != "" {
			stmts = append(stmts, "GRANT "+grants[t]+" ON "+s+"."+ident(t)+" TO "+r)
		}
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("grant %s in %s: %q: %w", runtime, schema, stmt, err)
		}
	}
	return tx.Commit(ctx)
}

// tablesOf lists the ordinary and partitioned tables of schema.
func tablesOf(ctx context.Context, q pgx.Tx, schema string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`, schema)
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", schema, err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", schema, err)
	}
	return tables, nil
}

// CheckSchema is what a service runs at start-up in place of migrating: it
// returns an Internal error if schema lacks a migration of sets (the owner
// has not run the service's migrate command yet) or records one none of
// sets has (wrapping ErrUnknownMigration: a newer build migrated it). It
// needs only to read schema_migrations.
//
// It also logs an error if the role can change the schema (it owns it, is a
// member of its owner, or is a superuser): then nothing stops the service,
// or whoever takes it over, from switching off the triggers that keep the
// books and the audit trail, and the least-privilege control is off.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool, schema string, logger *slog.Logger, sets ...fs.FS) error {
	if err := checkName("schema", schema); err != nil {
		return err
	}
	files, err := collect(sets)
	if err != nil {
		return errs.Wrap(errs.Internal, "database not ready", err)
	}
	rows, err := pool.Query(ctx, "SELECT version FROM "+ident(schema)+".schema_migrations")
	if err != nil {
		return errs.Wrap(errs.Internal, "database not ready", fmt.Errorf("read %s.schema_migrations (has the owner run migrate?): %w", schema, err))
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return errs.Wrap(errs.Internal, "database not ready", fmt.Errorf("read %s.schema_migrations: %w", schema, err))
	}
	if err := compareVersions(schema, files, applied); err != nil {
		return errs.Wrap(errs.Internal, "database not ready", err)
	}
	var owner, super bool
	err = pool.QueryRow(ctx, `SELECT pg_has_role(current_user, n.nspowner, 'MEMBER'), r.rolsuper
		FROM pg_namespace n, pg_roles r WHERE n.nspname = $1 AND r.rolname = current_user`, schema).Scan(&owner, &super)
	if err != nil {
		return errs.Wrap(errs.Internal, "database not ready", fmt.Errorf("read who owns %s: %w", schema, err))
	}
	if owner || super {
		logger.ErrorContext(ctx, "LEAST PRIVILEGE OFF: the service's database role can alter its schema, and so switch off "+
			"the triggers that keep the books and the audit trail; connect as the schema's runtime role, not its owner or a superuser",
			"schema", schema, "owner", owner, "superuser", super)
	}
	return nil
}

// compareVersions reports a migration of files that applied lacks, or one
// that applied records and files do not have.
func compareVersions(schema string, files []migration, applied []string) error {
	known := make(map[string]bool, len(files))
	for _, m := range files {
		known[m.version] = true
		if !slices.Contains(applied, m.version) {
			return fmt.Errorf("schema %s lacks migration %q: run the service's migrate command as the schema's owner", schema, m.version)
		}
	}
	for _, v := range applied {
		if !known[v] {
			return fmt.Errorf("schema %s: %w: %q", schema, ErrUnknownMigration, v)
		}
	}
	return nil
}

// MigrateCommand is each service's `migrate` command: it reads
// BANK_DATABASE_URL (the schema owner's URL; the server never sees it)
// through getenv and runs migrate there (MigrateAt).
func MigrateCommand(ctx context.Context, getenv func(string) string, app string, migrate func(context.Context, *pgxpool.Pool) error) error {
	env := config.New(getenv)
	url := env.URL("BANK_DATABASE_URL", "")
	if url == "" {
		env.Invalid("BANK_DATABASE_URL", "is required")
	}
	if err := env.Err(); err != nil {
		return err
	}
	return MigrateAt(ctx, url, app, migrate)
}

// MigrateAt opens a small pool on url (the schema owner's), runs migrate on
// it and closes it: the body of each service's migrate command.
func MigrateAt(ctx context.Context, url, app string, migrate func(context.Context, *pgxpool.Pool) error) error {
	pool, err := Open(ctx, url, PoolConfig{ApplicationName: app + "-migrate", MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool)
}
