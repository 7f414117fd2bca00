// Package devstack prepares and runs the whole Bastion stack as local
// processes: the dev runner (`make run`) and the end-to-end tests both use it,
// so the tests start the bank exactly the way a newcomer does.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/pki"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// Processes are the programs of the stack, in start order.
var Processes = []string{"auth", "transactions", "accounts", "gateway"}

// schemas maps each service to the schema it owns.
var schemas = map[string]string{"auth": "auth", "accounts": "accounts", "transactions": "ledger"}

// A stack's database roles are named after its database: PostgreSQL's roles
// belong to the whole server, and a second stack on the same server (another
// database on a CI runner or a workshop machine) must neither reset this
// one's passwords nor be able to log in to its database. For the default
// database "bank" the names are bank_<schema> (a service's runtime login),
// bank_<schema>_owner (its schema's owner, which migrates) and bank_audit
// (the audit verifier). postgres.Provision also refuses a role that another
// database's provisioning marked as its own.

// maxDatabaseName keeps the longest role name, <db>_accounts_owner, within
// PostgreSQL's 63 bytes.
const maxDatabaseName = 63 - len("_accounts_owner")

// roleSpec returns the roles of schema in database db, without passwords.
func roleSpec(db, schema string) postgres.RoleSpec {
	return postgres.RoleSpec{Schema: schema, Owner: db + "_" + schema + "_owner", Role: db + "_" + schema}
}

// auditReader is the login of the audit verifier (cmd/auditverify) in db:
// it may read every schema's audit_events and append verified heads to
// audit_anchors.heads, and nothing else, so the scheduled check holds no
// credential that could rewrite what it checks. Its group,
// audit.ReaderRole, holds no login and is shared by the stacks of a server:
// what it may read it is granted database by database.
func auditReader(db string) postgres.ReaderSpec {
	return postgres.ReaderSpec{
		Role:   db + "_audit",
		Group:  audit.ReaderRole,
		Tables: []string{"auth.audit_events", "accounts.audit_events", "ledger.audit_events"},
	}
}

// Config says where the stack lives and what it talks to.
type Config struct {
	Dir         string            // the .dev directory
	DatabaseURL string            // a superuser URL naming the bank database (created if missing)
	Addrs       Addrs             // listen addresses
	Env         map[string]string // extra BANK_* / OTEL_* variables passed to every process
	// AdminTOTP turns the bootstrap admin's MFA on (BANK_ADMIN_TOTP_SECRET_FILE),
	// with a secret kept in <Dir>/secrets/admin-totp (AdminTOTPFile), so that
	// the admin can make staff operations with BANK_STAFF_MFA required.
	// Needs BANK_ADMIN_EMAIL in Env. `make run` and the e2e suite set it.
	AdminTOTP bool
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

// LogDir is where the processes of the stack cfg describes write their logs:
// <dir>/logs for the database bank, and <dir>/logs/<database> for another,
// so that a second stack beside the first (BANK_DATABASE_URL naming another
// database) keeps logs of its own.
func (c Config) LogDir() (string, error) {
	_, db, err := splitDatabaseURL(c.DatabaseURL)
	if err != nil {
		return "", err
	}
	if db == "bank" {
		return filepath.Join(c.Dir, "logs"), nil
	}
	return filepath.Join(c.Dir, "logs", db), nil
}

// DefaultAddrs are the dev addresses of docs/api.md.
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
	// Migrate is the environment of each service's migrate command: its
	// BANK_DATABASE_URL is the schema owner's, which only that command
	// gets; the server runs with Env's, its runtime role's.
	Migrate map[string][]string
	// AuditURL is the database as the audit verifier's login (bank_audit
	// for the database bank), for cmd/auditverify: it may read the audit
	// tables and append verified heads to audit_anchors.heads.
	AuditURL string
}

