package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/errs"
)

// ErrUnknownMigration is the cause Migrate wraps when the database records a
// migration the code does not have: the database was migrated by a newer
// build, and running older code against it could corrupt data.
var ErrUnknownMigration = errors.New("database has a migration this build does not know")

// nameRE is what Bastion accepts as a database, role or schema name: plain
// lower-case identifiers that need no quoting and fit Postgres's 63 bytes.
var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// checkName refuses a name outside nameRE and the names Postgres reserves.
func checkName(what, name string) error {
	if !nameRE.MatchString(name) || strings.HasPrefix(name, "pg_") ||
		name == "public" || name == "information_schema" {
		return errs.InvalidField(what, "must match ^[a-z_][a-z0-9_]{0,62}$ and not be reserved")
	}
	return nil
}

// ident quotes name for SQL. Names are checked before they get here; the
// quoting is the second lock on the door.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// Grants says, table by table, what a schema's runtime role may do: the
// privileges as GRANT takes them, e.g. "SELECT, INSERT, UPDATE (status)",
// or "" for nothing. It names every table of the schema but
// schema_migrations, which the runtime role may read (CheckSchema does).
type Grants map[string]string

// grantRE is what a Grants value may hold: privilege names, each with an
// optional column list. The values are constants in each service, so this
// only stops a typo from becoming SQL.
var grantRE = regexp.MustCompile(`^([A-Z]+( \([a-z_][a-z0-9_]*(, [a-z_][a-z0-9_]*)*\))?(, )?)*$`)

// Migrate brings schema up to date with the *.sql files at the root of sets
// (usually one embed.FS; a second set, such as audit.Migrations, can be
// added). Files run in lexical order of their names, each in its own
// transaction with search_path set to schema, so unqualified names land in
// the service's schema. Each applied file's name without ".sql" is recorded
// in <schema>.schema_migrations; a recorded file is never run again.
//
// Migrate runs as the schema's owner, never as the service's runtime role.
// After the files, in one transaction, it leaves the runtime role (the role
// RuntimeRoleSetting names in the owner's session, set by Provision) exactly
// grants on the schema's tables and SELECT on schema_migrations, taking away
// anything else it held there; without such a role it grants nothing. It
// refuses a schema with a table grants does not name, so that a new table
// is never used with privileges nobody decided. A nil grants skips both:
// for schemas that have no runtime role.
//
// Several replicas may start at once: a session advisory lock keyed on the
// schema makes them take turns, so each file runs exactly once. Migrate
// refuses (wrapping ErrUnknownMigration) when the database records a
// migration none of sets has, and creates schema if it does not exist.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, grants Grants, sets ...fs.FS) error {
	if err := checkName("schema", schema); err != nil {
		return err
	}
	for table, privileges := range grants {
		if checkName("table", table) != nil || !grantRE.MatchString(privileges) {
			return errs.Wrap(errs.Internal, "database migration failed", fmt.Errorf("bad grant %q on %q", privileges, table))
		}
	}
	files, err := collect(sets)
	if err != nil {
		return errs.Wrap(errs.Internal, "database migration failed", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return errs.Wrap(errs.Unavailable, "database unavailable", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended('bastion.migrate:' || $1, 0))", schema); err != nil {
		return errs.Wrap(errs.Internal, "database migration failed", fmt.Errorf("lock schema %s: %w", schema, err))
	}
	defer unlock(ctx, conn, schema)
	if err := migrateLocked(ctx, conn.Conn(), schema, files); err != nil {
		return errs.Wrap(errs.Internal, "database migration failed", err)
	}
	if grants != nil {
		if err := grantRuntime(ctx, conn.Conn(), schema, grants); err != nil {
			return errs.Wrap(errs.Internal, "database migration failed", err)
		}
	}
	return nil
}

// unlock releases the migration lock. If that fails the connection is
// closed instead, which releases every session lock it holds, rather than
// returned to the pool still holding it.
func unlock(ctx context.Context, conn *pgxpool.Conn, schema string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtextextended('bastion.migrate:' || $1, 0))", schema); err != nil {
		conn.Conn().Close(ctx)
	}
}

// migration is one file of SQL, named by its version.
type migration struct {
	version string
	sql     string
}

// collect reads every *.sql file of sets, sorted by name.
func collect(sets []fs.FS) ([]migration, error) {
	var out []migration
	seen := map[string]bool{}
	for _, set := range sets {
		names, err := fs.Glob(set, "*.sql")
		if err != nil {
			return nil, fmt.Errorf("list migrations: %w", err)
		}
		for _, name := range names {
			version := strings.TrimSuffix(name, ".sql")
			if seen[version] {
				return nil, fmt.Errorf("migration %q appears twice", version)
			}
			seen[version] = true
			sql, err := fs.ReadFile(set, name)
			if err != nil {
				return nil, fmt.Errorf("read migration %q: %w", name, err)
			}
			out = append(out, migration{version: version, sql: string(sql)})
		}
	}
	slices.SortFunc(out, func(a, b migration) int { return strings.Compare(a.version, b.version) })
	return out, nil
}

// migrateLocked does Migrate's work once the lock is held.
func migrateLocked(ctx context.Context, conn *pgx.Conn, schema string, files []migration) error {
	if err := ensureSchema(ctx, conn, schema); err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, conn, schema)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(files))
	for _, m := range files {
		known[m.version] = true
	}
	for _, v := range applied {
		if !known[v] {
			return fmt.Errorf("schema %s: %w: %q", schema, ErrUnknownMigration, v)
		}
	}
	for _, m := range files {
		if slices.Contains(applied, m.version) {
			continue
		}
		if err := apply(ctx, conn, schema, m); err != nil {
			return err
		}
	}
	return nil
}

// ensureSchema creates schema and its migrations table if they are missing.
// It looks before it creates: CREATE SCHEMA IF NOT EXISTS needs the CREATE
// privilege on the database even when the schema exists, and a service role
// in production has no such privilege.
func ensureSchema(ctx context.Context, conn *pgx.Conn, schema string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("look for schema %s: %w", schema, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(schema)); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
	}
	_, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+ident(schema)+`.schema_migrations (
		version    text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return fmt.Errorf("create %s.schema_migrations: %w", schema, err)
	}
	return nil
}

// appliedVersions lists the versions recorded in schema.
func appliedVersions(ctx context.Context, conn *pgx.Conn, schema string) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT version FROM "+ident(schema)+".schema_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", schema, err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", schema, err)
	}
	return versions, nil
}

// apply runs one migration and records it in the same transaction, so a
// migration that fails halfway leaves no trace and runs again next time.
func apply(ctx context.Context, conn *pgx.Conn, schema string, m migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.version, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident(schema)); err != nil {
		return fmt.Errorf("migration %s: %w", m.version, err)
	}
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.version, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+ident(schema)+".schema_migrations (version) VALUES ($1)", m.version); err != nil {
		return fmt.Errorf("record migration %s: %w", m.version, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migration %s: %w", m.version, err)
	}
	return nil
}
