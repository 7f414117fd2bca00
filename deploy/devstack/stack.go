// Package devstack prepares and runs the whole Bastion stack as local
// processes: the dev runner (`make run`) and the end-to-end tests both use it,
// so the tests start the bank exactly the way a newcomer does.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/pki"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// Processes are the programs of the stack, in start order.
var Processes = []string{"auth", "transactions", "accounts", "gateway"}

// roles maps each service to its database role and schema.
var roles = map[string]postgres.RoleSpec{
	"auth":         {Role: "bank_auth", Schema: "auth"},
	"accounts":     {Role: "bank_accounts", Schema: "accounts"},
	"transactions": {Role: "bank_ledger", Schema: "ledger"},
}

// auditReader is the login of the audit verifier (cmd/auditverify): it may
// read every schema's audit_events and nothing else, so the scheduled check
// holds no credential that could rewrite what it checks.
var auditReader = postgres.ReaderSpec{
	Role:   "bank_audit",
	Group:  audit.ReaderRole,
	Tables: []string{"auth.audit_events", "accounts.audit_events", "ledger.audit_events"},
}

// Config says where the stack lives and what it talks to.
type Config struct {
	Dir         string            // the .dev directory
	DatabaseURL string            // a superuser URL naming the bank database (created if missing)
	Addrs       Addrs             // listen addresses
	Env         map[string]string // extra BANK_* / OTEL_* variables passed to every process
	// ExportDir, if set, receives each process's own material in a
	// directory of its own (see Export), for a deployment that mounts each
	// process only its own: the Compose init job. Empty under make run.
	ExportDir string
}

// Addrs are the listen addresses of the processes.
type Addrs struct {
	Gateway, Auth, Accounts, Transactions                             string
	GatewayMetrics, AuthMetrics, AccountsMetrics, TransactionsMetrics string
}

// DefaultAddrs are the dev addresses of API.md.
func DefaultAddrs() Addrs {
	return Addrs{
		Gateway: "127.0.0.1:8443", Auth: "127.0.0.1:9101", Accounts: "127.0.0.1:9102", Transactions: "127.0.0.1:9103",
		GatewayMetrics: "127.0.0.1:9464", AuthMetrics: "127.0.0.1:9465", AccountsMetrics: "127.0.0.1:9466", TransactionsMetrics: "127.0.0.1:9467",
	}
}

// Prepared is what Prepare made: the environment of each process.
type Prepared struct {
	Dir    string
	CAFile string
	Env    map[string][]string // per process, KEY=VALUE
	// AuditURL is the bank database as the audit reader (bank_audit), for
	// cmd/auditverify: it may read the audit tables and nothing else.
	AuditURL string
}

