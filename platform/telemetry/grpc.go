package telemetry

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc/stats"
)

// GRPCServerHandler returns the stats handler a gRPC server of this process
// uses (platform/grpcserver Config.StatsHandler): it records a span and the
// RPC metrics for every call it serves, continuing the trace the caller sent.
// It is built from this Telemetry's providers, not the OpenTelemetry
// globals, so every server is instrumented the same way whatever else has
// replaced them.
func (t *Telemetry) GRPCServerHandler() stats.Handler {
	return otelgrpc.NewServerHandler(t.otelgrpcOptions()...)
}

// GRPCClientHandler returns the stats handler for this process's
// connections to other services (platform/grpcclient Options.StatsHandler):
// it records a span and the RPC metrics for every call it makes and sends
// the trace context along, so a request is one trace across processes. One
// handler may serve every connection.
func (t *Telemetry) GRPCClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(t.otelgrpcOptions()...)
}

func (t *Telemetry) otelgrpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(t.tp),
		otelgrpc.WithMeterProvider(t.mp),
		otelgrpc.WithPropagators(t.prop),
	}
}
