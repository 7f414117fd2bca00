package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/platform/service"
	"github.com/bastion-bank/bastion/platform/telemetry"
	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
	"github.com/bastion-bank/bastion/services/auth/internal/postgres"
	"github.com/bastion-bank/bastion/services/auth/internal/rpc"
	"github.com/bastion-bank/bastion/services/auth/internal/tokens"
)

// How often the background loops run.
const (
	maintenanceEvery = 30 * time.Second // revocation resync and purge
	keyReloadEvery   = 30 * time.Second // pick up rotated keys, retire old ones
)

// app is the auth service's parts, built once by build.
type app struct {
	pool  *pgxpool.Pool
	store *postgres.Store
	revs  *domain.Revocations
	keys  *tokens.Keys
	svc   *domain.Service
}

// serve wires the service together and serves until ctx ends.
func serve(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, env, err := readSettings(getenv)
	if err != nil {
		return err
	}
	p, err := service.Start(ctx, service.Config{Name: "auth", PKIDir: cfg.PKIDir, TrustDomain: cfg.TrustDomain,
		MetricsAddr: cfg.MetricsAddr, Pprof: cfg.Pprof, OTLPEndpoint: cfg.OTLPEndpoint, LogLevel: cfg.LogLevel, LogOutput: stderr, Summary: env.Summary()})
	if err != nil {
		return err
	}
	defer p.Close(ctx)
	if err := p.LoadCertificate(); err != nil {
		return err
	}
	// closeDB stops the audit sealer after the server has drained (defers
	// run in reverse), so its last pass seals the final logins, and then
	// closes the pool.
	pool, closeDB, err := p.OpenDatabase(ctx, service.Database{URL: cfg.DatabaseURL, MaxConns: 20,
		Schema: postgres.Schema, Check: postgres.CheckSchema})
	if err != nil {
		return err
	}
	defer closeDB()
	a, err := build(ctx, pool, cfg, p.Tel)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: background loops end before the pool closes
	a.background(ctx, &wg, p.Logger)

	// Its verifier reads this process's own revocation list, loaded from
	// the database before it serves, so it has no feed to wait for.
	return p.Serve(ctx, cfg.Addr, grpcserver.Config{
		Verifier: a.keys.Verifier(token.VerifierConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, MaxLifetime: cfg.AccessTTL}, a.revs),
		StaffMFA: cfg.StaffMFA,
		Counters: p.Tel.Security(),
		Denials:  a.svc,
	}, func(g *grpc.Server) { rpc.Register(g, a.svc, a.keys, a.revs) })
}

