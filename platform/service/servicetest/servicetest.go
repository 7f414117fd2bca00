// Package servicetest is the harness of a service program's own tests
// (cmd/<name>/run_test.go): it starts the program through its run function
// as main does, migrates a fresh database with the program's own migrate
// command, waits for the audit sealer, and checks configuration errors. It
// is the one copy of what those tests used to repeat per service.
package servicetest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// Run is a program's run function: what main calls.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Env returns a getenv that reads vars.
func Env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// Started is one run of a program, serving in the background.
type Started struct {
	Done   chan error           // run's result, once it returns
	Logs   *grpctest.SyncBuffer // its stdout and stderr
	cancel context.CancelFunc
}

// Start runs the program's serve command with the variables vars until
// Stop. It does not wait for the program to serve: grpctest.WaitServing
// does, given Done.
func Start(t testing.TB, run Run, vars map[string]string) *Started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Started{Done: make(chan error, 1), Logs: &grpctest.SyncBuffer{}, cancel: cancel}
	go func() { s.Done <- run(ctx, nil, Env(vars), s.Logs, s.Logs) }()
	t.Cleanup(cancel)
	return s
}

// Stop cancels the program's context, as SIGTERM does, and fails the test
// unless run returns nil within 15 s.
func (s *Started) Stop(t testing.TB) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.Done:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run() did not return after its context was cancelled")
	}
}

// MigratedDatabase returns a fresh database that "<name> migrate" has
// brought up to date, as whoever starts the server must first. If the
// command prints anything, it must say that schema is up to date.
func MigratedDatabase(t testing.TB, run Run, name, schema string) string {
	t.Helper()
	url := pgtest.NewDatabase(t)
	var out bytes.Buffer
	if err := run(context.Background(), []string{name, "migrate"}, Env(map[string]string{"BANK_DATABASE_URL": url}), &out, &out); err != nil {
		t.Fatalf("%s migrate = %v\n%s", name, err, &out)
	}
	if out.Len() > 0 && !strings.Contains(out.String(), "schema "+schema+" is up to date") {
		t.Errorf("%s migrate printed %q, want it to say the schema %s is up to date", name, &out, schema)
	}
	return url
}

// PageTokenKeyFile writes a valid key for BANK_PAGE_TOKEN_KEY_FILE and
// returns its path.
func PageTokenKeyFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "page-token.key")
	if err := os.WriteFile(path, []byte(strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// BadConfiguration is a case of RejectsBadConfiguration: run with Vars
// must fail, naming each of Want.
type BadConfiguration struct {
	Name string
	Args []string // nil runs serve
	Vars map[string]string
	Want []string
}

// RejectsBadConfiguration runs each case in parallel and checks that run
// refuses to start and that its error names every variable at fault: one
// run reports every problem, not the first.
func RejectsBadConfiguration(t *testing.T, run Run, cases []BadConfiguration) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			var logs grpctest.SyncBuffer
			err := run(context.Background(), tc.Args, Env(tc.Vars), &logs, &logs)
			if err == nil {
				t.Fatalf("run(%v) = nil, want an error", tc.Vars)
			}
			for _, key := range tc.Want {
				if !strings.Contains(err.Error(), key) {
					t.Errorf("run(%v) error = %q, want it to name %s", tc.Vars, err, key)
				}
			}
		})
	}
}

// WaitAuditSealed waits up to 10 s until the background sealer the program
// started has linked every audit row of schema into the chain, and the
// chain verifies.
func WaitAuditSealed(t testing.TB, dbURL, schema string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	log := audit.New(schema, time.Now)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rep, err := log.Verify(ctx, conn)
		if err != nil {
			t.Fatalf("audit Verify(%s) = %+v, %v", schema, rep, err)
		}
		if rep.Sealed > 0 && rep.Pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit rows of %s not sealed by the service's sealer: %+v", schema, rep)
		}
	}
}
