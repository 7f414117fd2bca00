package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"sync"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"
)

// span is what the tests need of one exported span.
type span struct {
	TraceID, SpanID, ParentID string
	Service, Name             string
	Server                    bool // the span of a call served, not made
	Attrs                     map[string]string
	Events                    []spanEvent
	Links                     []string // the trace id of each link
	Raw                       string   // the whole span as exported, to search for secrets
}

// spanEvent is one event of a span, with its attributes as plain text.
type spanEvent struct {
	Name  string
	Attrs map[string]string
}

// receiver is a minimal OTLP/gRPC trace collector that keeps every span in memory.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  string
	srv   *grpc.Server
	mu    sync.Mutex
	spans []span
}

func startReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{addr: l.Addr().String(), srv: grpc.NewServer()}
	collectortrace.RegisterTraceServiceServer(r.srv, r)
	go r.srv.Serve(l)
	return r, nil
}

func (r *receiver) stop() { r.srv.Stop() }

// Export stores the spans of one export call.
func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, kv := range sp.GetAttributes() {
					attrs[kv.GetKey()] = kv.GetValue().String()
				}
				out := span{
					TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
					ParentID: hex.EncodeToString(sp.GetParentSpanId()), Service: service, Name: sp.GetName(), Attrs: attrs,
					Server: sp.GetKind() == tracepb.Span_SPAN_KIND_SERVER, Raw: prototext.Format(sp),
				}
				for _, e := range sp.GetEvents() {
					ev := spanEvent{Name: e.GetName(), Attrs: map[string]string{}}
					for _, kv := range e.GetAttributes() {
						ev.Attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
					}
					out.Events = append(out.Events, ev)
				}
				for _, l := range sp.GetLinks() {
					out.Links = append(out.Links, hex.EncodeToString(l.GetTraceId()))
				}
				r.spans = append(r.spans, out)
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// all returns a copy of the spans received so far.
func (r *receiver) all() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}
