package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// RoleSpec names one service's schema and the two logins that use it.
//
// Owner owns the schema and every object in it: the service's migrations
// run as it, and nothing else should. Role is the login the service runs
// as: it owns nothing, so it can neither change a table nor switch off a
// trigger, and it may use only the tables the migrations grant it
// (Migrate's Grants). A stolen runtime password is then bounded by those
// grants and the triggers, not by what an owner may do.
type RoleSpec struct {
	Schema        string // the service's schema, e.g. "ledger"
	Owner         string // its owner and migrator, e.g. "bank_ledger_owner"
	OwnerPassword string // 16 to 1024 printable ASCII characters
	Role          string // the runtime login, e.g. "bank_ledger"
	Password      string // 16 to 1024 printable ASCII characters
}

// RuntimeRoleSetting is the setting through which a schema's owner knows its
// runtime role: Provision sets it on the owner for the database, and Migrate
// grants to the role it names.
const RuntimeRoleSetting = "bastion.runtime_role"

// Provision prepares database dbName for Bastion's services. It connects to
// adminURL as a superuser and, idempotently:
//
//   - creates dbName if it does not exist and revokes from PUBLIC the right
//     to connect to it and to create objects in its public schema;
//   - for each spec, creates or updates Owner and Role as LOGIN roles with no
//     special attributes, members of no role, with the given passwords (sent
//     as SCRAM verifiers, so the plain text never reaches the server's logs),
//     and marks them as roles of dbName (see Deprovision);
//   - lets both connect to dbName, gives both the schema as their
//     search_path there, and sets RuntimeRoleSetting on Owner to Role;
//   - makes Owner the owner of the schema and of every object in it (an
//     older layout had the runtime role own them), lets Role use the schema
//     and nothing more (Migrate grants it its tables), and takes away any
//     access both have to the other specs' schemas.
//
// Roles belong to the whole cluster, while a stack lives in one database:
// Provision never changes a role that is marked as another database's, so
// stacks on one server cannot reset each other's passwords. Several callers
// may provision at once: they take turns on an advisory lock, and a role or
// database created by someone else in the meantime is not an error.
// Provision refuses to touch a superuser role or the role it connects as.
// Errors are Invalid for bad names or passwords and Internal otherwise.
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
	if err := checkDatabase(dbName); err != nil {
		return err
	}
	seenRole, seenSchema := map[string]bool{}, map[string]bool{}
	for _, r := range roles {
		if err := checkName("schema", r.Schema); err != nil {
			return err
		}
		if seenSchema[r.Schema] {
			return errs.InvalidField("roles", "each schema may appear once")
		}
		seenSchema[r.Schema] = true
		for _, login := range []struct{ role, password string }{{r.Owner, r.OwnerPassword}, {r.Role, r.Password}} {
			if err := checkName("role", login.role); err != nil {
				return err
			}
			if seenRole[login.role] {
				return errs.InvalidField("roles", "each role may appear once, as an owner or a runtime role")
			}
			seenRole[login.role] = true
			if !goodPassword(login.password) {
				return errs.InvalidField("password", "must be 16 to 1024 printable ASCII characters")
			}
		}
	}
	return nil
}

