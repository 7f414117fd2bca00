package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger"
	accountspg "github.com/bastion-bank/bastion/services/accounts/internal/postgres"
	"github.com/bastion-bank/bastion/services/accounts/internal/rpc"
)

// serviceName is this service's identity: its certificate's SPIFFE name and
// its telemetry name.
const serviceName = "accounts"

// run is the whole program. "accounts serve" (or no argument) reads the
// configuration once, wires the service and serves until ctx ends (SIGINT or
// SIGTERM), then drains in-flight calls; "accounts migrate" brings the
// accounts schema up to date, as its owner, and exits (migrate.go).
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
// database pool and schema, the audit sealer, the connections to auth and
// the ledger, the domain service and the gRPC server; then serves until ctx
// ends.
func serve(ctx context.Context, s settings, tel *telemetry.Telemetry) error {
	logger := tel.Logger()
	codec, err := pagetoken.FromFile(s.PageTokenKeyFile, logger)
	if err != nil {
		return err
	}
	src, err := mtls.NewSource(mtls.FilesIn(s.PKIDir, serviceName), s.TrustDomain)
	if err != nil {
		return fmt.Errorf("load the accounts certificate from %s: %w", s.PKIDir, err)
	}
	src.LogReloadErrors(logger, "platform certificate")
	pool, err := postgres.Open(ctx, s.DatabaseURL, postgres.PoolConfig{ApplicationName: serviceName, TracerProvider: tel.TracerProvider()})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	if err := accountspg.CheckSchema(ctx, pool, logger); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	// Stopped after the server has drained (defers run in reverse), so its
	// last pass seals the final changes, and before the pool closes.
	defer audit.New(accountspg.Schema, time.Now).StartSealer(pool, logger)()
	authConn, ledgerConn, err := dialUpstreams(s, src, tel)
	if err != nil {
		return err
	}
	defer authConn.Close()
	defer ledgerConn.Close()
	verifier := followAuth(ctx, s, authConn, logger)
	svc, err := domain.NewService(accountspg.New(pool, time.Now),
		ledger.New(transactionsv1.NewLedgerServiceClient(ledgerConn)),
		domain.Config{MaxOpenPerUser: s.MaxAccountsPerUser, PageTokens: codec, Metrics: tel.Security()})
	if err != nil {
		return err
	}
	return listenAndServe(ctx, s, src, tel, verifier, svc)
}

// dialUpstreams connects, over mTLS, to the auth service (keys and
// revocations) and the transactions service (the ledger).
func dialUpstreams(s settings, src *mtls.Source, tel *telemetry.Telemetry) (authConn, ledgerConn *grpc.ClientConn, err error) {
	stats := tel.GRPCClientHandler()
	authConn, err = grpcclient.Dial(s.AuthAddr, src.ClientCredentials("auth"), grpcclient.Options{StatsHandler: stats})
	if err != nil {
		return nil, nil, fmt.Errorf("dial auth: %w", err)
	}
	ledgerConn, err = grpcclient.Dial(s.TransactionsAddr, src.ClientCredentials("transactions"), grpcclient.Options{StatsHandler: stats})
	if err != nil {
		authConn.Close()
		return nil, nil, fmt.Errorf("dial transactions: %w", err)
	}
	return authConn, ledgerConn, nil
}

// listenAndServe builds the gRPC server with the platform's chain, svc as
// the ownership resolver and every denial audited, and serves on s.Addr.
func listenAndServe(ctx context.Context, s settings, src *mtls.Source, tel *telemetry.Telemetry, verifier *authclient.Verifier, svc *domain.Service) error {
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
	rpc.Register(srv.GRPC(), svc)
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	logger.Info("accounts service listening", "addr", lis.Addr().String())
	if err := srv.Serve(ctx, lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	logger.Info("accounts service stopped")
	return nil
}

// followAuth returns a token verifier whose keys come from the auth
// service's JWKS and whose revocations follow its feed, in the background
// until ctx ends. It does not wait: the server refuses user calls until the
// feed's first snapshot is in (grpcserver.Config.RevocationsSynced).
func followAuth(ctx context.Context, s settings, conn *grpc.ClientConn, logger *slog.Logger) *authclient.Verifier {
	return authclient.Follow(ctx, conn, token.VerifierConfig{Issuer: s.TokenIssuer, Audience: s.TokenAudience, MaxLifetime: s.AccessTTL}, logger)
}
