package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// openMetrics is what Prometheus asks for when it can store exemplars.
const openMetrics = "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5"

// scrapeAs returns the Content-Type and body of GET /metrics sent with accept.
func scrapeAs(t *testing.T, tel *Telemetry, accept string) (string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	tel.metrics.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics (Accept %q) = %d, want 200", accept, rec.Code)
	}
	return rec.Header().Get("Content-Type"), rec.Body.String()
}

// lineWith returns the first exposition line that starts with prefix.
func lineWith(body, prefix string) string {
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// recordInSpan counts a token rejection and records a request duration
// inside a request's span, as a refused request does, and returns the span's
// trace id.
func recordInSpan(t *testing.T, tel *Telemetry) string {
	t.Helper()
	hist, err := tel.MeterProvider().Meter("test").Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.005, 0.05, 0.5))
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "GET /v1/users/me")
	tel.Security().TokenRejected(ctx, "bad_signature")
	hist.Record(ctx, 0.042)
	span.End()
	return span.SpanContext().TraceID().String()
}

// TestMetricsLinkToTracesThroughExemplars: asked for OpenMetrics, the
// metrics endpoint gives the security counters and the duration histograms
// an exemplar naming the trace of a request they counted, so a spike leads
// to the requests behind it: to their traces with export on, to their log
// lines with export off, where the span is not recorded but has its trace
// id all the same. A plain-text scrape is unchanged. A measurement made
// outside any request offers no exemplar.
func TestMetricsLinkToTracesThroughExemplars(t *testing.T) {
	t.Parallel()
	for _, export := range []bool{false, true} {
		cfg := Config{ServiceName: "test", LogOutput: io.Discard}
		if export {
			cfg.exporter = tracetest.NewInMemoryExporter()
		}
		tel, err := Setup(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Setup: %v", err)
		}
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
		traceID := recordInSpan(t, tel)
		tel.Security().LoginFailed(context.Background(), "outside_a_request")
		exemplar := `trace_id="` + traceID + `"`

		tests := []struct {
			name, accept, wantType string
			wantExemplars          bool
		}{
			{"openmetrics", openMetrics, "application/openmetrics-text", true},
			{"plain text", "", "text/plain", false},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("export %v, %s", export, tt.name), func(t *testing.T) {
				t.Parallel()
				ct, body := scrapeAs(t, tel, tt.accept)
				if !strings.HasPrefix(ct, tt.wantType) {
					t.Errorf("Content-Type = %q, want %s", ct, tt.wantType)
				}
				for _, prefix := range []string{
					`bank_token_rejections_total{reason="bad_signature"}`,
					`http_server_request_duration_seconds_bucket{le="0.05"}`,
				} {
					line := lineWith(body, prefix)
					if line == "" {
						t.Fatalf("no line %s in\n%s", prefix, body)
					}
					if got := strings.Contains(line, exemplar); got != tt.wantExemplars {
						t.Errorf("%q has exemplar %s: %v, want %v", line, exemplar, got, tt.wantExemplars)
					}
				}
				prefix := `bank_login_failures_total{reason="outside_a_request"}`
				if line := lineWith(body, prefix); line == "" || strings.Contains(line, "#") {
					t.Errorf("line %s = %q, want one without an exemplar", prefix, line)
				}
			})
		}
	}
}

// TestExemplarsCannotBeSwitchedOffByEnvironment: the SDK would read
// OTEL_METRICS_EXEMPLAR_FILTER; Setup pins the filter so that the link from
// a metric to its traces does not depend on a variable nobody documents.
// Not parallel: it sets an environment variable.
func TestExemplarsCannotBeSwitchedOffByEnvironment(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
	tel, err := Setup(context.Background(), Config{ServiceName: "test", LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	traceID := recordInSpan(t, tel)
	_, body := scrapeAs(t, tel, openMetrics)
	if line := lineWith(body, `bank_token_rejections_total{reason="bad_signature"}`); !strings.Contains(line, traceID) {
		t.Errorf("with OTEL_METRICS_EXEMPLAR_FILTER=always_off, counter line = %q, want an exemplar with trace %s", line, traceID)
	}
}
