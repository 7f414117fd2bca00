package postgres_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/benchcpu"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

// BenchmarkQueryInRequest is one query inside a request's span, with the
// process's telemetry as Setup builds it without an exporter (the
// default), as a service's handler makes it: the span otelpgx would add
// for the query, and its attributes, are what differs between two builds.
// It reports the Go process's CPU time per query (cpu-ns/op, the
// database's own not included) besides wall time.
func BenchmarkQueryInRequest(b *testing.B) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "bench", LogOutput: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	pool, err := postgres.Open(context.Background(), packageURL, postgres.PoolConfig{ApplicationName: "postgres_bench",
		StartupWait: 5 * time.Second, TracerProvider: tel.TracerProvider()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	tracer := tel.TracerProvider().Tracer("bench")
	b.ReportAllocs()
	b.ResetTimer()
	before := benchcpu.Time(b)
	for b.Loop() {
		ctx, span := tracer.Start(context.Background(), "request")
		var n int64
		if err := pool.QueryRow(ctx, "SELECT $1::bigint", int64(42)).Scan(&n); err != nil || n != 42 {
			b.Fatalf("SELECT = %d, %v", n, err)
		}
		span.End()
	}
	benchcpu.Report(b, before)
}
