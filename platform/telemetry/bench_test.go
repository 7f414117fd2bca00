package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/benchcpu"
)

// BenchmarkGRPCCall is one unary call between two processes' worth of
// telemetry as Setup builds it without an exporter (the default): the
// client's and the server's stats handlers (span, propagation, RPC
// metrics) and one log line per call on each side, as the platform chain
// writes, into io.Discard. The call itself is a health check over loopback
// without TLS, so what differs between two builds is the telemetry. Besides
// wall time it reports the process's CPU time per call (cpu-ns/op, both
// sides and the garbage collector), which other load on the machine
// disturbs less than ns/op.
func BenchmarkGRPCCall(b *testing.B) {
	client := benchTelemetry(b, "client")
	server := benchTelemetry(b, "server")
	logged := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		server.Logger().InfoContext(ctx, "rpc", "method", info.FullMethod, "code", "OK")
		return resp, err
	}
	srv := grpc.NewServer(grpc.StatsHandler(server.GRPCServerHandler()), grpc.UnaryInterceptor(logged))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(client.GRPCClientHandler()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	hc := healthpb.NewHealthClient(conn)
	tracer := client.TracerProvider().Tracer("bench")
	req := &healthpb.HealthCheckRequest{}
	b.ReportAllocs()
	b.ResetTimer()
	before := benchcpu.Time(b)
	for b.Loop() {
		ctx, span := tracer.Start(context.Background(), "request")
		if _, err := hc.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
		client.Logger().InfoContext(ctx, "request", "path", "/v1/x")
		span.End()
	}
	benchcpu.Report(b, before)
}

func benchTelemetry(b *testing.B, name string) *Telemetry {
	b.Helper()
	tel, err := Setup(context.Background(), Config{ServiceName: name, LogLevel: slog.LevelInfo, LogOutput: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// BenchmarkLogLine is one line shaped like the gateway's access log (twelve
// attributes: strings, integers, a float; inside a span, so the trace ids
// are added) through the handler NewLogger builds, into io.Discard: the
// redaction and the JSON encoding every request pays for. It reports the
// process's CPU time per line too (cpu-ns/op).
//
//	go test -run '^$' -bench BenchmarkLogLine -benchmem -count 6 ./platform/telemetry/
func BenchmarkLogLine(b *testing.B) {
	logger := NewLogger(io.Discard, slog.LevelInfo).With("log", "access")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	b.ReportAllocs()
	before := benchcpu.Time(b)
	for b.Loop() {
		logger.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", "JQ7ZK2M4XNWB5C6PRTVY3DHF8A"),
			slog.String("client_ip", "203.0.113.7"),
			slog.String("method", "POST"),
			slog.String("route", "/v1/transfers"),
			slog.Int("status", 200),
			slog.Int64("bytes", 412),
			slog.Float64("duration_ms", 1.234),
			slog.String("proto", "HTTP/2.0"),
			slog.String("user", "0b3c8f2e-5d7a-4e61-9a0b-6c2d1e4f5a7b"),
			slog.String("user_agent", "bankload/1"),
		)
	}
	benchcpu.Report(b, before)
}
