package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/pki"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/platform/service/servicetest"
)

// migratedDatabase returns a fresh database that "auth migrate" has brought
// up to date, as whoever starts the server must first.
func migratedDatabase(t *testing.T) string {
	return servicetest.MigratedDatabase(t, run, "auth", "auth")
}

// TestServeNeverMigrates: the server runs as the schema's runtime role,
// which may not change the schema, so it refuses a database that has not
// been migrated rather than migrating it.
func TestServeNeverMigrates(t *testing.T) {
	t.Parallel()
	pkiDir := t.TempDir()
	if err := pki.Ensure(pkiDir, []string{"auth"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"auth"}, servicetest.Env(map[string]string{
		"BANK_DATABASE_URL": pgtest.NewDatabase(t), "BANK_PKI_DIR": pkiDir,
		"BANK_KEYS_DIR": filepath.Join(t.TempDir(), "keys"), "BANK_TOTP_KEY_FILE": totpKeyFile(t), "BANK_METRICS_ADDR": "127.0.0.1:0",
		"BANK_AUTH_ADDR": "127.0.0.1:0", "BANK_LOG_LEVEL": "error",
	}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "has the owner run migrate?") {
		t.Errorf("run(serve) on an unmigrated database = %v, want a refusal that says to migrate", err)
	}
}
