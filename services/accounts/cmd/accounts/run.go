package main

import (
	"context"
	"io"
	"time"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/service"
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
	return service.Run(ctx, args, serviceName, func() error { return migrate(ctx, getenv, stdout) },
		func() (settings, service.Config, error) { return loadSettings(getenv, stderr) },
		func(s settings, p *service.Process) error { return serve(ctx, s, p) })
}

// serve builds, in order: the page token codec, the platform certificate,
// the database pool with its schema check and audit sealer, the connections
// to auth and the ledger, the domain service and the gRPC server; then
// serves until ctx ends.
func serve(ctx context.Context, s settings, p *service.Process) error {
	codec, err := pagetoken.FromFile(s.PageTokenKeyFile, p.Logger)
	if err != nil {
		return err
	}
	if err := p.LoadCertificate(); err != nil {
		return err
	}
	pool, closeDB, err := p.OpenDatabase(ctx, service.Database{URL: s.DatabaseURL, Schema: accountspg.Schema, Check: accountspg.CheckSchema})
	if err != nil {
		return err
	}
	defer closeDB()
	authConn, err := p.Dial(s.AuthAddr, "auth")
	if err != nil {
		return err
	}
	defer authConn.Close()
	ledgerConn, err := p.Dial(s.TransactionsAddr, "transactions")
	if err != nil {
		return err
	}
	defer ledgerConn.Close()
	verifier := p.FollowAuth(ctx, authConn, token.VerifierConfig{Issuer: s.TokenIssuer, Audience: s.TokenAudience, MaxLifetime: s.AccessTTL})
	svc, err := domain.NewService(accountspg.New(pool, time.Now),
		ledger.New(transactionsv1.NewLedgerServiceClient(ledgerConn)),
		domain.Config{MaxOpenPerUser: s.MaxAccountsPerUser, PageTokens: codec, Metrics: p.Tel.Security()})
	if err != nil {
		return err
	}
	// An account's owner is fixed when it is opened (migration 0002
	// refuses to change it), so who owns an id is remembered.
	owners := rbac.CacheOwners(svc, s.OwnerCache, "account")
	return p.Serve(ctx, s.Addr, grpcserver.Config{
		Verifier: verifier,
		// User calls wait for a current list of revoked tokens: refused
		// with UNAVAILABLE, health NOT_SERVING, until auth's feed is in.
		RevocationsSynced: verifier.Synced,
		Owners:            owners,
		StaffMFA:          s.StaffMFA,
		Counters:          p.Tel.Security(),
		Denials:           svc,
	}, func(g *grpc.Server) { rpc.Register(g, svc) })
}
