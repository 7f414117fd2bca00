package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/deploy/devstack"
)

func TestPassThroughKeepsOnlyTheKnobs(t *testing.T) {
	t.Parallel()
	got := passThrough([]string{
		"BANK_RATE_LIMIT_AUTH=1000", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317",
		"BANK_DATABASE_URL=postgres://superuser@db/bank", "BANK_GATEWAY_ADDR=0.0.0.0:1",
		"PATH=/usr/bin", "AWS_SECRET_ACCESS_KEY=x", "HOME=/root",
		"BANK_PKI_DIR=/elsewhere", "BANK_KEYS_DIR=/elsewhere", "BANK_PAGE_TOKEN_KEY_FILE=/k", "BANK_METRICS_ADDR=0.0.0.0:1",
	})
	want := map[string]string{"BANK_RATE_LIMIT_AUTH": "1000", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
	if len(got) != len(want) {
		t.Fatalf("passThrough = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("passThrough[%s] = %q, want %q", k, got[k], v)
		}
	}
	// The superuser URL never reaches a service: each gets its own role's URL.
	if _, ok := got["BANK_DATABASE_URL"]; ok {
		t.Error("the runner's database URL was passed to the services")
	}
	base := baseEnv([]string{"PATH=/usr/bin", "HOME=/root", "AWS_SECRET_ACCESS_KEY=x", "BANK_X=1"})
	if !slices.Equal(base, []string{"PATH=/usr/bin", "HOME=/root"}) {
		t.Errorf("baseEnv = %v, want PATH and HOME only", base)
	}
}

func TestAdminCredentials(t *testing.T) {
	t.Parallel()
	dev := t.TempDir()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	first, err := adminCredentials(env(nil), dev)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Generated || first.Email != "admin@bastion.local" || len(first.Password) < 20 || strings.ContainsAny(first.Password, `"'\ $`) {
		t.Errorf("generated credentials = %+v; want a long shell- and JSON-safe password", first)
	}
	info, err := os.Stat(filepath.Join(dev, "secrets", "admin-password"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin-password file: %v, mode %v; want 0600", err, info.Mode().Perm())
	}
	again, _ := adminCredentials(env(nil), dev)
	if again.Password != first.Password {
		t.Error("a second run printed a different generated password")
	}
	chosen, _ := adminCredentials(env(map[string]string{"BANK_ADMIN_EMAIL": "ops@example.test", "BANK_ADMIN_PASSWORD": "chosen by the operator"}), dev)
	if chosen.Generated || chosen.Email != "ops@example.test" || chosen.Password != "chosen by the operator" {
		t.Errorf("credentials from the environment = %+v", chosen)
	}
}

func TestAddrsDefaultToAPIMD(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want devstack.Addrs
	}{
		{"defaults", nil, devstack.DefaultAddrs()},
		{"every address moved", map[string]string{
			"BANK_GATEWAY_ADDR": "127.0.0.1:18443", "BANK_AUTH_ADDR": "127.0.0.1:19101",
			"BANK_ACCOUNTS_ADDR": "127.0.0.1:19102", "BANK_TRANSACTIONS_ADDR": "127.0.0.1:19103",
			"BANK_GATEWAY_METRICS_ADDR": "127.0.0.1:19464", "BANK_AUTH_METRICS_ADDR": "127.0.0.1:19465",
			"BANK_ACCOUNTS_METRICS_ADDR": "127.0.0.1:19466", "BANK_TRANSACTIONS_METRICS_ADDR": "127.0.0.1:19467",
		}, devstack.Addrs{
			Gateway: "127.0.0.1:18443", Auth: "127.0.0.1:19101", Accounts: "127.0.0.1:19102", Transactions: "127.0.0.1:19103",
			GatewayMetrics: "127.0.0.1:19464", AuthMetrics: "127.0.0.1:19465", AccountsMetrics: "127.0.0.1:19466", TransactionsMetrics: "127.0.0.1:19467",
		}},
		// One BANK_METRICS_ADDR cannot serve four processes: the runner
		// ignores it rather than give them all the same port.
		{"shared metrics address ignored", map[string]string{"BANK_METRICS_ADDR": "127.0.0.1:1"}, devstack.DefaultAddrs()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := addrs(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("addrs = %+v, want %+v", got, tt.want)
			}
		})
	}
	if passThrough([]string{"BANK_GATEWAY_METRICS_ADDR=127.0.0.1:1"})["BANK_GATEWAY_METRICS_ADDR"] != "" {
		t.Error("a per-process metrics address was passed through to the processes; only the runner reads it")
	}
}