// Prepare creates the dev PKI, signing-key and secrets directories (see
// PrepareFiles), the database with one role per service limited to its own
// schema, and the environment of each process. It is idempotent: existing
// valid material is kept, and certificates due for renewal are renewed.
func Prepare(ctx context.Context, cfg Config) (*Prepared, error) {
	admin, db, err := splitDatabaseURL(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := PrepareFiles(cfg); err != nil {
		return nil, err
	}
	pkiDir := filepath.Join(cfg.Dir, "pki")
	secrets := filepath.Join(cfg.Dir, "secrets")
	pageKey := filepath.Join(secrets, PageTokenFile)
	specs := make([]postgres.RoleSpec, 0, len(roles))
	urls := make(map[string]string)
	for svc, spec := range roles {
		pw, err := secretValue(filepath.Join(secrets, "db-"+spec.Role+".password"), 24)
		if err != nil {
			return nil, err
		}
		spec.Password = pw
		specs = append(specs, spec)
		urls[svc] = roleURL(cfg.DatabaseURL, spec.Role, pw)
	}
	if err := postgres.Provision(ctx, admin, db, specs); err != nil {
		return nil, fmt.Errorf("provision database %q: %w", db, err)
	}
	reader := auditReader
	if reader.Password, err = secretValue(filepath.Join(secrets, "db-"+reader.Role+".password"), 24); err != nil {
		return nil, err
	}
	if err := postgres.ProvisionReader(ctx, admin, db, reader); err != nil {
		return nil, fmt.Errorf("provision the audit reader in %q: %w", db, err)
	}
	p := &Prepared{Dir: cfg.Dir, CAFile: filepath.Join(pkiDir, "ca.pem"), Env: map[string][]string{},
		AuditURL: roleURL(cfg.DatabaseURL, reader.Role, reader.Password)}
	a := cfg.Addrs
	common := map[string]string{
		"BANK_PKI_DIR":           pkiDir,
		"BANK_AUTH_ADDR":         a.Auth,
		"BANK_ACCOUNTS_ADDR":     a.Accounts,
		"BANK_TRANSACTIONS_ADDR": a.Transactions,
		"BANK_GATEWAY_ADDR":      a.Gateway,
	}
	metrics := map[string]string{"gateway": a.GatewayMetrics, "auth": a.AuthMetrics, "accounts": a.AccountsMetrics, "transactions": a.TransactionsMetrics}
	for _, proc := range Processes {
		env := map[string]string{}
		for k, v := range common {
			env[k] = v
		}
		for k, v := range cfg.Env {
			if strings.HasPrefix(k, "BANK_ADMIN_") && proc != "auth" {
				continue // the first admin's password is the auth service's business only
			}
			env[k] = v
		}
		env["BANK_METRICS_ADDR"] = metrics[proc]
		if u, ok := urls[proc]; ok {
			env["BANK_DATABASE_URL"] = u
		}
		switch proc {
		case "auth":
			env["BANK_KEYS_DIR"] = filepath.Join(cfg.Dir, "keys")
		case "accounts", "transactions":
			env["BANK_PAGE_TOKEN_KEY_FILE"] = pageKey
		}
		for k, v := range env {
			p.Env[proc] = append(p.Env[proc], k+"="+v)
		}
	}
	return p, nil
}

// PrepareFiles creates what Prepare writes to disk without a database: the
// dev PKI (renewing what is due), the secrets directory with the page-token
// key and the database roles' passwords, and, if cfg.ExportDir is set, each
// process's export directory.
func PrepareFiles(cfg Config) error {
	if _, err := RenewPKI(Config{Dir: cfg.Dir}, pki.Options{}); err != nil {
		return err
	}
	secrets := filepath.Join(cfg.Dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	if err := ensureSecretFile(filepath.Join(secrets, PageTokenFile), 32); err != nil {
		return err
	}
	for _, spec := range roles {
		if _, err := secretValue(filepath.Join(secrets, "db-"+spec.Role+".password"), 24); err != nil {
			return err
		}
	}
	if _, err := secretValue(filepath.Join(secrets, "db-"+auditReader.Role+".password"), 24); err != nil {
		return err
	}
	if cfg.ExportDir != "" {
		if _, err := Export(cfg.Dir, cfg.ExportDir); err != nil {
			return err
		}
	}
	return nil
}

// splitDatabaseURL returns a URL of the maintenance database on the same
// server (for CREATE DATABASE) and the name of the bank database.
func splitDatabaseURL(raw string) (admin, db string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", errors.New("BANK_DATABASE_URL must be a postgres:// URL")
	}
	db = strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "bank"
	}
	u.Path = "/postgres"
	return u.String(), db, nil
}

// roleURL returns raw with its credentials replaced by a service role's.
func roleURL(raw, role, password string) string {
	u, _ := url.Parse(raw)
	if u.Path == "" || u.Path == "/" {
		u.Path = "/bank"
	}
	u.User = url.UserPassword(role, password)
	return u.String()
}

// ensureSecretFile creates a file of n random bytes (0600) if it is missing.
func ensureSecretFile(path string, n int) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// secretValue returns the hex secret stored at path, creating it if missing.
func secretValue(path string, n int) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	v := hex.EncodeToString(b)
	return v, os.WriteFile(path, []byte(v), 0o600)
}
