package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// claim is the comment that marks a role as a login of one database. Roles
// belong to the whole server while a stack lives in one database, so the
// mark is what keeps one stack's provisioning off another's roles.
func claim(dbName string) string { return "Bastion login of database " + dbName }

// claimable returns an error unless role may become, or is, a login of
// dbName: it must not be a superuser or the admin itself, and must carry no
// comment but dbName's mark. A role without a comment, as older builds left
// them, may be taken over. It changes nothing.
func claimable(ctx context.Context, admin *pgx.Conn, dbName, role string) error {
	if role == admin.Config().User {
		return fmt.Errorf("role %s is the admin role; refusing to change it", role)
	}
	var super bool
	var comment string
	err := admin.QueryRow(ctx, `SELECT rolsuper, coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = $1`,
		role).Scan(&super, &comment)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("look for role %s: %w", role, err)
	case super:
		return fmt.Errorf("role %s is a superuser; refusing to change it", role)
	case comment != "" && comment != claim(dbName):
		return fmt.Errorf("role %s is not a login of database %s (its comment says %q); refusing to change it", role, dbName, comment)
	}
	return nil
}

// claimRole creates role if it does not exist and marks it as dbName's,
// refusing what claimable refuses.
func claimRole(ctx context.Context, admin *pgx.Conn, dbName, role string) error {
	if err := claimable(ctx, admin, dbName, role); err != nil {
		return err
	}
	if err := createUnprivileged(ctx, admin, role); err != nil {
		return err
	}
	return execAll(ctx, admin, "mark role "+role, []string{"COMMENT ON ROLE " + ident(role) + " IS " + quoteLiteral(claim(dbName))})
}

// createUnprivileged creates role if it does not exist, refusing a role
// that exists as a superuser or is the admin itself.
func createUnprivileged(ctx context.Context, admin *pgx.Conn, role string) error {
	if role == admin.Config().User {
		return fmt.Errorf("role %s is the admin role; refusing to change it", role)
	}
	var super bool
	err := admin.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", role).Scan(&super)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := admin.Exec(ctx, "CREATE ROLE "+ident(role)); err != nil && !isDuplicate(err, codeDuplicateObject) {
			return fmt.Errorf("create role %s: %w", role, err)
		}
	case err != nil:
		return fmt.Errorf("look for role %s: %w", role, err)
	case super:
		return fmt.Errorf("role %s is a superuser; refusing to change it", role)
	}
	return nil
}

// leaveOnly takes role out of every role it is a member of but keep ("" to
// keep none).
func leaveOnly(ctx context.Context, admin *pgx.Conn, role, keep string) error {
	rows, err := admin.Query(ctx, `SELECT g.rolname FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
		WHERE r.rolname = $1 AND g.rolname <> $2`, role, keep)
	if err != nil {
		return fmt.Errorf("list memberships of %s: %w", role, err)
	}
	others, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list memberships of %s: %w", role, err)
	}
	for _, g := range others {
		if _, err := admin.Exec(ctx, "REVOKE "+ident(g)+" FROM "+ident(role)); err != nil {
			return fmt.Errorf("revoke %s from %s: %w", g, role, err)
		}
	}
	return nil
}

// Deprovision drops database dbName, even with sessions still open, and
// then every role Provision or ProvisionReader marked as a login of it:
// what a throw-away stack (a test run, a workshop seat) leaves behind. It
// touches no other database's roles. Errors are Invalid for a bad name and
// Internal otherwise.
func Deprovision(ctx context.Context, adminURL, dbName string) error {
	if err := checkDatabase(dbName); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return errs.Wrap(errs.Internal, "database misconfigured", err)
	}
	admin, err := adminSession(ctx, cfg)
	if err != nil {
		return errs.Wrap(errs.Internal, "deprovisioning failed", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(dbName)+" WITH (FORCE)"); err != nil {
		return errs.Wrap(errs.Internal, "deprovisioning failed", fmt.Errorf("drop database %s: %w", dbName, err))
	}
	rows, err := admin.Query(ctx, `SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') = $1 ORDER BY rolname`, claim(dbName))
	if err != nil {
		return errs.Wrap(errs.Internal, "deprovisioning failed", err)
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return errs.Wrap(errs.Internal, "deprovisioning failed", err)
	}
	for _, r := range roles {
		if _, err := admin.Exec(ctx, "DROP ROLE IF EXISTS "+ident(r)); err != nil {
			return errs.Wrap(errs.Internal, "deprovisioning failed", fmt.Errorf("drop role %s: %w", r, err))
		}
	}
	return nil
}
