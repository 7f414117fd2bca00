package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// exportOne records one span through the redacting processor into an
// in-memory exporter and returns what the exporter received.
func exportOne(t *testing.T, record func(ctx context.Context, tr trace.Tracer)) tracetest.SpanStub {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(NewRedactingProcessor(sdktrace.NewSimpleSpanProcessor(exp))))
	record(context.Background(), tp.Tracer("test"))
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	spans := exp.GetSpans() // before Shutdown, which empties the exporter
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if len(spans) != 1 {
		t.Fatalf("exported %d spans, want 1", len(spans))
	}
	return spans[0]
}

// spanText flattens everything an exporter would send for a span.
func spanText(s tracetest.SpanStub) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%v|", s.Name, s.Status.Description, s.Attributes)
	for _, e := range s.Events {
		fmt.Fprintf(&b, "%s %v|", e.Name, e.Attributes)
	}
	for _, l := range s.Links {
		fmt.Fprintf(&b, "%v|", l.Attributes)
	}
	return b.String()
}

func TestRedactingProcessor(t *testing.T) {
	t.Parallel()
	jwt := testJWT(t)
	const pw = "correct-horse-battery-staple"
	const opaque = "rt_9f8e7d6c5b4a39281706"
	link := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	tests := []struct {
		name    string
		record  func(ctx context.Context, tr trace.Tracer)
		secrets []string
	}{
		{"sensitive keys", func(ctx context.Context, tr trace.Tracer) {
			_, s := tr.Start(ctx, "op")
			s.SetAttributes(
				attribute.String("http.request.header.authorization", "Bearer "+opaque),
				attribute.String("user.password", pw),
				attribute.StringSlice("http.response.header.set-cookie", []string{"sid=" + opaque}),
				attribute.Int("api_key", 12345678))
			s.End()
		}, []string{opaque, pw, "12345678"}},
		{"jwt values under innocent keys", func(ctx context.Context, tr trace.Tracer) {
			_, s := tr.Start(ctx, "op", trace.WithAttributes(attribute.String("url.query", "a="+jwt)))
			s.SetAttributes(
				attribute.StringSlice("args", []string{"x", "Bearer " + jwt}),
				attribute.ByteSlice("raw", []byte("Bearer "+opaque)),
				attribute.Slice("mixed", attribute.IntValue(1), attribute.StringValue(jwt)),
				attribute.Map("body", attribute.String("password", pw), attribute.String("note", jwt)))
			s.End()
		}, []string{jwt, opaque, pw}},
		{"span name and status", func(ctx context.Context, tr trace.Tracer) {
			_, s := tr.Start(ctx, "GET /x?t="+jwt)
			s.SetStatus(codes.Error, "verify "+jwt+": expired")
			s.End()
		}, []string{jwt}},
		{"recorded error event", func(ctx context.Context, tr trace.Tracer) {
			_, s := tr.Start(ctx, "op")
			s.RecordError(errors.New("bad token " + jwt))
			s.AddEvent("login "+jwt, trace.WithAttributes(attribute.String("secret", pw)))
			s.End()
		}, []string{jwt, pw}},
		{"link attributes", func(ctx context.Context, tr trace.Tracer) {
			_, s := tr.Start(ctx, "op", trace.WithLinks(trace.Link{
				SpanContext: link,
				Attributes:  []attribute.KeyValue{attribute.String("access_token", opaque)},
			}))
			s.End()
		}, []string{opaque}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := spanText(exportOne(t, tt.record))
			for _, s := range tt.secrets {
				if strings.Contains(got, s) {
					t.Errorf("exported span holds secret %q: %s", s, got)
				}
			}
			if !strings.Contains(got, Redacted) {
				t.Errorf("exported span = %s, want %q in it", got, Redacted)
			}
		})
	}
}

func TestRedactingProcessorKeepsCleanSpans(t *testing.T) {
	t.Parallel()
	got := exportOne(t, func(ctx context.Context, tr trace.Tracer) {
		_, s := tr.Start(ctx, "bank.transactions.v1.Transfer")
		s.SetAttributes(attribute.String("rpc.method", "Transfer"), attribute.Int64("amount", 1500))
		s.AddEvent("posted", trace.WithAttributes(attribute.Bool("ok", true)))
		s.SetStatus(codes.Ok, "")
		s.End()
	})
	if strings.Contains(spanText(got), Redacted) {
		t.Errorf("clean span was redacted: %s", spanText(got))
	}
	want := []attribute.KeyValue{attribute.String("rpc.method", "Transfer"), attribute.Int64("amount", 1500)}
	if fmt.Sprint(got.Attributes) != fmt.Sprint(want) {
		t.Errorf("exported attributes = %v, want %v", got.Attributes, want)
	}
	if got.Name != "bank.transactions.v1.Transfer" || len(got.Events) != 1 {
		t.Errorf("exported span = %q with %d events, want the original name and 1 event", got.Name, len(got.Events))
	}
}

func TestRedactSpanLeavesOriginalUntouched(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, s := tp.Tracer("test").Start(context.Background(), "op")
	s.SetAttributes(attribute.String("password", "pw-123456"))
	s.AddEvent("e", trace.WithAttributes(attribute.String("token", "tk-123456")))
	s.End()
	orig := rec.Ended()[0]

	red := redactSpan(orig)
	if got := red.Attributes()[0].Value.AsString(); got != Redacted {
		t.Errorf("redacted attribute = %q, want %q", got, Redacted)
	}
	if got := red.Events()[0].Attributes[0].Value.AsString(); got != Redacted {
		t.Errorf("redacted event attribute = %q, want %q", got, Redacted)
	}
	if got := orig.Attributes()[0].Value.AsString(); got != "pw-123456" {
		t.Errorf("original attribute after redaction = %q, want it unchanged", got)
	}
	if got := orig.Events()[0].Attributes[0].Value.AsString(); got != "tk-123456" {
		t.Errorf("original event attribute after redaction = %q, want it unchanged", got)
	}
	if !red.SpanContext().Equal(orig.SpanContext()) {
		t.Errorf("redacted SpanContext = %v, want %v", red.SpanContext(), orig.SpanContext())
	}
}
