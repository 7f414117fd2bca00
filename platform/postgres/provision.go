package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// RoleSpec names one service's login role, the schema it owns, and the
// role's password.
type RoleSpec struct {
	Role     string // login role, e.g. "bank_auth"
	Schema   string // the only schema the role may use, e.g. "auth"
	Password string // 16 to 1024 printable ASCII characters
}

// Provision prepares database dbName for Bastion's services. It connects to
// adminURL as a superuser and, idempotently:
//
//   - creates dbName if it does not exist and revokes from PUBLIC the right
//     to connect to it and to create objects in its public schema;
//   - for each spec, creates or updates a LOGIN role with no special
//     attributes and the given password (sent as a SCRAM verifier, so the
//     plain text never reaches the server's logs), lets it connect to dbName,
//     gives it schema (which it owns) as its search_path there, and takes
//     away any access it has to the other specs' schemas or roles.
//
// Roles belong to the whole cluster, so several callers may provision at
// once: they take turns on an advisory lock, and a role or database created
// by someone else in the meantime is not an error. Provision refuses to
// touch a superuser role or the role it connects as. Errors are Invalid for
// bad names or passwords and Internal otherwise.
func Provision(ctx context.Context, adminURL, dbName string, roles []RoleSpec) error {
	if err := checkSpecs(dbName, roles); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return errs.Wrap(errs.Internal, "database misconfigured", err)
	}
	if err := provision(ctx, cfg, dbName, roles); err != nil {
		return errs.Wrap(errs.Internal, "provisioning failed", err)
	}
	return nil
}

// checkSpecs validates every name and password before anything is changed.
func checkSpecs(dbName string, roles []RoleSpec) error {
	if err := checkName("database", dbName); err != nil {
		return err
	}
	if dbName == "postgres" || strings.HasPrefix(dbName, "template") {
		return errs.InvalidField("database", "must not be a system database")
	}
	seenRole, seenSchema := map[string]bool{}, map[string]bool{}
	for _, r := range roles {
		if err := checkName("role", r.Role); err != nil {
			return err
		}
		if err := checkName("schema", r.Schema); err != nil {
			return err
		}
		if seenRole[r.Role] || seenSchema[r.Schema] {
			return errs.InvalidField("roles", "each role and each schema may appear once")
		}
		seenRole[r.Role], seenSchema[r.Schema] = true, true
		if !goodPassword(r.Password) {
			return errs.InvalidField("password", "must be 16 to 1024 printable ASCII characters")
		}
	}
	return nil
}

func goodPassword(p string) bool {
	if len(p) < 16 || len(p) > 1024 {
		return false
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// provision does Provision's work on validated input.
func provision(ctx context.Context, cfg *pgx.ConnConfig, dbName string, roles []RoleSpec) error {
	admin, err := adminSession(ctx, cfg)
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := ensureDatabase(ctx, admin, dbName); err != nil {
		return err
	}
	for _, r := range roles {
		if err := ensureRole(ctx, admin, dbName, r); err != nil {
			return err
		}
	}
	db, err := connectTo(ctx, cfg, dbName)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	return lockDown(ctx, db, dbName, roles)
}

// adminSession connects with cfg and waits for the provisioning lock:
// concurrent GRANTs on one object fail with "tuple concurrently updated",
// so provisioners take turns. Closing the connection releases the lock.
func adminSession(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect as admin: %w", err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended('bastion.provision', 0))"); err != nil {
		admin.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lock: %w", err)
	}
	return admin, nil
}

// connectTo connects with cfg's credentials to database dbName.
func connectTo(ctx context.Context, cfg *pgx.ConnConfig, dbName string) (*pgx.Conn, error) {
	dbCfg := cfg.Copy()
	dbCfg.Database = dbName
	db, err := pgx.ConnectConfig(ctx, dbCfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", dbName, err)
	}
	return db, nil
}

// ensureDatabase creates dbName unless it exists.
func ensureDatabase(ctx context.Context, admin *pgx.Conn, dbName string) error {
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", dbName).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", dbName, err)
	}
	if exists {
		return nil
	}
	_, err := admin.Exec(ctx, "CREATE DATABASE "+ident(dbName))
	if err != nil && !isDuplicate(err, codeDuplicateDatabase) {
		return fmt.Errorf("create database %s: %w", dbName, err)
	}
	return nil
}

// ensureRole creates or updates r's login role.
func ensureRole(ctx context.Context, admin *pgx.Conn, dbName string, r RoleSpec) error {
	if err := createUnprivileged(ctx, admin, r.Role); err != nil {
		return err
	}
	verifier, err := newScramVerifier(r.Password)
	if err != nil {
		return err
	}
	stmts := []string{
		"ALTER ROLE " + ident(r.Role) + " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + quoteLiteral(verifier),
		"ALTER ROLE " + ident(r.Role) + " IN DATABASE " + ident(dbName) + " SET search_path TO " + ident(r.Schema),
	}
	return execAll(ctx, admin, "configure role "+r.Role, stmts)
}

// execAll runs stmts in order, stopping at the first error. The error does
// not quote the statement, which may carry a password verifier.
func execAll(ctx context.Context, conn *pgx.Conn, what string, stmts []string) error {
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// lockDown sets the privileges inside dbName.
func lockDown(ctx context.Context, db *pgx.Conn, dbName string, roles []RoleSpec) error {
	stmts := []string{
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"REVOKE ALL ON DATABASE " + ident(dbName) + " FROM PUBLIC",
	}
	for _, r := range roles {
		stmts = append(stmts,
			"CREATE SCHEMA IF NOT EXISTS "+ident(r.Schema)+" AUTHORIZATION "+ident(r.Role),
			"ALTER SCHEMA "+ident(r.Schema)+" OWNER TO "+ident(r.Role),
			"REVOKE ALL ON SCHEMA "+ident(r.Schema)+" FROM PUBLIC",
			"REVOKE ALL ON ALL TABLES IN SCHEMA "+ident(r.Schema)+" FROM PUBLIC",
			"GRANT CONNECT ON DATABASE "+ident(dbName)+" TO "+ident(r.Role),
		)
	}
	for _, a := range roles {
		for _, b := range roles {
			if a != b {
				stmts = append(stmts,
					"REVOKE ALL ON SCHEMA "+ident(b.Schema)+" FROM "+ident(a.Role),
					"REVOKE ALL ON ALL TABLES IN SCHEMA "+ident(b.Schema)+" FROM "+ident(a.Role),
					"REVOKE ALL ON ALL SEQUENCES IN SCHEMA "+ident(b.Schema)+" FROM "+ident(a.Role),
					"REVOKE "+ident(b.Role)+" FROM "+ident(a.Role),
				)
			}
		}
	}
	for _, s := range stmts {
		_, err := db.Exec(ctx, s)
		if err != nil && !isDuplicate(err, codeDuplicateSchema) {
			return fmt.Errorf("in %s: %q: %w", dbName, s, err)
		}
	}
	return nil
}

// isDuplicate reports whether err says another caller created the object
// first: Postgres reports that either with the object's own duplicate code
// or, when the race reaches the catalog's unique index, unique_violation.
func isDuplicate(err error, code string) bool {
	return slices.Contains([]string{code, codeUniqueViolation}, sqlState(err))
}

// quoteLiteral quotes s as an SQL string literal. It is used only for a
// SCRAM verifier, which cannot be sent as a parameter in a utility
// statement and contains no quote, but quotes are doubled regardless.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
