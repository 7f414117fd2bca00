// Package postgres holds the Postgres plumbing every Bastion service shares:
// opening a traced connection pool, applying embedded migrations, running a
// function in a transaction that is retried on serialization failures,
// provisioning a database with one locked-down role and schema per service,
// and turning Postgres errors into errs kinds.
//
// Each service owns one schema and connects as a role that can touch only
// that schema; Provision sets that up and Migrate fills the schema.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/errs"
)

// PoolConfig tunes the pool Open returns. Zero fields take the defaults
// noted beside them.
type PoolConfig struct {
	// ApplicationName shows up in pg_stat_activity and the server log, so an
	// operator can tell which service holds a lock. Default "bastion".
	ApplicationName string

	MaxConns        int32         // default 10
	MinConns        int32         // default 0
	MaxConnLifetime time.Duration // default 1h; bounds how long a failover takes to be noticed
	MaxConnIdleTime time.Duration // default 30m

	// StatementTimeout stops a runaway query from holding locks and a
	// connection forever. Default 30s; negative disables it.
	StatementTimeout time.Duration

	// ConnectTimeout bounds each connection attempt. Default 5s.
	ConnectTimeout time.Duration

	// StartupWait is how long Open keeps trying to reach Postgres before it
	// gives up, so a service started beside its database waits for it but
	// never hangs. Default 30s.
	StartupWait time.Duration

	// TracerProvider receives query spans; nil means the global provider.
	TracerProvider trace.TracerProvider
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.ApplicationName == "" {
		c.ApplicationName = "bastion"
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10
	}
	c.MinConns = min(max(c.MinConns, 0), c.MaxConns)
	c.MaxConnLifetime = orDefault(c.MaxConnLifetime, time.Hour)
	c.MaxConnIdleTime = orDefault(c.MaxConnIdleTime, 30*time.Minute)
	c.StatementTimeout = orDefault(c.StatementTimeout, 30*time.Second)
	c.ConnectTimeout = orDefault(c.ConnectTimeout, 5*time.Second)
	c.StartupWait = orDefault(c.StartupWait, 30*time.Second)
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Open returns a pool for url that traces every query with OpenTelemetry
// (statements, never their arguments) and applies cfg's limits. It waits up
// to cfg.StartupWait for Postgres to answer, then returns an Unavailable
// error. A malformed url is an Internal error whose cause never includes the
// password.
func Open(ctx context.Context, url string, cfg PoolConfig) (*pgxpool.Pool, error) {
	cfg = cfg.withDefaults()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "database misconfigured", err)
	}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = cfg.MinConns
	pc.MaxConnLifetime = cfg.MaxConnLifetime
	pc.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10 // replicas do not all reconnect at once
	pc.MaxConnIdleTime = cfg.MaxConnIdleTime
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pc.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
	if cfg.StatementTimeout > 0 {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	// otelpgx reads a connection's details through conn.Config(), which
	// copies the whole configuration, maps included, for every query: 15 % of
	// the bytes accounts allocated per balance read (docs/performance.md).
	// The same span attributes, computed once:
	cc := pc.ConnConfig
	opts := []otelpgx.Option{
		otelpgx.WithDisableConnectionDetailsInAttributes(),
		otelpgx.WithTracerAttributes(semconv.DBSystemNamePostgreSQL, semconv.ServerAddress(cc.Host),
			semconv.ServerPort(int(cc.Port)), semconv.UserName(cc.User), semconv.DBNamespace(cc.Database)),
	}
	if cfg.TracerProvider != nil {
		opts = append(opts, otelpgx.WithTracerProvider(cfg.TracerProvider))
	}
	pc.ConnConfig.Tracer = otelpgx.NewTracer(opts...)

	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "database misconfigured", err)
	}
	if err := waitReady(ctx, pool, cfg.StartupWait); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// waitReady pings pool until it answers, ctx ends or wait passes.
func waitReady(ctx context.Context, pool *pgxpool.Pool, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		err := pool.Ping(ctx)
		if err == nil {
			return nil
		}
		if isAuthError(err) {
			// Retrying a wrong password or a missing database cannot help.
			return errs.Wrap(errs.Internal, "database misconfigured", err)
		}
		select {
		case <-ctx.Done():
			return errs.Wrap(errs.Unavailable, "database unavailable", fmt.Errorf("no answer within %s: %w", wait, err))
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// isAuthError reports whether err is Postgres refusing us for good: bad
// credentials, an unknown database or role, or missing privilege.
func isAuthError(err error) bool {
	code := sqlState(err)
	return code == "28000" || code == "28P01" || code == "3D000" || code == "42501"
}

// sqlState returns err's SQLSTATE, or "" when it is not from Postgres.
func sqlState(err error) string {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		return pg.SQLState()
	}
	return ""
}
