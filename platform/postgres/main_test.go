package postgres_test

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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// packageURL is a database shared by the tests that only need a schema of
// their own; tests that need a whole database call pgtest.NewDatabase.
var packageURL string

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { packageURL = u }) }

// openPool opens a pool on dbURL that the test closes when it ends.
func openPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), dbURL, postgres.PoolConfig{ApplicationName: "postgres_test", StartupWait: 5 * time.Second})
	if err != nil {
		t.Fatalf("Open(%s) error = %v", dbURL, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// suffix returns a short random name part, so cluster-wide names (roles,
// databases) and schemas do not collide between tests or runs.
func suffix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// urlAs returns dbURL with its user replaced (trust authentication lets any
// role in without a password locally), and optionally its database.
func urlAs(t *testing.T, dbURL, user, database string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	if database != "" {
		u.Path = "/" + database
	}
	return u.String()
}

// connect opens a single connection that the test closes when it ends.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect %s: %v", dbURL, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// exec runs sql and fails the test on error.
func exec(t *testing.T, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// sqlState returns err's SQLSTATE or "".
func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// connectErr connects once and closes the connection, returning the error.
func connectErr(dbURL string) (bool, error) {
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		return false, err
	}
	conn.Close(context.Background())
	return true, nil
}
