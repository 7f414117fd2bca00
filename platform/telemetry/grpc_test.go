package telemetry

import (
	"context"
	"encoding/json"
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

	"github.com/bastion-bank/bastion/platform/grpctest"
)

// TestGRPCHandlersUseThisTelemetry is not parallel: it swaps the
// OpenTelemetry globals for no-ops, so that a handler built from them instead
// of from the Telemetry would record nothing and break the trace between
// client and server.
func TestGRPCHandlersUseThisTelemetry(t *testing.T) {
	// Export on, so that spans are recorded; the recorder sees them first.
	tel, err := Setup(context.Background(), Config{ServiceName: "grpc", LogOutput: io.Discard,
		exporter: tracetest.NewInMemoryExporter()})
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

// TestTraceIDCrossesTheCallWithExportOff: with export off (the default), a
// call between two processes records no span on either side, yet the
// server continues the client's trace: its log line and the exemplars of
// both processes' RPC metrics carry the client's trace id.
func TestTraceIDCrossesTheCallWithExportOff(t *testing.T) {
	t.Parallel()
	clientLogs, serverLogs := &grpctest.SyncBuffer{}, &grpctest.SyncBuffer{}
	client, err := Setup(context.Background(), Config{ServiceName: "gateway", LogOutput: clientLogs})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = client.Shutdown(context.Background()) }()
	server, err := Setup(context.Background(), Config{ServiceName: "accounts", LogOutput: serverLogs})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = server.Shutdown(context.Background()) }()

	type servedSpan struct {
		sc        trace.SpanContext
		recording bool
	}
	served := make(chan servedSpan, 1)
	logged := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		served <- servedSpan{trace.SpanContextFromContext(ctx), trace.SpanFromContext(ctx).IsRecording()}
		server.Logger().InfoContext(ctx, "rpc", "method", info.FullMethod)
		return h(ctx, req)
	}
	srv := grpc.NewServer(grpc.StatsHandler(server.GRPCServerHandler()), grpc.UnaryInterceptor(logged))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(client.GRPCClientHandler()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	ctx, span := client.TracerProvider().Tracer("test").Start(context.Background(), "GET /v1/accounts/{id}")
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check = %v", err)
	}
	recording := span.IsRecording()
	span.End()
	traceID := span.SpanContext().TraceID().String()
	if !span.SpanContext().IsValid() || recording {
		t.Fatalf("client span valid %v, recording %v; want valid, not recording", span.SpanContext().IsValid(), recording)
	}
	got := <-served
	if got.sc.TraceID().String() != traceID || got.recording {
		t.Errorf("server span trace %s, recording %v; want the client's %s, not recording", got.sc.TraceID(), got.recording, traceID)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lastLine(serverLogs.String())), &line); err != nil {
		t.Fatalf("server log %q: %v", serverLogs, err)
	}
	if line["msg"] != "rpc" || line[TraceIDKey] != traceID || line[SpanIDKey] == span.SpanContext().SpanID().String() {
		t.Errorf("server log line %v: want msg rpc with trace_id %s and a span id of the server's own", line, traceID)
	}
	for _, side := range []struct {
		tel    *Telemetry
		prefix string
	}{{client, "rpc_client_"}, {server, "rpc_server_"}} {
		// The server records its metric after the client has its answer.
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, body := scrapeAs(t, side.tel, openMetrics)
			if withExemplar(body, side.prefix, traceID) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("no %s* line with exemplar trace_id %s in\n%s", side.prefix, traceID, body)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// withExemplar reports whether a line of body starting with prefix has an
// exemplar naming traceID.
func withExemplar(body, prefix, traceID string) bool {
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, `trace_id="`+traceID+`"`) {
			return true
		}
	}
	return false
}
