package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// ReaderSpec names a login role that may only read a few tables of the
// services' schemas, such as an audit verifier: it holds no privilege of
// its own, only membership of Group, which holds the grants. The login
// belongs to one database; Group may serve the readers of several (it
// cannot log in, and what it may read it is granted database by database,
// so each login still reaches only the database it may connect to).
type ReaderSpec struct {
	Role     string   // login role, e.g. "bank_audit"
	Password string   // 16 to 1024 printable ASCII characters
	Group    string   // NOLOGIN role the grants go to, e.g. audit.ReaderRole
	Tables   []string // "schema.table" that Group may SELECT
}

// ProvisionReader prepares r in database dbName, which Provision has
// prepared. It connects to adminURL as a superuser and, idempotently:
//
//   - creates or updates Group as a NOLOGIN role with no special attributes;
//   - creates or updates Role as a LOGIN role with no special attributes and
//     the given password, a member of Group and of no other role, whose
//     sessions in dbName are read-only unless they say otherwise, marked as
//     a login of dbName (Provision explains the mark);
//   - lets Role connect to dbName and, for each of Tables that exists, takes
//     from Group every privilege on that table's schema but USAGE and on
//     its tables but SELECT on that one table.
//
// A table that does not exist yet gets no grant: the migration that creates
// it must grant Group itself (audit's migrations do, for audit.ReaderRole).
// Like Provision, it refuses a superuser role or the role it connects as,
// and takes turns with other provisioners. Errors are Invalid for bad names
// or passwords and Internal otherwise.
func ProvisionReader(ctx context.Context, adminURL, dbName string, r ReaderSpec) error {
	tables, err := checkReader(dbName, r)
	if err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return errs.Wrap(errs.Internal, "database misconfigured", err)
	}
	if err := provisionReader(ctx, cfg, dbName, r, tables); err != nil {
		return errs.Wrap(errs.Internal, "provisioning failed", err)
	}
	return nil
}

// table is a schema-qualified table name, split.
type table struct{ schema, name string }

func (t table) String() string { return ident(t.schema) + "." + ident(t.name) }

func checkReader(dbName string, r ReaderSpec) ([]table, error) {
	if err := checkName("database", dbName); err != nil {
		return nil, err
	}
	if err := checkName("role", r.Role); err != nil {
		return nil, err
	}
	if err := checkName("group", r.Group); err != nil {
		return nil, err
	}
	if r.Role == r.Group {
		return nil, errs.InvalidField("group", "must not be the login role")
	}
	if !goodPassword(r.Password) {
		return nil, errs.InvalidField("password", "must be 16 to 1024 printable ASCII characters")
	}
	var out []table
	for _, t := range r.Tables {
		schema, name, ok := strings.Cut(t, ".")
		if !ok || checkName("schema", schema) != nil || checkName("table", name) != nil {
			return nil, errs.InvalidField("tables", "each must be schema.table, both plain lower-case names")
		}
		out = append(out, table{schema, name})
	}
	return out, nil
}

func provisionReader(ctx context.Context, cfg *pgx.ConnConfig, dbName string, r ReaderSpec, tables []table) error {
	admin, err := adminSession(ctx, cfg)
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := createUnprivileged(ctx, admin, r.Group); err != nil {
		return err
	}
	if err := claimRole(ctx, admin, dbName, r.Role); err != nil {
		return err
	}
	verifier, err := newScramVerifier(r.Password)
	if err != nil {
		return err
	}
	err = execAll(ctx, admin, "configure role "+r.Role, []string{
		"ALTER ROLE " + ident(r.Group) + " WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
		"ALTER ROLE " + ident(r.Role) + " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + quoteLiteral(verifier),
		"ALTER ROLE " + ident(r.Role) + " IN DATABASE " + ident(dbName) + " SET default_transaction_read_only TO on",
		"GRANT " + ident(r.Group) + " TO " + ident(r.Role),
	})
	if err != nil {
		return err
	}
	if err := leaveOnly(ctx, admin, r.Role, r.Group); err != nil {
		return err
	}
	db, err := connectTo(ctx, cfg, dbName)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	var existing []table
	for _, t := range tables {
		var exists bool
		if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.String()).Scan(&exists); err != nil {
			return fmt.Errorf("look for table %s: %w", t, err)
		}
		if exists {
			existing = append(existing, t)
		}
	}
	stmts := []string{"GRANT CONNECT ON DATABASE " + ident(dbName) + " TO " + ident(r.Role)}
	for _, t := range existing { // take away first, for every schema, then grant
		stmts = append(stmts,
			"REVOKE ALL ON SCHEMA "+ident(t.schema)+" FROM "+ident(r.Group),
			"REVOKE ALL ON ALL TABLES IN SCHEMA "+ident(t.schema)+" FROM "+ident(r.Group),
			"REVOKE ALL ON ALL SEQUENCES IN SCHEMA "+ident(t.schema)+" FROM "+ident(r.Group),
		)
	}
	for _, t := range existing {
		stmts = append(stmts,
			"GRANT USAGE ON SCHEMA "+ident(t.schema)+" TO "+ident(r.Group),
			"GRANT SELECT ON "+t.String()+" TO "+ident(r.Group),
		)
	}
	return execAll(ctx, db, "grant "+r.Group+" in "+dbName, stmts)
}
