package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// TestReaderRoleMayVerifyAndNothingElse: the schema's owner runs the
// migrations, as a service does, and a member of audit.ReaderRole can then
// verify the chain, but not change a row or read any other table.
func TestReaderRoleMayVerifyAndNothingElse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := randomName()
	owner, verifier, schema := "owner_"+s, "verifier_"+s, "audit_"+s
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	// The group is cluster-wide and shared by every test that wants it, so
	// it is created if missing and never dropped; the logins are this test's.
	if _, err := admin.Exec(ctx, "CREATE ROLE "+audit.ReaderRole+" NOLOGIN"); err != nil && sqlState(err) != "42710" && sqlState(err) != "23505" {
		t.Fatal(err)
	}
	for _, sql := range []string{"CREATE ROLE " + owner + " LOGIN", "CREATE ROLE " + verifier + " LOGIN IN ROLE " + audit.ReaderRole} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // after the database, and the grants in it, are gone
		for _, role := range []string{owner, verifier} {
			if _, err := admin.Exec(context.Background(), "DROP ROLE "+role); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	dbURL := pgtest.NewDatabase(t)
	db := connectAs(t, dbURL, "")
	if _, err := db.Exec(ctx, "CREATE SCHEMA "+schema+" AUTHORIZATION "+owner); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, urlAs(t, dbURL, owner), postgres.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, schema, auditGrants, audit.Migrations(schema)); err != nil {
		t.Fatalf("Migrate as the schema's owner: %v", err)
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE "+schema+".secrets (v text)"); err != nil {
		t.Fatal(err)
	}
	log := audit.New(schema, time.Now)
	for range 2 {
		if err := log.Append(ctx, pool, audit.Event{Actor: "u", Action: "test", Resource: "r", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := log.Seal(ctx, pool); err != nil {
		t.Fatal(err)
	}

	conn := connectAs(t, dbURL, verifier)
	if rep, err := log.Verify(ctx, conn); err != nil || rep.Sealed != 2 {
		t.Fatalf("Verify as a reader = %+v, %v; want 2 sealed rows", rep, err)
	}
	table := schema + ".audit_events"
	for _, sql := range []string{
		"INSERT INTO " + table + " (at, actor, action, resource, outcome, reason, client_ip, trace_id, detail) VALUES (now(), 'x', 'x', 'x', 'x', '', '', '', '{}')",
		"UPDATE " + table + " SET actor = 'someone else'",
		"DELETE FROM " + table,
		"TRUNCATE " + table,
		"ALTER TABLE " + table + " DISABLE TRIGGER USER",
		"SELECT * FROM " + schema + ".secrets",
		"CREATE TABLE " + schema + ".planted (v text)",
	} {
		if _, err := conn.Exec(ctx, sql); sqlState(err) != "42501" {
			t.Errorf("as a reader, %s: error %v, want permission denied (42501)", sql, err)
		}
	}
}

func randomName() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// urlAs returns dbURL with user as its role (the test server trusts local
// connections, so no password is needed).
func urlAs(t *testing.T, dbURL, user string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		u.User = url.User(user)
	}
	return u.String()
}

func connectAs(t *testing.T, dbURL, user string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), urlAs(t, dbURL, user))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// auditGrants is what a service gives its runtime role on the audit table.
var auditGrants = postgres.Grants{"audit_events": audit.RuntimeGrant}
