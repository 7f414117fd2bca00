package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/deploy/devstack"
	"github.com/bastion-bank/bastion/platform/pki"
)

// run prepares and starts the stack and blocks until ctx ends or a process
// dies, renewing the dev certificates meanwhile. With the argument "prepare"
// it only creates the PKI, secrets and database roles in BANK_DEV_DIR (the
// Compose init job uses this) and returns.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "prepare" {
		return prepareOnly(ctx, getenv, stdout)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dev := filepath.Join(root, ".dev")
	admin, err := adminCredentials(getenv, dev)
	if err != nil {
		return err
	}
	cfg := devstack.Config{
		Dir:         dev,
		DatabaseURL: orDefault(getenv("BANK_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/bank?sslmode=disable"),
		Addrs:       addrs(getenv),
		Env:         passThrough(os.Environ()),
		AdminTOTP:   true,
	}
	cfg.Env["BANK_ADMIN_EMAIL"], cfg.Env["BANK_ADMIN_PASSWORD"] = admin.Email, admin.Password
	fmt.Fprintln(stdout, "Preparing dev PKI, signing keys and database in", dev)
	stopPostgres, err := devstack.EnsurePostgres(ctx, &cfg, stdout)
	if err != nil {
		return err
	}
	defer stopPostgres() // last: after the processes that use it have stopped
	prepared, err := devstack.Prepare(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Building auth, transactions, accounts and gateway …")
	bin := filepath.Join(dev, "bin")
	if err := devstack.Build(ctx, root, bin, false); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Migrating each schema as its owner …")
	if err := devstack.Migrate(ctx, prepared, bin); err != nil {
		return err
	}
	logDir, err := cfg.LogDir()
	if err != nil {
		return err
	}
	stack, err := devstack.Start(prepared, bin, logDir, baseEnv(os.Environ()))
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "\nStopping …")
		stack.Stop(15 * time.Second)
		fmt.Fprintln(stdout, "All processes stopped.")
	}()
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := stack.WaitReady(readyCtx, cfg.Addrs.Gateway, prepared.CAFile); err != nil {
		return err
	}
	if err := banner(stdout, root, cfg, prepared, admin, logDir); err != nil {
		return err
	}
	renewCtx, stopRenewing := context.WithCancel(ctx)
	renewing := make(chan struct{})
	go func() {
		defer close(renewing)
		devstack.KeepRenewed(renewCtx, cfg, devstack.RenewEvery, pki.Options{}, func(renewed []string, err error) {
			reportRenewal(stdout, stderr, renewed, err)
		})
	}()
	// Stop renewing before the deferred stop above prints, so the two never
	// write at once.
	defer func() { stopRenewing(); <-renewing }()
	select {
	case <-ctx.Done():
		return nil
	case e := <-stack.Exits():
		fmt.Fprintf(stderr, "%s exited unexpectedly (%v); its log: %s\n", e.Name, e.Err, filepath.Join(stack.LogDir, e.Name+".log"))
		return fmt.Errorf("%s died", e.Name)
	}
}

// reportRenewal tells the developer what the runner renewed while the stack
// runs, or why it could not.
func reportRenewal(stdout, stderr io.Writer, renewed []string, err error) {
	if len(renewed) > 0 {
		fmt.Fprintf(stdout, "%s  renewed dev certificates: %s (the processes load them for new connections)\n",
			time.Now().Format(time.DateTime), strings.Join(renewed, ", "))
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s  certificate renewal failed, retrying in %v: %v\n", time.Now().Format(time.DateTime), devstack.RenewEvery, err)
	}
}

// prepareOnly creates the dev material and database roles without starting
// anything, and with BANK_DEV_EXPORT_DIR set, each process's export
// directory. Run again, it renews the certificates that are due.
func prepareOnly(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	dir := getenv("BANK_DEV_DIR")
	dbURL := getenv("BANK_DATABASE_URL")
	if dir == "" || dbURL == "" {
		return errors.New("prepare needs BANK_DEV_DIR and BANK_DATABASE_URL")
	}
	cfg := devstack.Config{Dir: dir, DatabaseURL: dbURL, Addrs: addrs(getenv), ExportDir: getenv("BANK_DEV_EXPORT_DIR")}
	if _, err := devstack.Prepare(ctx, cfg); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "prepared", dir)
	if cfg.ExportDir != "" {
		fmt.Fprintln(stdout, "exported each process's own material to", cfg.ExportDir)
	}
	return nil
}

