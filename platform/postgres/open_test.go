package postgres_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
)

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		cfg                  postgres.PoolConfig
		wantApp, wantTimeout string
		wantMaxConns         int32
	}{
		{"defaults", postgres.PoolConfig{}, "bastion", "30s", 10},
		{"custom", postgres.PoolConfig{ApplicationName: "accounts", StatementTimeout: 1500 * time.Millisecond, MaxConns: 3, MinConns: 7}, "accounts", "1500ms", 3},
		{"timeout off", postgres.PoolConfig{StatementTimeout: -1}, "bastion", "0", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, err := postgres.Open(context.Background(), packageURL, tt.cfg)
			if err != nil {
				t.Fatalf("Open() error = %v", err)
			}
			defer pool.Close()
			var app, timeout string
			err = pool.QueryRow(context.Background(), "SELECT current_setting('application_name'), current_setting('statement_timeout')").Scan(&app, &timeout)
			if err != nil {
				t.Fatal(err)
			}
			if app != tt.wantApp || timeout != tt.wantTimeout {
				t.Errorf("Open(%+v): application_name %q, statement_timeout %q; want %q, %q", tt.cfg, app, timeout, tt.wantApp, tt.wantTimeout)
			}
			if c := pool.Config(); c.MaxConns != tt.wantMaxConns || c.MinConns > c.MaxConns {
				t.Errorf("Open(%+v): MaxConns %d MinConns %d, want MaxConns %d and MinConns <= MaxConns", tt.cfg, c.MaxConns, c.MinConns, tt.wantMaxConns)
			}
		})
	}
}

func TestOpenStatementTimeoutStopsRunawayQuery(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(context.Background(), packageURL, postgres.PoolConfig{StatementTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	start := time.Now()
	_, err = pool.Exec(context.Background(), "SELECT pg_sleep(5)")
	if sqlState(err) != "57014" || time.Since(start) > 3*time.Second {
		t.Errorf("pg_sleep(5) with a 100ms timeout: error %v after %v, want query_canceled quickly", err, time.Since(start))
	}
}

func TestOpenTracesWithoutArguments(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	pool, err := postgres.Open(context.Background(), packageURL, postgres.PoolConfig{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const secret = "correct-horse-battery-staple"
	// Queries are traced inside a request's span, never on their own.
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	var got string
	if err := pool.QueryRow(ctx, "SELECT $1::text", secret).Scan(&got); err != nil {
		t.Fatal(err)
	}
	span.End()
	spans := rec.Ended()
	found := false
	for _, s := range spans {
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.String(), "SELECT $1::text") {
				found = true
			}
			if strings.Contains(a.Value.String(), secret) {
				t.Errorf("span %q attribute %s = %q: query arguments must not be traced", s.Name(), a.Key, a.Value.String())
			}
		}
	}
	if !found {
		t.Errorf("no span recorded the query among %d spans", len(spans))
	}
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name     string
		url      string
		wantKind errs.Kind
		maxWait  time.Duration
	}{
		{"unreachable waits then gives up", "postgres://postgres:hunter2secret@" + closed + "/x?sslmode=disable", errs.Unavailable, 3 * time.Second},
		{"malformed url", "postgres://postgres:hunter2secret@127.0.0.1/x?sslmode=bogus", errs.Internal, time.Second},
		{"missing database does not wait", urlAs(t, packageURL, "postgres", "no_such_db_"+suffix()), errs.Internal, 2 * time.Second},
		{"unknown role does not wait", urlAs(t, packageURL, "no_such_role_"+suffix(), ""), errs.Internal, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			pool, err := postgres.Open(context.Background(), tt.url, postgres.PoolConfig{StartupWait: 400 * time.Millisecond, ConnectTimeout: 200 * time.Millisecond})
			if err == nil {
				pool.Close()
			}
			if errs.KindOf(err) != tt.wantKind {
				t.Fatalf("Open(%q) error = %v, want kind %v", tt.url, err, tt.wantKind)
			}
			if el := time.Since(start); el > tt.maxWait {
				t.Errorf("Open(%q) took %v, want under %v", tt.url, el, tt.maxWait)
			}
			if strings.Contains(err.Error(), "hunter2secret") || strings.Contains(errs.SafeMessage(err), "postgres") {
				t.Errorf("Open(%q) error %q leaks the URL", tt.url, err)
			}
		})
	}
}
