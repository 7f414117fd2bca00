package postgres_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// files builds a migration set from name → SQL.
func files(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, sql := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(sql)}
	}
	return fsys
}

// applied lists the versions recorded in schema, in order.
func applied(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT version FROM "+schema+".schema_migrations ORDER BY applied_at, version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// count returns SELECT count(*) FROM table.
func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestMigrateAppliesInOrderOnce(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	schema := "m_" + suffix()
	ctx := context.Background()
	// Unqualified names must land in the service's schema, and "0002"
	// depends on "0001" having run first.
	v1 := files(map[string]string{
		"0001_create.sql": "CREATE TABLE item (id int PRIMARY KEY, note text)",
		"0002_seed.sql":   "INSERT INTO item VALUES (1, 'a'); INSERT INTO item VALUES (2, 'b');",
		"README.md":       "not a migration",
	})
	for run := range 3 {
		if err := postgres.Migrate(ctx, pool, schema, nil, v1); err != nil {
			t.Fatalf("Migrate run %d error = %v", run, err)
		}
	}
	if n := count(t, pool, schema+".item"); n != 2 {
		t.Errorf("after three runs: %d rows, want 2 (each migration once)", n)
	}
	v2 := files(map[string]string{"0003_more.sql": "ALTER TABLE item ADD COLUMN extra int"})
	if err := postgres.Migrate(ctx, pool, schema, nil, v1, v2); err != nil {
		t.Fatalf("Migrate with a new file error = %v", err)
	}
	if diff := cmp.Diff([]string{"0001_create", "0002_seed", "0003_more"}, applied(t, pool, schema)); diff != "" {
		t.Errorf("applied versions (-want +got):\n%s", diff)
	}
	var leaked bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'item')").Scan(&leaked); err != nil || leaked {
		t.Errorf("table item in public: %v, %v; want only in %s", leaked, err, schema)
	}
}

func TestMigrateConcurrentStartersApplyOnce(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	schema := "m_" + suffix()
	// Without the lock, a second starter would fail on CREATE TABLE or
	// insert a second row.
	set := files(map[string]string{
		"0001.sql": "CREATE TABLE once (x int); SELECT pg_sleep(0.1);",
		"0002.sql": "INSERT INTO once VALUES (1)",
	})
	var wg sync.WaitGroup
	errc := make(chan error, 5)
	for range 5 {
		wg.Go(func() { errc <- postgres.Migrate(context.Background(), pool, schema, nil, set) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Errorf("concurrent Migrate error = %v", err)
		}
	}
	if n := count(t, pool, schema+".once"); n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}
	// The lock must be released for the next starter.
	var free bool
	if err := pool.QueryRow(context.Background(), "SELECT pg_try_advisory_lock(hashtextextended('bastion.migrate:' || $1, 0))", schema).Scan(&free); err != nil || !free {
		t.Errorf("migration lock free after Migrate = %v, %v; want true", free, err)
	}
}

func TestMigrateRefusesNewerDatabase(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	schema := "m_" + suffix()
	ctx := context.Background()
	newer := files(map[string]string{"0001.sql": "CREATE TABLE a (x int)", "0002.sql": "CREATE TABLE b (x int)"})
	older := files(map[string]string{"0001.sql": "CREATE TABLE a (x int)", "0003.sql": "CREATE TABLE c (x int)"})
	if err := postgres.Migrate(ctx, pool, schema, nil, newer); err != nil {
		t.Fatal(err)
	}
	err := postgres.Migrate(ctx, pool, schema, nil, older)
	if !errors.Is(err, postgres.ErrUnknownMigration) || errs.KindOf(err) != errs.Internal || !strings.Contains(err.Error(), `"0002"`) {
		t.Fatalf("Migrate(older code) error = %v, want internal ErrUnknownMigration naming 0002", err)
	}
	var exists bool
	pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".c").Scan(&exists)
	if exists {
		t.Errorf("older code applied its migration 0003 to a newer database")
	}
}

func TestMigrateFailureLeavesNoTrace(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	schema := "m_" + suffix()
	ctx := context.Background()
	good := map[string]string{"0001.sql": "CREATE TABLE a (x int)"}
	bad := map[string]string{"0001.sql": good["0001.sql"], "0002.sql": "CREATE TABLE half (x int); SELEC broken;"}
	err := postgres.Migrate(ctx, pool, schema, nil, files(bad))
	if errs.KindOf(err) != errs.Internal || !strings.Contains(err.Error(), "migration 0002") || errs.SafeMessage(err) != "internal error" {
		t.Fatalf("Migrate(bad) error = %v, want internal error naming migration 0002", err)
	}
	var exists bool
	pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".half").Scan(&exists)
	if diff := cmp.Diff([]string{"0001"}, applied(t, pool, schema)); diff != "" || exists {
		t.Errorf("after failure: half table exists %v; applied (-want +got):\n%s", exists, diff)
	}
	fixed := map[string]string{"0001.sql": good["0001.sql"], "0002.sql": "CREATE TABLE half (x int)"}
	if err := postgres.Migrate(ctx, pool, schema, nil, files(fixed)); err != nil {
		t.Fatalf("Migrate(fixed) error = %v", err)
	}
}

func TestMigrateRejectsBadInput(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	okSet := files(map[string]string{"0001.sql": "SELECT 1"})
	tests := []struct {
		name     string
		schema   string
		sets     []fs.FS
		wantKind errs.Kind
	}{
		{"injection", "x; DROP SCHEMA public CASCADE; --", []fs.FS{okSet}, errs.Invalid},
		{"quote", `x"y`, []fs.FS{okSet}, errs.Invalid},
		{"upper case", "Accounts", []fs.FS{okSet}, errs.Invalid},
		{"empty", "", []fs.FS{okSet}, errs.Invalid},
		{"public", "public", []fs.FS{okSet}, errs.Invalid},
		{"system", "pg_catalog", []fs.FS{okSet}, errs.Invalid},
		{"too long", strings.Repeat("a", 64), []fs.FS{okSet}, errs.Invalid},
		{"same version twice", "m_" + suffix(), []fs.FS{okSet, okSet}, errs.Internal},
		{"unreadable set", "m_" + suffix(), []fs.FS{badFS{}}, errs.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := postgres.Migrate(context.Background(), pool, tt.schema, nil, tt.sets...); errs.KindOf(err) != tt.wantKind {
				t.Errorf("Migrate(%q) error = %v, want kind %v", tt.schema, err, tt.wantKind)
			}
		})
	}
}

// badFS lists a migration it cannot open.
type badFS struct{}

func (badFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
}

func (badFS) Glob(string) ([]string, error) { return []string{"0001.sql"}, nil }

func TestMigrateCancelled(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := postgres.Migrate(ctx, pool, "m_"+suffix(), nil, files(map[string]string{"0001.sql": "SELECT 1"})); err == nil {
		t.Errorf("Migrate(cancelled) = nil, want an error")
	}
}
