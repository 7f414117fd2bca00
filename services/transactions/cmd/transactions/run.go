package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/service"
	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	ledgerpg "github.com/bastion-bank/bastion/services/transactions/internal/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/rpc"
)

// serviceName is this service's identity: its certificate's SPIFFE name and
// its telemetry name.
const serviceName = "transactions"

// pruneEvery is how often expired idempotency records are deleted.
const pruneEvery = time.Hour

// run is the whole program. "transactions serve" (or no argument) reads the
// configuration once, wires the service and serves until ctx ends (SIGINT or
// SIGTERM), then drains in-flight calls; "transactions migrate" brings the
// ledger schema up to date, as its owner, and exits (migrate.go).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Run(ctx, args, serviceName, func() error { return migrate(ctx, getenv, stdout) },
		func() (settings, service.Config, error) { return loadSettings(getenv, stderr) },
		func(s settings, p *service.Process) error { return serve(ctx, s, p) })
}

// serve builds, in order: the page token codec, the platform certificate,
// the database pool with its schema check and audit sealer, the connection
// to auth, the domain service and the gRPC server; starts the pruner; then
// serves until ctx ends.
func serve(ctx context.Context, s settings, p *service.Process) error {
	pages, err := pagetoken.FromFile(s.PageTokenKeyFile, p.Logger)
	if err != nil {
		return err
	}
	if err := p.LoadCertificate(); err != nil {
		return err
	}
	auditLog := audit.New(ledgerpg.Schema, time.Now)
	pool, closeDB, err := p.OpenDatabase(ctx, service.Database{URL: s.DatabaseURL, MaxConns: s.DBMaxConns,
		Schema: ledgerpg.Schema, Check: ledgerpg.CheckSchema, Audit: auditLog})
	if err != nil {
		return err
	}
	defer closeDB()
	authConn, err := p.Dial(s.AuthAddr, "auth")
	if err != nil {
		return err
	}
	defer authConn.Close()
	verifier := p.FollowAuth(ctx, authConn, token.VerifierConfig{Issuer: s.TokenIssuer, Audience: s.TokenAudience, MaxLifetime: s.AccessTTL})
	group := s.GroupCommit
	group.Metrics = p.Tel.MeterProvider() // bank_ledger_* on the metrics listener
	svc, err := domain.New(ledgerpg.New(pool, auditLog, group), domain.Config{Limits: s.Limits, Metrics: p.Tel.Security(), PageTokens: pages})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	pruneCtx, stopPruning := context.WithCancel(ctx)
	defer stopPruning()
	wg.Go(func() { prune(pruneCtx, svc, s.IdempotencyTTL, p.Logger) })
	// An account's owner and a transfer's sides are fixed when they are
	// written (ledger migrations 0001 and 0008 refuse to change them), so who
	// owns an id is remembered.
	owners := rbac.CacheOwners(svc, s.OwnerCache, "account", "transfer")
	return p.Serve(ctx, s.Addr, grpcserver.Config{
		Verifier: verifier,
		// User calls wait for a current list of revoked tokens: refused
		// with UNAVAILABLE, health NOT_SERVING, until auth's feed is in.
		RevocationsSynced: verifier.Synced,
		Owners:            owners,
		StaffMFA:          s.StaffMFA,
		Counters:          p.Tel.Security(),
		Denials:           svc,
	}, func(g *grpc.Server) { rpc.Register(g, svc, p.Tel.Security()) },
		"approval_threshold", s.Limits.ApprovalThreshold, "approval_daily_threshold", s.Limits.ApprovalDailyThreshold,
		"max_transfer", s.Limits.MaxTransfer, "daily_limit", s.Limits.DailyLimit, "deposit_daily_limit", s.Limits.DepositDailyLimit)
}

// prune deletes expired idempotency records and old usage rows now and then
// every pruneEvery, until ctx ends. A failure is logged and retried on the
// next tick: records are kept longer, never shorter.
func prune(ctx context.Context, svc *domain.Service, ttl time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		n, err := svc.Prune(ctx, ttl)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logger.ErrorContext(ctx, "pruning idempotency records failed", "error", err.Error())
		case n > 0:
			logger.InfoContext(ctx, "pruned idempotency records and usage rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
