// Package pgtest gives tests a fresh, empty Postgres database of their own,
// so tests run against the real server, in parallel, without seeing each
// other's rows, and leave nothing behind.
//
// The server is found through an admin URL: the one passed explicitly, or
// else $BANK_TEST_DATABASE_URL, or else DefaultAdminURL. Reading the
// environment is allowed here because this package only runs inside tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvAdminURL names the environment variable that overrides DefaultAdminURL.
const EnvAdminURL = "BANK_TEST_DATABASE_URL"

// DefaultAdminURL is the local development server, as a superuser.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// startHint tells a developer how to bring the local server up.
const startHint = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start" +
	" (or point " + EnvAdminURL + " at a server where you may create databases)"

// AdminURL returns $BANK_TEST_DATABASE_URL, or DefaultAdminURL if it is unset.
func AdminURL() string {
	if u := os.Getenv(EnvAdminURL); u != "" {
		return u
	}
	return DefaultAdminURL
}

// NewDatabase creates an empty database on the AdminURL server and returns a
// URL for it. The database is dropped, even if connections are still open,
// when t and its subtests finish. t fails with instructions if the server
// cannot be reached.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return NewDatabaseAt(t, AdminURL())
}

// NewDatabaseAt is NewDatabase on the server adminURL names.
func NewDatabaseAt(t testing.TB, adminURL string) string {
	t.Helper()
	dbURL, drop, err := Create(context.Background(), adminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dbURL
}

// Runner is what Main needs of *testing.M.
type Runner interface {
	Run() int
}

// Main runs a package's tests against one database created for the package
// and dropped afterwards, then exits. Use it from TestMain:
//
//	var dbURL string
//
//	func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { dbURL = u }) }
func Main(m *testing.M, setup func(url string)) {
	os.Exit(Run(m, AdminURL(), setup))
}

// Run creates a database on adminURL's server, passes its URL to setup, runs
// m, drops the database and returns the exit code for os.Exit. It reports
// problems on stderr, since there is no testing.T yet.
func Run(m Runner, adminURL string, setup func(url string)) int {
	dbURL, drop, err := Create(context.Background(), adminURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	setup(dbURL)
	code := m.Run()
	if err := drop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Create makes a database named bastion_test_<random> on adminURL's server
// and returns its URL and a function that drops it.
func Create(ctx context.Context, adminURL string) (dbURL string, drop func() error, err error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not echoed: a key=value string would show its password.
		return "", nil, fmt.Errorf("admin URL must be a postgres:// URL")
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := "bastion_test_" + hex.EncodeToString(b)
	ident := pgx.Identifier{name}.Sanitize()
	if err := adminExec(ctx, adminURL, u.Redacted(), "CREATE DATABASE "+ident); err != nil {
		return "", nil, err
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return adminExec(ctx, adminURL, u.Redacted(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// adminExec runs one statement on a short-lived admin connection. shown is
// adminURL with its password hidden, for messages.
func adminExec(ctx context.Context, adminURL, shown, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return fmt.Errorf("admin URL %s: %w", shown, err)
	}
	cfg.ConnectTimeout = 5 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s is not reachable (%v); %s", shown, err, startHint)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
