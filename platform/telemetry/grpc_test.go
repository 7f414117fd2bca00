package telemetry

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestGRPCHandlersUseThisTelemetry is not parallel: it swaps the
// OpenTelemetry globals for no-ops, so that a handler built from them instead
// of from the Telemetry would record nothing and break the trace between
// client and server.
func TestGRPCHandlersUseThisTelemetry(t *testing.T) {
	tel, err := Setup(context.Background(), Config{ServiceName: "grpc", LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	spans := tracetest.NewSpanRecorder()
	tel.TracerProvider().RegisterSpanProcessor(spans)
	tp, mp, prop := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tracenoop.NewTracerProvider())
	otel.SetMeterProvider(metricnoop.NewMeterProvider())
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	defer func() { otel.SetTracerProvider(tp); otel.SetMeterProvider(mp); otel.SetTextMapPropagator(prop) }()

	srv := grpc.NewServer(grpc.StatsHandler(tel.GRPCServerHandler()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(tel.GRPCClientHandler()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check = %v", err)
	}

	// The server ends its span after the client has its answer: wait for it.
	var client, server sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); (client == nil || server == nil) && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range spans.Ended() {
			switch s.SpanKind() {
			case trace.SpanKindClient:
				client = s
			case trace.SpanKindServer:
				server = s
			}
		}
	}
	if client == nil || server == nil {
		t.Fatalf("spans recorded: client %v, server %v; want one of each", client != nil, server != nil)
	}
	if server.Parent().SpanID() != client.SpanContext().SpanID() || server.SpanContext().TraceID() != client.SpanContext().TraceID() {
		t.Errorf("server span %v has parent %v, want the client span %v: the trace context did not cross",
			server.SpanContext().TraceID(), server.Parent().SpanID(), client.SpanContext().SpanID())
	}
	rec := httptest.NewRecorder()
	tel.metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"rpc_server_", "rpc_client_"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics has no %s* series: the handlers do not record to this Telemetry's meter provider", want)
		}
	}
}