// credentials are the first admin's login.
type credentials struct {
	Email, Password string
	Generated       bool
}

// adminCredentials takes BANK_ADMIN_EMAIL/BANK_ADMIN_PASSWORD if set, else a
// generated password kept in .dev/secrets so every run prints the same one.
func adminCredentials(getenv func(string) string, dev string) (credentials, error) {
	email, pw := getenv("BANK_ADMIN_EMAIL"), getenv("BANK_ADMIN_PASSWORD")
	if email != "" && pw != "" {
		return credentials{Email: email, Password: pw}, nil
	}
	if email == "" {
		email = "admin@bastion.local"
	}
	path := filepath.Join(dev, "secrets", "admin-password")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 16 {
		return credentials{Email: email, Password: strings.TrimSpace(string(b)), Generated: true}, nil
	}
	pw = rand.Text() // 26 characters of base32: 130 bits, shell- and JSON-safe
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return credentials{}, err
	}
	if err := os.WriteFile(path, []byte(pw), 0o600); err != nil {
		return credentials{}, err
	}
	return credentials{Email: email, Password: pw, Generated: true}, nil
}

// addrs returns the listen addresses: docs/api.md's defaults, each overridable.
// A process's own BANK_METRICS_ADDR cannot tell four processes apart, so the
// runner takes one variable per process and sets BANK_METRICS_ADDR itself.
func addrs(getenv func(string) string) devstack.Addrs {
	d := devstack.DefaultAddrs()
	return devstack.Addrs{
		Gateway:             orDefault(getenv("BANK_GATEWAY_ADDR"), d.Gateway),
		Auth:                orDefault(getenv("BANK_AUTH_ADDR"), d.Auth),
		Accounts:            orDefault(getenv("BANK_ACCOUNTS_ADDR"), d.Accounts),
		Transactions:        orDefault(getenv("BANK_TRANSACTIONS_ADDR"), d.Transactions),
		GatewayMetrics:      orDefault(getenv("BANK_GATEWAY_METRICS_ADDR"), d.GatewayMetrics),
		AuthMetrics:         orDefault(getenv("BANK_AUTH_METRICS_ADDR"), d.AuthMetrics),
		AccountsMetrics:     orDefault(getenv("BANK_ACCOUNTS_METRICS_ADDR"), d.AccountsMetrics),
		TransactionsMetrics: orDefault(getenv("BANK_TRANSACTIONS_METRICS_ADDR"), d.TransactionsMetrics),
	}
}

// passThrough keeps the BANK_* and OTEL_* variables of the runner's
// environment for the processes (docs/api.md: the knobs pass through).
func passThrough(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(k, "BANK_") || strings.HasPrefix(k, "OTEL_")) && !runnerOwned(k) {
			out[k] = v
		}
	}
	return out
}

// runnerOwned reports whether the runner sets k itself for each process:
// addresses, the per-service database URLs and the paths under .dev. A
// value from the shell must not override them.
func runnerOwned(k string) bool {
	switch k {
	case "BANK_DATABASE_URL", "BANK_PKI_DIR", "BANK_KEYS_DIR", "BANK_PAGE_TOKEN_KEY_FILE", "BANK_METRICS_ADDR",
		"BANK_TOTP_KEY_FILE", "BANK_ADMIN_TOTP_SECRET_FILE":
		return true
	}
	return strings.HasSuffix(k, "_ADDR")
}

// baseEnv is what every process inherits besides its BANK_* settings.
func baseEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "TMPDIR", "LANG", "TZ":
			out = append(out, kv)
		}
	}
	return out
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me from inside the Bastion repository (no go.work found)")
		}
		dir = parent
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func banner(w io.Writer, root string, cfg devstack.Config, p *devstack.Prepared, admin credentials, logDir string) error {
	rel := func(path string) string {
		if r, err := filepath.Rel(root, path); err == nil {
			return r
		}
		return path
	}
	return devstack.WriteBanner(w, devstack.BannerInfo{Addrs: cfg.Addrs, CAFile: rel(p.CAFile), LogDir: rel(logDir),
		AdminEmail: admin.Email, AdminPassword: admin.Password, Generated: admin.Generated,
		AdminTOTPFile: rel(filepath.Join(cfg.Dir, "secrets", devstack.AdminTOTPFile)), TOTPCommand: "go run ./deploy/cmd/totp"})
}