// Prepare creates the dev PKI, signing-key and secrets directories (see
// PrepareFiles); the database with, for each service, a schema owner that
// migrates and a runtime login that owns nothing, both marked as this
// database's; the audit verifier's login and the anchor table it appends to;
// and the environment of each process and of each migrate command. It is
// idempotent: existing valid material is kept, and certificates due for
// renewal are renewed. It leaves the schemas for the services' migrate
// commands to fill (Migrate).
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
	adminTOTP := ""
	if cfg.AdminTOTP && cfg.Env["BANK_ADMIN_EMAIL"] != "" {
		adminTOTP = filepath.Join(secrets, AdminTOTPFile)
		if err := ensureTOTPSecret(adminTOTP); err != nil {
			return nil, err
		}
	}
	password := func(role string) (string, error) {
		return secretValue(filepath.Join(secrets, "db-"+role+".password"), 24)
	}
	specs := make([]postgres.RoleSpec, 0, len(schemas))
	urls, ownerURLs := map[string]string{}, map[string]string{}
	for _, svc := range slices.Sorted(maps.Keys(schemas)) {
		spec := roleSpec(db, schemas[svc])
		if spec.Password, err = password(spec.Role); err != nil {
			return nil, err
		}
		if spec.OwnerPassword, err = password(spec.Owner); err != nil {
			return nil, err
		}
		specs = append(specs, spec)
		urls[svc] = roleURL(cfg.DatabaseURL, spec.Role, spec.Password)
		ownerURLs[svc] = roleURL(cfg.DatabaseURL, spec.Owner, spec.OwnerPassword)
	}
	if err := postgres.Provision(ctx, admin, db, specs); err != nil {
		return nil, fmt.Errorf("provision database %q: %w", db, err)
	}
	reader := auditReader(db)
	if reader.Password, err = password(reader.Role); err != nil {
		return nil, err
	}
	if err := postgres.ProvisionReader(ctx, admin, db, reader); err != nil {
		return nil, fmt.Errorf("provision the audit reader in %q: %w", db, err)
	}
	if err := prepareAnchors(ctx, cfg.DatabaseURL, reader.Role); err != nil {
		return nil, fmt.Errorf("prepare the audit anchors in %q: %w", db, err)
	}
	p := &Prepared{Dir: cfg.Dir, CAFile: filepath.Join(pkiDir, "ca.pem"), Env: map[string][]string{}, Migrate: map[string][]string{},
		AuditURL: roleURL(cfg.DatabaseURL, reader.Role, reader.Password)}
	for svc, u := range ownerURLs {
		p.Migrate[svc] = []string{"BANK_DATABASE_URL=" + u}
	}
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
			env["BANK_PAGE_TOKEN_KEY_FILE"] = pageKey
			env["BANK_TOTP_KEY_FILE"] = filepath.Join(secrets, TOTPKeyFile)
			if adminTOTP != "" {
				env["BANK_ADMIN_TOTP_SECRET_FILE"] = adminTOTP
			}
		case "accounts", "transactions":
			env["BANK_PAGE_TOKEN_KEY_FILE"] = pageKey
		}
		for k, v := range env {
			p.Env[proc] = append(p.Env[proc], k+"="+v)
		}
	}
	return p, nil
}

// prepareAnchors creates the anchor table in the database dbURL (a
// superuser's) names, for writer to append to.
func prepareAnchors(ctx context.Context, dbURL, writer string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return audit.PrepareAnchors(ctx, conn, writer)
}

// PrepareFiles creates what Prepare writes to disk without a database: the
// dev PKI (renewing what is due), the secrets directory with the page-token
// key and the passwords of the database roles of cfg's database (bank if
// cfg names none), and, if cfg.ExportDir is set, each process's export
// directory.
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
	if err := ensureSecretFile(filepath.Join(secrets, TOTPKeyFile), 32); err != nil {
		return err
	}
	db := "bank"
	if cfg.DatabaseURL != "" {
		_, name, err := splitDatabaseURL(cfg.DatabaseURL)
		if err != nil {
			return err
		}
		db = name
	}
	logins := []string{auditReader(db).Role}
	for _, schema := range schemas {
		spec := roleSpec(db, schema)
		logins = append(logins, spec.Owner, spec.Role)
	}
	for _, role := range logins {
		if _, err := secretValue(filepath.Join(secrets, "db-"+role+".password"), 24); err != nil {
			return err
		}
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
	if len(db) > maxDatabaseName {
		return "", "", fmt.Errorf("BANK_DATABASE_URL names database %q: at most %d characters, so that its role names fit", db, maxDatabaseName)
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

// ensureTOTPSecret creates a TOTP secret file (20 random bytes in base32,
// 0600) if it is missing.
func ensureTOTPSecret(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)+"\n"), 0o600)
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
