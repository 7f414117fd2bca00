// Package service is the wiring every Bastion gRPC service does the same
// way, so that a service's run.go says only what is its own: telemetry and
// the admin endpoint, the platform certificate, the database with its
// schema check and audit sealer, the connection to auth and the token
// verifier that follows it, and the gRPC server with the platform chain,
// listening until its context ends.
//
// It is plain constructor calls in a fixed order, no framework: a service
// that needs a step done differently does that step itself.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/authclient"
	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/service/gctune"
	"github.com/bastion-bank/bastion/platform/telemetry"
	"github.com/bastion-bank/bastion/platform/token"
)

// Command returns the subcommand args names: "serve" when there is none.
func Command(args []string) string {
	if len(args) > 1 {
		return args[1]
	}
	return "serve"
}

// Config is what Start needs, read by the service from its settings.
type Config struct {
	Name         string // the service's identity: certificate, telemetry and database application name
	PKIDir       string // BANK_PKI_DIR: ca.pem, <Name>.pem, <Name>-key.pem
	TrustDomain  string // BANK_TRUST_DOMAIN
	MetricsAddr  string // BANK_METRICS_ADDR
	Pprof        string // BANK_PPROF: profiling endpoints on the metrics listener (telemetry.Config.Pprof)
	OTLPEndpoint string // OTEL_EXPORTER_OTLP_ENDPOINT
	LogLevel     slog.Level
	LogOutput    io.Writer   // the process's stderr
	Summary      []slog.Attr // the configuration as config.Env.Summary gives it, logged once
}

// Process is a started service process: its telemetry, its logger and its
// platform certificate. Close it when the process ends.
type Process struct {
	Name   string
	Tel    *telemetry.Telemetry
	Logger *slog.Logger
	Source *mtls.Source // the platform certificate, once LoadCertificate has run
	pkiDir string
	trust  string
}

// Start sets up telemetry, applies the garbage collector's defaults unless
// GOGC or GOMEMLIMIT is set (platform/service/gctune), logs the
// configuration and starts the admin endpoint (/metrics), in that order.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: cfg.Name, MetricsAddr: cfg.MetricsAddr, Pprof: cfg.Pprof, OTLPEndpoint: cfg.OTLPEndpoint,
		LogLevel: cfg.LogLevel, LogOutput: cfg.LogOutput,
	})
	if err != nil {
		return nil, err
	}
	p := &Process{Name: cfg.Name, Tel: tel, Logger: tel.Logger(), pkiDir: cfg.PKIDir, trust: cfg.TrustDomain}
	gctune.Apply(p.Logger)
	p.Logger.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Summary...)
	if err := tel.StartAdmin(ctx); err != nil {
		p.Close(ctx)
		return nil, err
	}
	return p, nil
}

// LoadCertificate loads the process's platform certificate from the PKI
// directory, reloading it when it is renewed. It is a step of its own so
// that a service reads its own files (a page-token key) first, and a bad
// one is reported before a missing certificate.
func (p *Process) LoadCertificate() error {
	src, err := mtls.NewSource(mtls.FilesIn(p.pkiDir, p.Name), p.trust)
	if err != nil {
		return fmt.Errorf("load the %s certificate from %s: %w", p.Name, p.pkiDir, err)
	}
	src.LogReloadErrors(p.Logger, "platform certificate")
	p.Source = src
	return nil
}

// Close flushes and stops the telemetry; ctx's cancellation does not cut
// the flush short.
func (p *Process) Close(ctx context.Context) {
	_ = p.Tel.Shutdown(context.WithoutCancel(ctx))
}

// Peer returns the calling service named by the verified mTLS chain.
func (p *Process) Peer(ctx context.Context) (string, error) {
	return mtls.ServiceFromPeer(ctx, p.trust)
}