// build loads the keys and builds the domain service on pool, whose
// schema is checked, then loads the revocations and ensures the admin.
func build(ctx context.Context, pool *pgxpool.Pool, cfg settings, tel *telemetry.Telemetry) (*app, error) {
	keys, err := tokens.OpenKeys(cfg.KeysDir, token.SignerConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTTL})
	if err != nil {
		return nil, err
	}
	hasher, err := password.NewHasher(password.OWASP(), password.PoolConfig{})
	if err != nil {
		return nil, err
	}
	policy, err := password.NewPolicy()
	if err != nil {
		return nil, err
	}
	pages, err := pagetoken.FromFile(cfg.PageTokenKey, tel.Logger())
	if err != nil {
		return nil, err
	}
	sealer, err := mfa.SealerFromFile(cfg.TOTPKeyFile)
	if err != nil {
		return nil, err
	}
	a := &app{pool: pool, store: postgres.New(pool, time.Now), revs: domain.NewRevocations(time.Now), keys: keys}
	a.svc, err = domain.New(domain.Config{MaxFailures: cfg.MaxFailures, AccountMaxFailures: cfg.AccountMax, Window: cfg.Window, RefreshTTL: cfg.RefreshTTL},
		domain.Deps{Store: a.store, Hasher: hasher, Policy: policy, Issuer: keys, Sealer: sealer, Revocations: a.revs, PageTokens: pages, Counters: tel.Security()})
	if err != nil {
		return nil, err
	}
	c := a.svc.Config()
	tel.Logger().InfoContext(ctx, "login throttling", "max_failures", c.MaxFailures, "account_max_failures", c.AccountMaxFailures,
		"ip_max_failures", c.IPMaxFailures,
		"window", c.Window.String(), "hash_workers", runtime.GOMAXPROCS(0))
	tel.Logger().InfoContext(ctx, "password policy", "length", fmt.Sprintf("%d-%d", password.MinLength, password.MaxLength),
		"normalisation", "NFKC", "common_passwords_refused", policy.Common())
	if err := a.revs.Sync(ctx, a.store); err != nil {
		return nil, err
	}
	if cfg.AdminEmail != "" {
		if err := a.svc.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return nil, adminError(err)
		}
		tel.Logger().InfoContext(ctx, "admin account ensured from BANK_ADMIN_EMAIL")
	}
	if cfg.AdminTOTPFile != "" {
		if err := ensureAdminTOTP(ctx, a.svc, cfg, tel.Logger()); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// ensureAdminTOTP turns MFA on for the bootstrap admin with the secret in
// BANK_ADMIN_TOTP_SECRET_FILE (the dev runner writes it), so that staff
// operations, which need a one-time code, work from the first start.
func ensureAdminTOTP(ctx context.Context, svc *domain.Service, cfg settings, log *slog.Logger) error {
	b, err := os.ReadFile(cfg.AdminTOTPFile)
	if err != nil {
		return fmt.Errorf("read BANK_ADMIN_TOTP_SECRET_FILE: %w", err)
	}
	secret, err := mfa.ParseSecret(string(b))
	if err != nil {
		return fmt.Errorf("BANK_ADMIN_TOTP_SECRET_FILE: %w", err)
	}
	enrolled, err := svc.EnsureAdminTOTP(ctx, cfg.AdminEmail, secret)
	if err != nil {
		return fmt.Errorf("enrol the bootstrap admin's TOTP: %w", err)
	}
	if enrolled {
		log.InfoContext(ctx, "the bootstrap admin's MFA is on, with the secret in BANK_ADMIN_TOTP_SECRET_FILE")
	} else {
		log.InfoContext(ctx, "the bootstrap admin's MFA was on already; BANK_ADMIN_TOTP_SECRET_FILE left it as it was")
	}
	return nil
}

// adminError names the variable at fault when EnsureAdmin refuses the
// bootstrap admin's email or password, with the rule it broke: an Invalid
// error's client-safe text alone ("invalid request") would not say.
func adminError(err error) error {
	e, ok := errs.As(err)
	if !ok || e.Kind != errs.Invalid {
		return err
	}
	if len(e.Violations) == 1 && e.Violations[0].Field == "password" {
		return fmt.Errorf("BANK_ADMIN_PASSWORD: the password %s", e.Violations[0].Message)
	}
	return fmt.Errorf("BANK_ADMIN_EMAIL: %w", err)
}

// background starts the loops that keep this replica in step with the
// others: the NOTIFY listener (resyncing on every reconnect), the periodic
// resync and purge, and the key-directory reload.
func (a *app) background(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) {
	warn := func(what string) func(error) {
		return func(err error) { log.WarnContext(ctx, what, "error", err.Error()) }
	}
	listener := postgres.NewListener(a.pool, a.revs.Add, func(ctx context.Context) {
		if err := a.revs.Sync(ctx, a.store); err != nil {
			warn("revocation resync after reconnect failed")(err)
		}
	}, warn("revocation listener interrupted; reconnecting"))
	for _, loop := range []func(){
		func() { listener.Run(ctx) },
		func() { a.svc.RunMaintenance(ctx, maintenanceEvery, warn("revocation resync or purge failed")) },
		func() { a.keys.Run(ctx, keyReloadEvery, warn("signing key reload failed; keeping the loaded keys")) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); loop() }()
	}
}
