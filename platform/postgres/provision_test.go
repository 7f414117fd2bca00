package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// fixture is a database name and two services' roles that do not exist
// yet; Deprovision drops the database and the roles when the test ends.
type fixture struct {
	admin string
	db    string
	a, b  postgres.RoleSpec
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	s := suffix()
	spec := func(name, schema string) postgres.RoleSpec {
		return postgres.RoleSpec{Schema: schema,
			Owner: "own_" + name + "_" + s, OwnerPassword: "owner-password-" + s,
			Role: "svc_" + name + "_" + s, Password: schema + "-password-" + s}
	}
	f := fixture{admin: pgtest.AdminURL(), db: "prov_" + s, a: spec("a", "alpha"), b: spec("b", "beta")}
	t.Cleanup(func() {
		if err := postgres.Deprovision(context.Background(), f.admin, f.db); err != nil {
			t.Errorf("Deprovision(%s) = %v", f.db, err)
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

// attacks are what a compromised service A (its runtime role or its owner)
// might try against B.
var attacks = []struct{ name, sql string }{
	{"read other schema", "SELECT * FROM beta.secrets"},
	{"write other schema", "INSERT INTO beta.secrets VALUES ('stolen')"},
	{"delete in other schema", "DELETE FROM beta.secrets"},
	{"create in other schema", "CREATE TABLE beta.planted (x int)"},
	{"create in public", "CREATE TABLE public.planted (x int)"},
	{"take over other schema", "ALTER SCHEMA beta OWNER TO CURRENT_USER"},
	{"drop other schema", "DROP SCHEMA beta CASCADE"},
	{"become other role", "SET ROLE %B"},
	{"become other owner", "SET ROLE %BO"},
	{"create role", "CREATE ROLE intruder LOGIN SUPERUSER"},
	{"create database", "CREATE DATABASE intruder"},
}

// assertIsolated runs every attack as A's runtime role and as A's owner and
// expects permission denied.
func assertIsolated(t *testing.T, f fixture) {
	t.Helper()
	for _, role := range []string{f.a.Role, f.a.Owner} {
		a := connect(t, f.as(t, role))
		for _, at := range attacks {
			sql := strings.NewReplacer("%BO", f.b.Owner, "%B", f.b.Role).Replace(at.sql)
			_, err := a.Exec(context.Background(), sql)
			if code := sqlState(err); code != "42501" {
				t.Errorf("as %s, %s (%s): error %v (SQLSTATE %q), want permission denied (42501)", role, at.name, sql, err, code)
			}
		}
	}
}

// notes is a service's migration set and the grants it gives its runtime role.
var (
	notes       = fstest.MapFS{"0001.sql": {Data: []byte("CREATE TABLE notes (v text); INSERT INTO notes VALUES ('a');")}}
	notesGrants = postgres.Grants{"notes": "SELECT, INSERT"}
)

func TestProvisionIsolatesServices(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.provision(t)
	ctx := context.Background()

	// B's owner uses its schema through its search_path, without qualifying names.
	b := connect(t, f.as(t, f.b.Owner))
	exec(t, b, "CREATE TABLE secrets (v text)")
	exec(t, b, "INSERT INTO secrets VALUES ('b-only')")
	// A's owner can migrate its own schema, without CREATE on the database,
	// and A's runtime role then uses what it was granted.
	if err := postgres.Migrate(ctx, openPool(t, f.as(t, f.a.Owner)), f.a.Schema, notesGrants, notes); err != nil {
		t.Fatalf("Migrate as %s error = %v", f.a.Owner, err)
	}
	if n := count(t, openPool(t, f.as(t, f.a.Role)), "notes"); n != 1 {
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

// TestRuntimeRoleOwnsNothing: the runtime role uses its tables as granted
// and can change nothing about them: not their definition, not their
// triggers, not who owns them.
func TestRuntimeRoleOwnsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.provision(t)
	ctx := context.Background()
	set := fstest.MapFS{"0001.sql": {Data: []byte(`CREATE TABLE notes (v text);
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
		CREATE TRIGGER notes_append_only BEFORE UPDATE OR DELETE ON notes FOR EACH ROW EXECUTE FUNCTION refuse();`)}}
	if err := postgres.Migrate(ctx, openPool(t, f.as(t, f.a.Owner)), f.a.Schema, notesGrants, set); err != nil {
		t.Fatalf("Migrate as %s error = %v", f.a.Owner, err)
	}
	rt := connect(t, f.as(t, f.a.Role))
	exec(t, rt, "INSERT INTO notes VALUES ('kept')")
	for _, sql := range []string{
		"ALTER TABLE notes DISABLE TRIGGER USER",
		"DROP TRIGGER notes_append_only ON notes",
		"CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
		"ALTER TABLE notes ADD COLUMN x int",
		"ALTER TABLE notes OWNER TO CURRENT_USER",
		"DROP TABLE notes",
		"TRUNCATE notes",
		"UPDATE notes SET v = 'changed'",
		"DELETE FROM notes",
		"DELETE FROM schema_migrations",
		"CREATE TABLE planted (x int)",
		"SET ROLE " + f.a.Owner,
		"SET session_replication_role = replica",
	} {
		if _, err := rt.Exec(ctx, sql); sqlState(err) != "42501" {
			t.Errorf("as the runtime role %s, %s: error %v, want permission denied (42501)", f.a.Role, sql, err)
		}
	}
	var owned int
	err := rt.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid) + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)
		+ (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid) FROM pg_roles r WHERE rolname = current_user`).Scan(&owned)
	if err != nil || owned != 0 {
		t.Errorf("objects the runtime role owns = %d, %v; want 0", owned, err)
	}
}

// TestProvisionTakesOverAnOlderLayout: databases provisioned by older builds
// have the runtime role own its schema and tables. Provisioning again hands
// them to the owner, and migrating grants the runtime role back only its
// share.
func TestProvisionTakesOverAnOlderLayout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := connect(t, f.admin)
	exec(t, admin, "CREATE DATABASE "+f.db)
	exec(t, admin, "CREATE ROLE "+f.a.Role+" LOGIN")
	db := connect(t, urlAs(t, f.admin, "postgres", f.db))
	exec(t, db, "CREATE SCHEMA alpha AUTHORIZATION "+f.a.Role)
	exec(t, db, "SET ROLE "+f.a.Role+"; CREATE TABLE alpha.notes (id bigint GENERATED ALWAYS AS IDENTITY, v text); CREATE FUNCTION alpha.f() RETURNS int LANGUAGE sql AS 'SELECT 1'; RESET ROLE")
	f.provision(t)
	if err := postgres.Migrate(context.Background(), openPool(t, f.as(t, f.a.Owner)), f.a.Schema, notesGrants); err != nil {
		t.Fatalf("Migrate after the takeover = %v", err)
	}
	var owners []string
	rows, err := db.Query(context.Background(), `SELECT DISTINCT r.rolname FROM (
			SELECT relowner AS o FROM pg_class WHERE relnamespace = 'alpha'::regnamespace
			UNION ALL SELECT proowner FROM pg_proc WHERE pronamespace = 'alpha'::regnamespace
			UNION ALL SELECT nspowner FROM pg_namespace WHERE nspname = 'alpha') x JOIN pg_roles r ON r.oid = x.o`)
	if err == nil {
		owners, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(owners) != 1 || owners[0] != f.a.Owner {
		t.Errorf("owners of alpha's objects = %v, %v; want only %s", owners, err, f.a.Owner)
	}
	rt := connect(t, f.as(t, f.a.Role))
	exec(t, rt, "INSERT INTO notes (v) VALUES ('still works')")
	if _, err := rt.Exec(context.Background(), "DROP TABLE notes"); sqlState(err) != "42501" {
		t.Errorf("as the former owner, DROP TABLE notes: error %v, want permission denied", err)
	}
}

// TestProvisionNeverTouchesAnotherDatabasesRoles: roles are the server's,
// databases are stacks. Provisioning one database with roles another
// database's provisioning marked as its own is refused before anything
// changes, and dropping a stack drops its roles only.
func TestProvisionNeverTouchesAnotherDatabasesRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first, second := newFixture(t), newFixture(t)
	first.provision(t)
	admin := connect(t, first.admin)
	password := func(role string) string {
		var v string
		if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := password(first.a.Role)
	stolen := []postgres.RoleSpec{{Schema: "alpha", Owner: second.a.Owner, OwnerPassword: second.a.OwnerPassword,
		Role: first.a.Role, Password: "another-password-entirely"}}
	if err := postgres.Provision(ctx, second.admin, second.db, stolen); errs.KindOf(err) != errs.Internal {
		t.Errorf("Provision(%s) with a role of %s error = %v, want refused", second.db, first.db, err)
	}
	if password(first.a.Role) != before {
		t.Errorf("provisioning %s changed the password of %s, a login of %s", second.db, first.a.Role, first.db)
	}
	second.provision(t)
	var can bool
	if err := admin.QueryRow(ctx, "SELECT has_database_privilege($1, $2, 'CONNECT')", first.a.Role, second.db).Scan(&can); err != nil || can {
		t.Errorf("%s may connect to %s: %v, %v; want not", first.a.Role, second.db, can, err)
	}
	if err := postgres.Deprovision(ctx, second.admin, second.db); err != nil {
		t.Fatalf("Deprovision(%s) = %v", second.db, err)
	}
	var left []string
	rows, err := admin.Query(ctx, "SELECT rolname FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1",
		[]string{first.a.Owner, first.a.Role, first.b.Owner, first.b.Role, second.a.Owner, second.a.Role, second.b.Owner, second.b.Role})
	if err == nil {
		left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	want := []string{first.a.Owner, first.b.Owner, first.a.Role, first.b.Role}
	slices.Sort(want)
	if err != nil || !slices.Equal(left, want) {
		t.Errorf("roles left after Deprovision(%s) = %v, %v; want %s's only: %v", second.db, left, err, first.db, want)
	}
}

func TestProvisionIsIdempotentAndRepairs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.provision(t)
	b := connect(t, f.as(t, f.b.Owner))
	exec(t, b, "CREATE TABLE secrets (v text)")
	exec(t, b, "INSERT INTO secrets VALUES ('b-only')")

	// Someone loosens the rules by hand; provisioning again must undo it.
	db := connect(t, urlAs(t, f.admin, "postgres", f.db))
	exec(t, db, "GRANT USAGE, CREATE ON SCHEMA beta TO "+f.a.Role)
	exec(t, db, "GRANT SELECT, INSERT, DELETE ON beta.secrets TO "+f.a.Role+", "+f.a.Owner)
	exec(t, db, "GRANT USAGE ON SCHEMA beta TO PUBLIC")
	exec(t, db, "GRANT CREATE ON SCHEMA public TO PUBLIC")
	exec(t, db, "GRANT "+f.b.Role+" TO "+f.a.Role)
	exec(t, db, "GRANT "+f.b.Owner+" TO "+f.a.Owner)
	exec(t, db, "GRANT "+f.a.Owner+" TO "+f.a.Role)
	exec(t, db, "GRANT CREATE ON SCHEMA alpha TO "+f.a.Role)
	exec(t, db, "ALTER TABLE beta.secrets OWNER TO "+f.b.Role)
	f.provision(t)
	assertIsolated(t, f)
	if _, err := connect(t, f.as(t, f.a.Role)).Exec(context.Background(), "CREATE TABLE alpha.planted (x int)"); sqlState(err) != "42501" {
		t.Errorf("as the runtime role after repair, CREATE TABLE in its own schema: error %v, want permission denied", err)
	}

	if n := count(t, openPool(t, f.as(t, f.b.Owner)), "secrets"); n != 1 {
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
		spec := postgres.RoleSpec{Schema: "x", Owner: "own_" + suffix(), OwnerPassword: "long-enough-password",
			Role: role, Password: "long-enough-password"}
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
	good := postgres.RoleSpec{Schema: "s", Owner: "own_" + suffix(), OwnerPassword: "sixteen-chars-ok",
		Role: "svc_" + suffix(), Password: "sixteen-chars-ok"}
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
		{"owner injection", "ok_db", with(func(r *postgres.RoleSpec) { r.Owner = `x" SUPERUSER --` })},
		{"no owner", "ok_db", with(func(r *postgres.RoleSpec) { r.Owner = "" })},
		{"role reserved", "ok_db", with(func(r *postgres.RoleSpec) { r.Role = "pg_read_all_data" })},
		{"owner is the runtime role", "ok_db", with(func(r *postgres.RoleSpec) { r.Owner = r.Role })},
		{"schema public", "ok_db", with(func(r *postgres.RoleSpec) { r.Schema = "public" })},
		{"schema upper", "ok_db", with(func(r *postgres.RoleSpec) { r.Schema = "Beta" })},
		{"short password", "ok_db", with(func(r *postgres.RoleSpec) { r.Password = "short" })},
		{"short owner password", "ok_db", with(func(r *postgres.RoleSpec) { r.OwnerPassword = "short" })},
		{"NUL in password", "ok_db", with(func(r *postgres.RoleSpec) { r.Password = "sixteen-chars-o'\x00" })},
		{"non-ASCII password", "ok_db", with(func(r *postgres.RoleSpec) { r.Password = "sixteen-chars-ök" })},
		{"duplicate role", "ok_db", []postgres.RoleSpec{good, {Schema: "t", Owner: "other", OwnerPassword: good.Password, Role: good.Role, Password: good.Password}}},
		{"one role owns two schemas", "ok_db", []postgres.RoleSpec{good, {Schema: "t", Owner: good.Owner, OwnerPassword: good.Password, Role: "other", Password: good.Password}}},
		{"shared schema", "ok_db", []postgres.RoleSpec{good, {Schema: good.Schema, Owner: "o2", OwnerPassword: good.Password, Role: "other", Password: good.Password}}},
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
	spec := []postgres.RoleSpec{{Schema: "s", Owner: "own_" + suffix(), OwnerPassword: "sixteen-chars-ok", Role: "svc_" + suffix(), Password: "sixteen-chars-ok"}}
	for _, admin := range []string{"postgres://nobody@127.0.0.1:1/x?connect_timeout=1", "postgres://x@127.0.0.1/x?sslmode=bogus"} {
		if err := postgres.Provision(context.Background(), admin, "ok_db", spec); errs.KindOf(err) != errs.Internal {
			t.Errorf("Provision(admin %q) error = %v, want internal", admin, err)
		}
	}
}
