package devstack

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestThrowawayPostgresStopsAndStartsAgain: the fault campaign's cluster
// stops in each shutdown mode and comes back on its port with its data, and
// a configuration without a throw-away cluster (a shared server) is refused
// rather than stopped.
func TestThrowawayPostgresStopsAndStartsAgain(t *testing.T) {
	if findPGTool("initdb") == "" || findPGTool("pg_ctl") == "" {
		t.Skip("initdb and pg_ctl are not installed")
	}
	dev := t.TempDir()
	for _, d := range []string{filepath.Dir(dev), dev} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	cfg := Config{Dir: dev, DatabaseURL: "postgres://postgres@127.0.0.1:" + port + "/bank?sslmode=disable"}
	stop, err := EnsurePostgres(t.Context(), &cfg, io.Discard)
	if err != nil {
		t.Fatalf("EnsurePostgres = %v", err)
	}
	defer stop()
	for _, mode := range []string{"fast", "immediate"} {
		if err := StopPostgres(t.Context(), cfg, mode); err != nil {
			t.Fatalf("StopPostgres(%s) = %v", mode, err)
		}
		if answers(addr) {
			t.Fatalf("PostgreSQL still answers at %s after StopPostgres(%s)", addr, mode)
		}
		if err := StartPostgres(t.Context(), cfg); err != nil {
			t.Fatalf("StartPostgres after %s = %v", mode, err)
		}
		if !answers(addr) {
			t.Fatalf("nothing answers at %s after StartPostgres (stopped %s)", addr, mode)
		}
	}
	shared := Config{Dir: t.TempDir(), DatabaseURL: "postgres://postgres@127.0.0.1:5432/bank?sslmode=disable"}
	if err := StopPostgres(t.Context(), shared, "fast"); err == nil {
		t.Error("StopPostgres without a throw-away cluster succeeded, want it refused")
	}
}
