package pgtest_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// packageURL is the database pgtest.Main made for this package.
var packageURL string

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { packageURL = u }) }

// databaseName connects to dbURL and returns the database it lands in.
func databaseName(t *testing.T, dbURL string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect %s: %v", dbURL, err)
	}
	defer conn.Close(context.Background())
	var name string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// databaseExists asks the admin server whether name exists.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestMainDatabase(t *testing.T) {
	t.Parallel()
	if name := databaseName(t, packageURL); !strings.HasPrefix(name, "bastion_test_") {
		t.Errorf("Main database = %q, want a bastion_test_ database", name)
	}
}

func TestNewDatabaseIsFreshAndDropped(t *testing.T) {
	t.Parallel()
	var names []string
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			u := pgtest.NewDatabase(t)
			name := databaseName(t, u)
			names = append(names, name)
			conn, err := pgx.Connect(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			// An open connection must not stop the drop.
			t.Cleanup(func() { conn.Close(context.Background()) })
			var tables int
			if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if tables != 0 {
				t.Errorf("new database %s has %d tables, want 0", name, tables)
			}
			if _, err := conn.Exec(context.Background(), "CREATE TABLE leftover (x int)"); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases = %q, want two different ones", names)
	}
	for _, n := range names {
		if databaseExists(t, n) {
			t.Errorf("database %s still exists after its test", n)
		}
	}
}

// fatalTB records Fatalf and stops the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// closedPortURL returns an admin URL, with a password, for a port nothing
// listens on.
func closedPortURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "postgres://postgres:hunter2secret@" + addr + "/postgres?sslmode=disable"
}

func TestNewDatabaseAtFailsClearly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		adminURL string
		want     string
	}{
		{"unreachable", closedPortURL(t), "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"},
		{"not a URL", "host=127.0.0.1 password=hunter2secret", "must be a postgres:// URL"},
		{"bad option", "postgres://postgres:hunter2secret@127.0.0.1/postgres?sslmode=bogus", "admin URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ft := &fatalTB{}
			done := make(chan struct{})
			go func() {
				defer close(done)
				pgtest.NewDatabaseAt(ft, tt.adminURL)
			}()
			<-done
			if !strings.Contains(ft.msg, tt.want) {
				t.Errorf("NewDatabaseAt(%q) failed with %q, want it to mention %q", tt.adminURL, ft.msg, tt.want)
			}
			if strings.Contains(ft.msg, "hunter2secret") {
				t.Errorf("NewDatabaseAt(%q) failed with %q, which leaks the password", tt.adminURL, ft.msg)
			}
		})
	}
}

// runner stands in for *testing.M and looks at the database while "tests" run.
type runner struct {
	t    *testing.T
	url  string
	name string
	code int
}

func (r *runner) Run() int {
	r.name = databaseName(r.t, r.url)
	return r.code
}

func TestRun(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			r := &runner{t: t, code: code}
			if got := pgtest.Run(r, pgtest.AdminURL(), func(u string) { r.url = u }); got != code {
				t.Errorf("Run() = %d, want %d", got, code)
			}
			if r.name == "" || databaseExists(t, r.name) {
				t.Errorf("database %q: want it created for the run and dropped after", r.name)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		r := &runner{t: t}
		called := false
		if got := pgtest.Run(r, closedPortURL(t), func(string) { called = true }); got != 1 || called {
			t.Errorf("Run(unreachable) = %d, setup called %v; want 1, false", got, called)
		}
	})
}

func TestAdminURL(t *testing.T) {
	t.Setenv(pgtest.EnvAdminURL, "")
	if got := pgtest.AdminURL(); got != pgtest.DefaultAdminURL {
		t.Errorf("AdminURL() with no env = %q, want %q", got, pgtest.DefaultAdminURL)
	}
	const custom = "postgres://admin@db.example:5433/postgres"
	t.Setenv(pgtest.EnvAdminURL, custom)
	if got := pgtest.AdminURL(); got != custom {
		t.Errorf("AdminURL() with env = %q, want %q", got, custom)
	}
}
