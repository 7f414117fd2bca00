package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/platform/service/servicetest"
)

// migratedDatabase returns a fresh database that "accounts migrate" has
// brought up to date, as whoever starts the server must first.
func migratedDatabase(t *testing.T) string {
	return servicetest.MigratedDatabase(t, run, "accounts", "accounts")
}

// TestServeNeverMigrates: the server runs as the schema's runtime role,
// which may not change the schema, so it refuses a database that has not
// been migrated rather than migrating it.
func TestServeNeverMigrates(t *testing.T) {
	t.Parallel()
	url, pki := pgtest.NewDatabase(t), grpctest.New(t)
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"serve on an unmigrated database", []string{"accounts"}, map[string]string{"BANK_DATABASE_URL": url,
			"BANK_METRICS_ADDR": "127.0.0.1:0", "BANK_PKI_DIR": pki.PKIDir, "BANK_TRUST_DOMAIN": grpctest.TrustDomain},
			"has the owner run migrate?"},
		{"migrate without a database", []string{"accounts", "migrate"}, nil, "BANK_DATABASE_URL"},
		{"unknown command", []string{"accounts", "migrat"}, nil, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.vars[k] }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error saying %q", tt.args, err, tt.want)
			}
		})
	}
}
