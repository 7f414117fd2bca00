package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/authclient"
	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/telemetry"
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
	switch cmd := command(args); cmd {
	case "migrate":
		return migrate(ctx, getenv, stdout)
	case "serve":
	default:
		return fmt.Errorf("unknown command %q; usage: %s [serve | migrate]", cmd, serviceName)
	}
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: serviceName, MetricsAddr: s.MetricsAddr, Pprof: s.Pprof, OTLPEndpoint: s.OTLPEndpoint,
		LogLevel: s.LogLevel, LogOutput: stderr,
	})
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) }()
	tel.Logger().LogAttrs(ctx, slog.LevelInfo, "configuration", s.summary...)
	if err := tel.StartAdmin(ctx); err != nil {
		return err
	}
	return serve(ctx, s, tel)
}

// serve builds, in order: the page token codec, the mTLS source, the
// database pool and schema, the audit sealer, the connection to auth, the
// domain service and the gRPC server; starts the pruner; then serves until
// ctx ends.
func serve(ctx context.Context, s settings, tel *telemetry.Telemetry) error {
	logger := tel.Logger()
	pages, err := pagetoken.FromFile(s.PageTokenKeyFile, logger)
	if err != nil {
		return err
	}
	src, err := mtls.NewSource(mtls.FilesIn(s.PKIDir, serviceName), s.TrustDomain)
	if err != nil {
		return fmt.Errorf("load the transactions certificate from %s: %w", s.PKIDir, err)
	}
	src.LogReloadErrors(logger, "platform certificate")
	pool, err := postgres.Open(ctx, s.DatabaseURL, postgres.PoolConfig{ApplicationName: serviceName,
		MaxConns: int32(s.DBMaxConns), TracerProvider: tel.TracerProvider()})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	if err := ledgerpg.CheckSchema(ctx, pool, logger); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	auditLog := audit.New(ledgerpg.Schema, time.Now)
	// Stopped after the server has drained (defers run in reverse), so its
	// last pass seals the final transfers, and before the pool closes.
	defer auditLog.StartSealer(pool, logger)()
	authConn, err := grpcclient.Dial(s.AuthAddr, src.ClientCredentials("auth"), grpcclient.Options{StatsHandler: tel.GRPCClientHandler()})
	if err != nil {
		return fmt.Errorf("dial auth: %w", err)
	}
	defer authConn.Close()
	verifier := followAuth(ctx, s, authConn, logger)
	svc, err := domain.New(ledgerpg.New(pool, auditLog, s.GroupCommit), domain.Config{Limits: s.Limits, Metrics: tel.Security()})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	pruneCtx, stopPruning := context.WithCancel(ctx)
	defer stopPruning()
	wg.Go(func() { prune(pruneCtx, svc, s.IdempotencyTTL, logger) })
	return listenAndServe(ctx, s, src, tel, verifier, svc, pages)
}

// listenAndServe builds the gRPC server with the platform's chain, svc as
// the ownership resolver and every denial audited, and serves on s.Addr.
func listenAndServe(ctx context.Context, s settings, src *mtls.Source, tel *telemetry.Telemetry,
	verifier *authclient.Verifier, svc *domain.Service, pages *pagetoken.Codec) error {
	logger := tel.Logger()
	peer := func(ctx context.Context) (string, error) { return mtls.ServiceFromPeer(ctx, s.TrustDomain) }
	srv, err := grpcserver.New(grpcserver.Config{
		Name:        serviceName,
		Credentials: src.ServerCredentials(),
		Peer:        peer,
		Verifier:    verifier,
		// User calls wait for a current list of revoked tokens: refused
		// with UNAVAILABLE, health NOT_SERVING, until auth's feed is in.
		RevocationsSynced: verifier.Synced,
		Owners:            svc,
		StaffMFA:          s.StaffMFA,
		Counters:          tel.Security(),
		Denials:           svc,
		StatsHandler:      tel.GRPCServerHandler(),
		Logger:            logger,
	})
	if err != nil {
		return err
	}
	rpc.Register(srv.GRPC(), svc, pages, tel.Security())
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	logger.Info("transactions service listening", "addr", lis.Addr().String(),
		"approval_threshold", s.Limits.ApprovalThreshold, "approval_daily_threshold", s.Limits.ApprovalDailyThreshold,
		"max_transfer", s.Limits.MaxTransfer, "daily_limit", s.Limits.DailyLimit, "deposit_daily_limit", s.Limits.DepositDailyLimit)
	if err := srv.Serve(ctx, lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	logger.Info("transactions service stopped")
	return nil
}

// followAuth returns a token verifier whose keys come from the auth
// service's JWKS and whose revocations follow its feed, in the background
// until ctx ends. It does not wait: the server refuses user calls until the
// feed's first snapshot is in (grpcserver.Config.RevocationsSynced).
func followAuth(ctx context.Context, s settings, conn *grpc.ClientConn, logger *slog.Logger) *authclient.Verifier {
	return authclient.Follow(ctx, conn, token.VerifierConfig{Issuer: s.TokenIssuer, Audience: s.TokenAudience, MaxLifetime: s.AccessTTL}, logger)
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
