package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// fixture is a database name and two service roles that do not exist yet;
// the database and roles are dropped when the test ends.
type fixture struct {
	admin string
	db    string
	a, b  postgres.RoleSpec
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	s := suffix()
	f := fixture{
		admin: pgtest.AdminURL(),
		db:    "prov_" + s,
		a:     postgres.RoleSpec{Role: "svc_a_" + s, Schema: "alpha", Password: "alpha-password-" + s},
		b:     postgres.RoleSpec{Role: "svc_b_" + s, Schema: "beta", Password: "beta-password-" + s},
	}
	t.Cleanup(func() {
		conn := connect(t, f.admin)
		for _, sql := range []string{
			"DROP DATABASE IF EXISTS " + f.db + " WITH (FORCE)",
			"DROP ROLE IF EXISTS " + f.a.Role,
			"DROP ROLE IF EXISTS " + f.b.Role,
		} {
			if _, err := conn.Exec(context.Background(), sql); err != nil {
				t.Errorf("cleanup %s: %v", sql, err)
			}
		}
	})
	return f
}

func (f fixture) provision(t *testing.T) {
	t.Helper()
	if err := postgres.Provision(context.Background(), f.admin, f.db, []postgres.RoleSpec{f.a, f.b}); err != nil {
		t.Fatalf("Provision(%s) error = %v", f.db, err)
	}
}

// as connects to the fixture's database as role.
func (f fixture) as(t *testing.T, role string) string { return urlAs(t, f.admin, role, f.db) }

// attacks are what a compromised service A might try against B.
var attacks = []struct{ name, sql string }{
	{"read other schema", "SELECT * FROM beta.secrets"},
	{"write other schema", "INSERT INTO beta.secrets VALUES ('stolen')"},
	{"delete in other schema", "DELETE FROM beta.secrets"},
	{"create in other schema", "CREATE TABLE beta.planted (x int)"},
	{"create in public", "CREATE TABLE public.planted (x int)"},
	{"take over other schema", "ALTER SCHEMA beta OWNER TO CURRENT_USER"},
	{"drop other schema", "DROP SCHEMA beta CASCADE"},
	{"become other role", "SET ROLE %B"},
	{"create role", "CREATE ROLE intruder LOGIN SUPERUSER"},
	{"create database", "CREATE DATABASE intruder"},
}

// assertIsolated runs every attack as role A and expects permission denied.
func assertIsolated(t *testing.T, f fixture) {
	t.Helper()
	a := connect(t, f.as(t, f.a.Role))
	for _, at := range attacks {
		sql := strings.ReplaceAll(at.sql, "%B", f.b.Role)
		_, err := a.Exec(context.Background(), sql)
		if code := sqlState(err); code != "42501" {
			t.Errorf("as %s, %s (%s): error %v (SQLSTATE %q), want permission denied (42501)", f.a.Role, at.name, sql, err, code)
		}
	}
}

func TestProvisionIsolatesServices(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.provision(t)
	ctx := context.Background()

	// B uses its schema through its search_path, without qualifying names.
	b := connect(t, f.as(t, f.b.Role))
	exec(t, b, "CREATE TABLE secrets (v text)")
	exec(t, b, "INSERT INTO secrets VALUES ('b-only')")
	// A can migrate its own schema as itself, without CREATE on the database.
	poolA := openPool(t, f.as(t, f.a.Role))
	set := fstest.MapFS{"0001.sql": {Data: []byte("CREATE TABLE notes (v text); INSERT INTO notes VALUES ('a');")}}
	if err := postgres.Migrate(ctx, poolA, f.a.Schema, set); err != nil {
		t.Fatalf("Migrate as %s error = %v", f.a.Role, err)
	}
	if n := count(t, poolA, "notes"); n != 1 {
		t.Errorf("as %s: notes has %d rows, want 1", f.a.Role, n)
	}
	assertIsolated(t, f)

	// A role that is not a service may not even connect.
	outsider := "outsider_" + suffix()
	admin := connect(t, f.admin)
	exec(t, admin, "CREATE ROLE "+outsider+" LOGIN")
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+outsider) })
	_, err := connectErr(f.as(t, outsider))
	if sqlState(err) != "42501" {
		t.Errorf("outsider connect error = %v, want permission denied", err)
	}
}

