package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// ledgerLike is a schema with what a service's runtime role may and may not
// do to it.
var (
	ledgerLike = fstest.MapFS{"0001.sql": {Data: []byte(`
		CREATE TABLE books (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount bigint NOT NULL);
		CREATE TABLE balances (id int PRIMARY KEY, balance bigint NOT NULL, note text NOT NULL DEFAULT '');
		CREATE TABLE scratch (v text);
		INSERT INTO balances VALUES (1, 0);`)}}
	ledgerGrants = postgres.Grants{
		"books":    "SELECT, INSERT",
		"balances": "SELECT, UPDATE (balance)",
		"scratch":  "",
	}
)

// TestMigrateGrantsExactlyWhatIsDeclared: after Migrate, run as the owner,
// the runtime role may do exactly what grants say, and a privilege given by
// hand in between is taken away by the next Migrate.
func TestMigrateGrantsExactlyWhatIsDeclared(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.provision(t)
	ctx := context.Background()
	owner := openPool(t, f.as(t, f.a.Owner))
	if err := postgres.Migrate(ctx, owner, f.a.Schema, ledgerGrants, ledgerLike); err != nil {
		t.Fatalf("Migrate as the owner = %v", err)
	}
	exec(t, owner, "GRANT DELETE, TRUNCATE ON books TO "+f.a.Role+"; GRANT UPDATE ON balances TO "+f.a.Role)
	if err := postgres.Migrate(ctx, owner, f.a.Schema, ledgerGrants, ledgerLike); err != nil {
		t.Fatalf("second Migrate = %v", err)
	}
	rt := connect(t, f.as(t, f.a.Role))
	tests := []struct {
		sql     string
		allowed bool
	}{
		{"INSERT INTO books (amount) VALUES (5)", true},
		{"SELECT * FROM books", true},
		{"UPDATE balances SET balance = 5 WHERE id = 1", true},
		{"SELECT * FROM balances WHERE id = 1 FOR UPDATE", true},
		{"SELECT version FROM schema_migrations", true},
		{"UPDATE books SET amount = 6", false},
		{"DELETE FROM books", false},
		{"TRUNCATE books", false},
		{"UPDATE balances SET note = 'x'", false},
		{"INSERT INTO balances VALUES (2, 100)", false},
		{"SELECT * FROM scratch", false},
		{"DELETE FROM schema_migrations", false},
		{"INSERT INTO schema_migrations VALUES ('9999')", false},
	}
	for _, tt := range tests {
		_, err := rt.Exec(ctx, tt.sql)
		if tt.allowed && err != nil {
			t.Errorf("as the runtime role, %s = %v, want allowed", tt.sql, err)
		}
		if !tt.allowed && sqlState(err) != "42501" {
			t.Errorf("as the runtime role, %s = %v, want permission denied (42501)", tt.sql, err)
		}
	}
}

// TestMigrateRefusesUndecidedGrants: a table nobody declared a grant for, a
// grant for a table that does not exist and a grant that is not a privilege
// list all stop the migration.
func TestMigrateRefusesUndecidedGrants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	without := func(table string) postgres.Grants {
		g := postgres.Grants{}
		for k, v := range ledgerGrants {
			if k != table {
				g[k] = v
			}
		}
		return g
	}
	with := func(table, privileges string) postgres.Grants {
		g := without("")
		g[table] = privileges
		return g
	}
	tests := []struct {
		name   string
		grants postgres.Grants
		want   string
	}{
		{"table without a grant", without("scratch"), "scratch has no grant"},
		{"grant for no table", with("ghosts", "SELECT"), "ghosts, which does not exist"},
		{"not a privilege list", with("books", "SELECT; DROP TABLE books"), "bad grant"},
		{"bad column", with("books", "UPDATE (amount) TO PUBLIC"), "bad grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := openPool(t, packageURL)
			schema := "g_" + suffix()
			err := postgres.Migrate(ctx, pool, schema, tt.grants, files(map[string]string{"0001.sql": `
				CREATE TABLE books (amount bigint); CREATE TABLE balances (id int); CREATE TABLE scratch (v text);`}))
			if errs.KindOf(err) != errs.Internal || !strings.Contains(errorChain(err), tt.want) {
				t.Errorf("Migrate(%v) = %v, want an error saying %q", tt.grants, err, tt.want)
			}
		})
	}
}

// errorChain is err's message with its causes.
func errorChain(err error) string {
	var s []string
	for ; err != nil; err = errors.Unwrap(err) {
		s = append(s, err.Error())
	}
	return strings.Join(s, ": ")
}

// TestCheckSchema: a service refuses to start on a schema that lacks one of
// its migrations or has one it does not know, and says loudly when its role
// could alter the schema.
func TestCheckSchema(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.provision(t)
	ctx := context.Background()
	owner, runtime := openPool(t, f.as(t, f.a.Owner)), openPool(t, f.as(t, f.a.Role))
	v2 := fstest.MapFS{"0002.sql": {Data: []byte("ALTER TABLE books ADD COLUMN memo text")}}
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	if err := postgres.CheckSchema(ctx, runtime, f.a.Schema, logger, ledgerLike); errs.KindOf(err) != errs.Internal {
		t.Errorf("CheckSchema before any migration = %v, want refused", err)
	}
	if err := postgres.Migrate(ctx, owner, f.a.Schema, ledgerGrants, ledgerLike); err != nil {
		t.Fatal(err)
	}
	if err := postgres.CheckSchema(ctx, runtime, f.a.Schema, logger, ledgerLike, v2); err == nil || !strings.Contains(errorChain(err), `lacks migration "0002"`) {
		t.Errorf("CheckSchema with a migration not applied = %v, want it named", err)
	}
	if err := postgres.CheckSchema(ctx, runtime, f.a.Schema, logger, ledgerLike); err != nil || log.Len() != 0 {
		t.Errorf("CheckSchema as the runtime role = %v, log %q; want nil and nothing logged", err, &log)
	}
	if err := postgres.Migrate(ctx, owner, f.a.Schema, ledgerGrants, ledgerLike, v2); err != nil {
		t.Fatal(err)
	}
	if err := postgres.CheckSchema(ctx, runtime, f.a.Schema, logger, ledgerLike); !errors.Is(err, postgres.ErrUnknownMigration) {
		t.Errorf("CheckSchema by an older build = %v, want ErrUnknownMigration", err)
	}
	for who, url := range map[string]string{"owner": f.as(t, f.a.Owner), "superuser": urlAs(t, f.admin, "postgres", f.db)} {
		log.Reset()
		if err := postgres.CheckSchema(ctx, openPool(t, url), f.a.Schema, logger, ledgerLike, v2); err != nil || !strings.Contains(log.String(), "LEAST PRIVILEGE OFF") {
			t.Errorf("CheckSchema as the %s = %v, log %q; want it to say least privilege is off", who, err, &log)
		}
	}
}
