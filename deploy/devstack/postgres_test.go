package devstack

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestThrowawayPostgresStopsWithTheStack: with nothing answering at the URL,
// EnsurePostgres starts a cluster under the dev directory, and the stop it
// returns shuts that cluster down, so Ctrl-C leaves no server behind; a
// second run starts the same cluster again with its data. With a server
// already answering, stop does nothing to it.
func TestThrowawayPostgresStopsWithTheStack(t *testing.T) {
	if findPGTool("initdb") == "" || findPGTool("pg_ctl") == "" {
		t.Skip("initdb and pg_ctl are not installed")
	}
	dev := t.TempDir()
	// Under root the cluster runs as "nobody", which must reach dev/pg:
	// open the test's own directories to traversal (not reading).
	for _, d := range []string{filepath.Dir(dev), dev} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	cfg := &Config{Dir: dev, DatabaseURL: "postgres://postgres@127.0.0.1:" + port + "/bank?sslmode=disable"}

	for _, run := range []string{"first run (initdb)", "second run (same data)"} {
		var out bytes.Buffer
		stop, err := EnsurePostgres(t.Context(), cfg, &out)
		if err != nil {
			t.Fatalf("%s: EnsurePostgres = %v\n%s", run, err, &out)
		}
		if !answers(addr) {
			t.Fatalf("%s: nothing answers at %s after EnsurePostgres", run, addr)
		}
		if !strings.Contains(out.String(), "it stops with the stack") {
			t.Errorf("%s: output %q does not say the cluster stops with the stack", run, &out)
		}
		stop()
		if answers(addr) {
			t.Fatalf("%s: PostgreSQL still answers at %s after stop", run, addr)
		}
		if !strings.Contains(out.String(), "Throw-away PostgreSQL stopped") {
			t.Errorf("%s: output %q does not report the stop", run, &out)
		}
	}

	// A server that was already there is not ours to stop.
	var out bytes.Buffer
	shared := &Config{Dir: t.TempDir(), DatabaseURL: "postgres://postgres@127.0.0.1:5432/bank?sslmode=disable"}
	if !answers("127.0.0.1:5432") {
		t.Skip("no PostgreSQL at 127.0.0.1:5432 for the already-running case")
	}
	stop, err := EnsurePostgres(t.Context(), shared, &out)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if !answers("127.0.0.1:5432") || out.Len() != 0 {
		t.Errorf("stop after finding a running server: answers %v, output %q; want it untouched and nothing said", answers("127.0.0.1:5432"), &out)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