func TestProvisionIsIdempotentAndRepairs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.provision(t)
	b := connect(t, f.as(t, f.b.Role))
	exec(t, b, "CREATE TABLE secrets (v text)")
	exec(t, b, "INSERT INTO secrets VALUES ('b-only')")

	// Someone loosens the rules by hand; provisioning again must undo it.
	db := connect(t, urlAs(t, f.admin, "postgres", f.db))
	exec(t, db, "GRANT USAGE, CREATE ON SCHEMA beta TO "+f.a.Role)
	exec(t, db, "GRANT SELECT, INSERT, DELETE ON beta.secrets TO "+f.a.Role)
	exec(t, db, "GRANT USAGE ON SCHEMA beta TO PUBLIC")
	exec(t, db, "GRANT CREATE ON SCHEMA public TO PUBLIC")
	exec(t, db, "GRANT "+f.b.Role+" TO "+f.a.Role)
	f.provision(t)
	assertIsolated(t, f)

	if n := count(t, openPool(t, f.as(t, f.b.Role)), "secrets"); n != 1 {
		t.Errorf("after second Provision: %d rows in beta.secrets, want the 1 kept", n)
	}
}

func TestProvisionConcurrentCallers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			errc <- postgres.Provision(context.Background(), f.admin, f.db, []postgres.RoleSpec{f.a, f.b})
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Errorf("concurrent Provision error = %v", err)
		}
	}
	assertIsolated(t, f)
}

func TestProvisionRefusesPrivilegedRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := connect(t, f.admin)
	super := "super_" + suffix()
	exec(t, admin, "CREATE ROLE "+super+" SUPERUSER")
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+super) })

	for _, role := range []string{super, "postgres"} {
		spec := postgres.RoleSpec{Role: role, Schema: "x", Password: "long-enough-password"}
		err := postgres.Provision(context.Background(), f.admin, f.db, []postgres.RoleSpec{spec})
		if errs.KindOf(err) != errs.Internal {
			t.Errorf("Provision(role %s) error = %v, want refused", role, err)
		}
		var stillSuper bool
		if err := admin.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = $1", role).Scan(&stillSuper); err != nil || !stillSuper {
			t.Errorf("after Provision: %s superuser = %v, %v; want unchanged", role, stillSuper, err)
		}
	}
}

func TestProvisionRejectsBadInput(t *testing.T) {
	t.Parallel()
	good := postgres.RoleSpec{Role: "svc_" + suffix(), Schema: "s", Password: "sixteen-chars-ok"}
	with := func(change func(*postgres.RoleSpec)) []postgres.RoleSpec {
		r := good
		change(&r)
		return []postgres.RoleSpec{r}
	}
	tests := []struct {
		name  string
		db    string
		roles []postgres.RoleSpec
	}{
		{"db injection", "x; DROP DATABASE postgres", []postgres.RoleSpec{good}},
		{"system db", "postgres", []postgres.RoleSpec{good}},
		{"template db", "template1", []postgres.RoleSpec{good}},
		{"role injection", "ok_db", with(func(r *postgres.RoleSpec) { r.Role = `x" SUPERUSER --` })},
		{"role reserved", "ok_db", with(func(r *postgres.RoleSpec) { r.Role = "pg_read_all_data" })},
		{"schema public", "ok_db", with(func(r *postgres.RoleSpec) { r.Schema = "public" })},
		{"schema upper", "ok_db", with(func(r *postgres.RoleSpec) { r.Schema = "Beta" })},
		{"short password", "ok_db", with(func(r *postgres.RoleSpec) { r.Password = "short" })},
		{"NUL in password", "ok_db", with(func(r *postgres.RoleSpec) { r.Password = "sixteen-chars-o'\x00" })},
		{"non-ASCII password", "ok_db", with(func(r *postgres.RoleSpec) { r.Password = "sixteen-chars-ök" })},
		{"duplicate role", "ok_db", []postgres.RoleSpec{good, {Role: good.Role, Schema: "t", Password: good.Password}}},
		{"shared schema", "ok_db", []postgres.RoleSpec{good, {Role: "other", Schema: good.Schema, Password: good.Password}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The admin URL is unreachable: validation must refuse before connecting.
			err := postgres.Provision(context.Background(), "postgres://nobody@127.0.0.1:1/x", tt.db, tt.roles)
			if errs.KindOf(err) != errs.Invalid {
				t.Errorf("Provision(%q, %+v) error = %v, want invalid", tt.db, tt.roles, err)
			}
		})
	}
}

func TestProvisionConnectionFailures(t *testing.T) {
	t.Parallel()
	spec := []postgres.RoleSpec{{Role: "svc_" + suffix(), Schema: "s", Password: "sixteen-chars-ok"}}
	for _, admin := range []string{"postgres://nobody@127.0.0.1:1/x?connect_timeout=1", "postgres://x@127.0.0.1/x?sslmode=bogus"} {
		if err := postgres.Provision(context.Background(), admin, "ok_db", spec); errs.KindOf(err) != errs.Internal {
			t.Errorf("Provision(admin %q) error = %v, want internal", admin, err)
		}
	}
}