// checkDatabase refuses a database name Bastion must not provision.
func checkDatabase(dbName string) error {
	if err := checkName("database", dbName); err != nil {
		return err
	}
	if dbName == "postgres" || strings.HasPrefix(dbName, "template") {
		return errs.InvalidField("database", "must not be a system database")
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
	for _, r := range roles { // refuse before anything changes
		for _, role := range []string{r.Owner, r.Role} {
			if err := claimable(ctx, admin, dbName, role); err != nil {
				return err
			}
		}
	}
	if err := ensureDatabase(ctx, admin, dbName); err != nil {
		return err
	}
	for _, r := range roles {
		if err := ensureLogin(ctx, admin, dbName, r.Owner, r.OwnerPassword, r.Schema); err != nil {
			return err
		}
		if err := ensureLogin(ctx, admin, dbName, r.Role, r.Password, r.Schema); err != nil {
			return err
		}
		err := execAll(ctx, admin, "configure role "+r.Owner, []string{"ALTER ROLE " + ident(r.Owner) + " IN DATABASE " + ident(dbName) +
			" SET " + RuntimeRoleSetting + " TO " + quoteLiteral(r.Role)})
		if err != nil {
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

// ensureLogin creates or updates role as an unprivileged login of dbName
// with password, a member of no role, whose search_path there is schema.
func ensureLogin(ctx context.Context, admin *pgx.Conn, dbName, role, password, schema string) error {
	if err := claimRole(ctx, admin, dbName, role); err != nil {
		return err
	}
	verifier, err := newScramVerifier(password)
	if err != nil {
		return err
	}
	err = execAll(ctx, admin, "configure role "+role, []string{
		"ALTER ROLE " + ident(role) + " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + quoteLiteral(verifier),
		"ALTER ROLE " + ident(role) + " IN DATABASE " + ident(dbName) + " SET search_path TO " + ident(schema),
	})
	if err != nil {
		return err
	}
	return leaveOnly(ctx, admin, role, "")
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

// lockDown sets the ownership and privileges inside dbName.
func lockDown(ctx context.Context, db *pgx.Conn, dbName string, roles []RoleSpec) error {
	stmts := []string{
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"REVOKE ALL ON DATABASE " + ident(dbName) + " FROM PUBLIC",
	}
	for _, r := range roles {
		s := ident(r.Schema)
		stmts = append(stmts,
			"CREATE SCHEMA IF NOT EXISTS "+s+" AUTHORIZATION "+ident(r.Owner),
			"ALTER SCHEMA "+s+" OWNER TO "+ident(r.Owner),
			"REVOKE ALL ON SCHEMA "+s+" FROM PUBLIC",
			"REVOKE ALL ON ALL TABLES IN SCHEMA "+s+" FROM PUBLIC",
			"GRANT CONNECT ON DATABASE "+ident(dbName)+" TO "+ident(r.Owner)+", "+ident(r.Role),
			"REVOKE ALL ON SCHEMA "+s+" FROM "+ident(r.Role),
			"GRANT USAGE ON SCHEMA "+s+" TO "+ident(r.Role),
		)
	}
	for _, a := range roles {
		for _, b := range roles {
			if a == b {
				continue
			}
			for _, role := range []string{ident(a.Owner), ident(a.Role)} {
				stmts = append(stmts,
					"REVOKE ALL ON SCHEMA "+ident(b.Schema)+" FROM "+role,
					"REVOKE ALL ON ALL TABLES IN SCHEMA "+ident(b.Schema)+" FROM "+role,
					"REVOKE ALL ON ALL SEQUENCES IN SCHEMA "+ident(b.Schema)+" FROM "+role,
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
	for _, r := range roles {
		if err := ownAll(ctx, db, r.Schema, r.Owner); err != nil {
			return fmt.Errorf("in %s: %w", dbName, err)
		}
	}
	return nil
}

// ownAll gives owner every table, view, sequence and function in schema
// that someone else owns. Sequences that belong to a column follow their
// table, as indexes and triggers do.
func ownAll(ctx context.Context, db *pgx.Conn, schema, owner string) error {
	rows, err := db.Query(ctx, `WITH n AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
			o AS (SELECT oid FROM pg_roles WHERE rolname = $2)
		SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, $2)
		FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM n) AND c.relowner <> (SELECT oid FROM o)
			AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
				AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
		UNION ALL
		SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $2)
		FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM n) AND p.proowner <> (SELECT oid FROM o)`, schema, owner)
	if err != nil {
		return fmt.Errorf("list what %s does not own in %s: %w", owner, schema, err)
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list what %s does not own in %s: %w", owner, schema, err)
	}
	return execAll(ctx, db, "give "+owner+" what is in "+schema, stmts)
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
