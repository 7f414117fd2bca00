package postgres_test

import (
	"context"
	"testing"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// readerFixture is a provisioned database where service B owns a table the
// reader may read (beta.audit_events) beside one it may not (beta.secrets),
// and service A has no readable table yet.
func readerFixture(t *testing.T) (fixture, postgres.ReaderSpec) {
	t.Helper()
	s := suffix()
	r := postgres.ReaderSpec{
		Role: "reader_" + s, Group: "readers_" + s, Password: "reader-password-" + s,
		Tables: []string{"beta.audit_events", "alpha.audit_events"},
	}
	// Registered before the fixture's, so it runs after the database is gone.
	t.Cleanup(func() {
		conn := connect(t, pgtest.AdminURL())
		for _, role := range []string{r.Role, r.Group} {
			if _, err := conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
				t.Errorf("cleanup: drop %s: %v", role, err)
			}
		}
	})
	f := newFixture(t)
	f.provision(t)
	b := connect(t, f.as(t, f.b.Owner))
	exec(t, b, "CREATE TABLE audit_events (v text); INSERT INTO audit_events VALUES ('row')")
	exec(t, b, "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('b-only')")
	return f, r
}

func provisionReader(t *testing.T, f fixture, r postgres.ReaderSpec) {
	t.Helper()
	if err := postgres.ProvisionReader(context.Background(), f.admin, f.db, r); err != nil {
		t.Fatalf("ProvisionReader(%s) error = %v", f.db, err)
	}
}

// assertOnlyReads connects as the reader and checks it may read exactly
// the readable tables and change nothing, even in a session that asks to
// write: the grants refuse, not only the read-only default.
func assertOnlyReads(t *testing.T, f fixture, r postgres.ReaderSpec, readable ...string) {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, f.as(t, r.Role))
	for _, table := range readable {
		if _, err := conn.Exec(ctx, "SELECT * FROM "+table); err != nil {
			t.Errorf("as %s: SELECT %s: %v", r.Role, table, err)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE t (v text)"); sqlState(err) != "25006" {
		t.Errorf("as %s: CREATE TEMP TABLE error = %v, want refused by the read-only default (25006)", r.Role, err)
	}
	exec(t, conn, "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
	for _, sql := range []string{
		"INSERT INTO beta.audit_events VALUES ('forged')",
		"UPDATE beta.audit_events SET v = 'edited'",
		"DELETE FROM beta.audit_events",
		"TRUNCATE beta.audit_events",
		"ALTER TABLE beta.audit_events DISABLE TRIGGER USER",
		"SELECT * FROM beta.secrets",
		"SELECT * FROM alpha.notes",
		"CREATE TABLE beta.planted (v text)",
		"CREATE TABLE public.planted (v text)",
		"SET ROLE " + f.b.Role,
		"CREATE ROLE intruder",
	} {
		_, err := conn.Exec(ctx, sql)
		if code := sqlState(err); code != "42501" {
			t.Errorf("as %s: %s: error %v (SQLSTATE %q), want permission denied (42501)", r.Role, sql, err, code)
		}
	}
}

func TestProvisionReaderOnlyReads(t *testing.T) {
	t.Parallel()
	f, r := readerFixture(t)
	a := connect(t, f.as(t, f.a.Owner))
	exec(t, a, "CREATE TABLE notes (v text)")
	provisionReader(t, f, r)
	assertOnlyReads(t, f, r, "beta.audit_events")

	// alpha.audit_events did not exist: no grant yet. Once it does, the next
	// provisioning grants it, as for a migration that ran before the group
	// existed.
	conn := connect(t, f.as(t, r.Role))
	if _, err := conn.Exec(context.Background(), "SELECT * FROM alpha.audit_events"); sqlState(err) != "42501" {
		t.Errorf("SELECT alpha.audit_events before it is granted: error %v, want refused", err)
	}
	exec(t, a, "CREATE TABLE audit_events (v text)")
	provisionReader(t, f, r)
	assertOnlyReads(t, f, r, "beta.audit_events", "alpha.audit_events")
}

func TestProvisionReaderRepairs(t *testing.T) {
	t.Parallel()
	f, r := readerFixture(t)
	provisionReader(t, f, r)
	db := connect(t, urlAs(t, f.admin, "postgres", f.db))
	exec(t, db, "GRANT INSERT, UPDATE, DELETE, TRUNCATE ON beta.audit_events TO "+r.Group)
	exec(t, db, "GRANT SELECT ON beta.secrets TO "+r.Group)
	exec(t, db, "GRANT CREATE ON SCHEMA beta TO "+r.Group)
	exec(t, db, "GRANT "+f.b.Role+" TO "+r.Role)
	exec(t, db, "ALTER ROLE "+r.Role+" CREATEROLE")
	provisionReader(t, f, r)
	assertOnlyReads(t, f, r, "beta.audit_events")
}

func TestProvisionReaderRefuses(t *testing.T) {
	t.Parallel()
	good := postgres.ReaderSpec{Role: "reader_" + suffix(), Group: "readers", Password: "sixteen-chars-ok", Tables: []string{"auth.audit_events"}}
	with := func(change func(*postgres.ReaderSpec)) postgres.ReaderSpec {
		r := good
		change(&r)
		return r
	}
	for name, r := range map[string]postgres.ReaderSpec{
		"role injection":   with(func(r *postgres.ReaderSpec) { r.Role = `x" SUPERUSER --` }),
		"group reserved":   with(func(r *postgres.ReaderSpec) { r.Group = "pg_read_all_data" }),
		"group is role":    with(func(r *postgres.ReaderSpec) { r.Group = r.Role }),
		"short password":   with(func(r *postgres.ReaderSpec) { r.Password = "short" }),
		"unqualified":      with(func(r *postgres.ReaderSpec) { r.Tables = []string{"audit_events"} }),
		"table injection":  with(func(r *postgres.ReaderSpec) { r.Tables = []string{"auth.x; DROP TABLE y"} }),
		"public schema":    with(func(r *postgres.ReaderSpec) { r.Tables = []string{"public.audit_events"} }),
		"catalog is no db": with(func(r *postgres.ReaderSpec) { r.Tables = []string{"pg_catalog.pg_authid"} }),
	} {
		// Unreachable admin URL: validation must refuse before connecting.
		if err := postgres.ProvisionReader(context.Background(), "postgres://nobody@127.0.0.1:1/x", "ok_db", r); errs.KindOf(err) != errs.Invalid {
			t.Errorf("%s: ProvisionReader(%+v) error = %v, want invalid", name, r, err)
		}
	}
	f := newFixture(t)
	err := postgres.ProvisionReader(context.Background(), f.admin, f.db, with(func(r *postgres.ReaderSpec) { r.Role = "postgres" }))
	if errs.KindOf(err) != errs.Internal {
		t.Errorf("ProvisionReader(role postgres) error = %v, want refused", err)
	}
}