// Database is what OpenDatabase needs to know of a service's schema.
type Database struct {
	URL      string // BANK_DATABASE_URL, as the service's runtime role
	MaxConns int    // 0 keeps platform/postgres's default
	Schema   string // the schema the service owns; its audit chain is sealed
	// Check refuses a database whose schema the migrate command has not
	// brought up to date (each service's postgres.CheckSchema).
	Check func(context.Context, *pgxpool.Pool, *slog.Logger) error
	// Audit is the schema's audit log, if the service writes to it itself;
	// nil makes one for Schema.
	Audit *audit.Log
}

// OpenDatabase opens the pool, checks the schema and starts the audit
// sealer. closeDB stops the sealer, whose last pass seals the final changes,
// then closes the pool: defer it before serving, so that it runs after the
// server has drained.
func (p *Process) OpenDatabase(ctx context.Context, db Database) (pool *pgxpool.Pool, closeDB func(), err error) {
	pool, err = postgres.Open(ctx, db.URL, postgres.PoolConfig{ApplicationName: p.Name,
		MaxConns: int32(db.MaxConns), TracerProvider: p.Tel.TracerProvider()})
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	if err := db.Check(ctx, pool, p.Logger); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("database: %w", err)
	}
	log := db.Audit
	if log == nil {
		log = audit.New(db.Schema, time.Now)
	}
	stopSealer := log.StartSealer(pool, p.Logger)
	return pool, func() { stopSealer(); pool.Close() }, nil
}

// Dial connects, over mTLS, to the service name at addr, checking that its
// certificate names it.
func (p *Process) Dial(addr, name string) (*grpc.ClientConn, error) {
	conn, err := grpcclient.Dial(addr, p.Source.ClientCredentials(name), grpcclient.Options{StatsHandler: p.Tel.GRPCClientHandler()})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", name, err)
	}
	return conn, nil
}

// FollowAuth returns a token verifier whose keys come from the auth
// service's JWKS over conn and whose revocations follow its feed, in the
// background until ctx ends. It does not wait: a server given its Synced
// refuses user calls until the feed's first snapshot is in
// (grpcserver.Config.RevocationsSynced).
func (p *Process) FollowAuth(ctx context.Context, conn grpc.ClientConnInterface, cfg token.VerifierConfig) *authclient.Verifier {
	return authclient.Follow(ctx, conn, cfg, p.Logger)
}

// Serve builds the gRPC server from cfg, with the process's name,
// credentials, peer check, stats handler and logger wherever cfg leaves
// them unset; register adds the service's API to it. It listens on addr,
// logs that it does with attrs, and serves until ctx ends, then drains
// in-flight calls.
func (p *Process) Serve(ctx context.Context, addr string, cfg grpcserver.Config, register func(*grpc.Server), attrs ...any) error {
	if cfg.Name == "" {
		cfg.Name = p.Name
	}
	if cfg.Credentials == nil {
		cfg.Credentials = p.Source.ServerCredentials()
	}
	if cfg.Peer == nil {
		cfg.Peer = p.Peer
	}
	if cfg.StatsHandler == nil {
		cfg.StatsHandler = p.Tel.GRPCServerHandler()
	}
	if cfg.Logger == nil {
		cfg.Logger = p.Logger
	}
	srv, err := grpcserver.New(cfg)
	if err != nil {
		return err
	}
	register(srv.GRPC())
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	p.Logger.Info(p.Name+" service listening", append([]any{"addr", lis.Addr().String()}, attrs...)...)
	if err := srv.Serve(ctx, lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	p.Logger.Info(p.Name + " service stopped")
	return nil
}

// Run is the body of a service program's run for its two commands: "serve"
// (or no argument) calls load for the settings and the process's Config,
// starts the process, calls serve with both and closes the process when
// serve returns; "migrate" calls migrate. Any other command is refused with
// the usage.
func Run[S any](ctx context.Context, args []string, name string, migrate func() error,
	load func() (S, Config, error), serve func(S, *Process) error) error {
	switch cmd := Command(args); cmd {
	case "migrate":
		return migrate()
	case "serve":
	default:
		return fmt.Errorf("unknown command %q; usage: %s [serve | migrate]", cmd, name)
	}
	s, cfg, err := load()
	if err != nil {
		return err
	}
	p, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close(ctx)
	return serve(s, p)
}
