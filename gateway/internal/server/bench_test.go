package server_test

import (
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/benchcpu"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

var benchSpans = flag.Bool("spans", false, "BenchmarkHandler records every span, as with an OTLP exporter")

// BenchmarkHandler measures the gateway's CPU and allocations per request
// on the whole handler path (OpenTelemetry middleware, edge middleware with
// the access log, policy, grpc-gateway decode and encode, the mTLS gRPC call
// to a stub service), called in process so that no TLS or HTTP/2 framing of
// the client side is counted. The stub service runs in the same process, so
// its work is included; it is the same before and after a change. Telemetry
// is wired as platform/telemetry sets it up without an exporter (make run,
// make bench-e2e): an SDK tracer that records no span (NeverSample; every
// request still gets a trace id), an SDK meter, and the JSON access log
// through platform/telemetry's handler (to io.Discard). With -spans every
// span is recorded instead, as with OTEL_EXPORTER_OTLP_ENDPOINT set.
//
// Besides wall time it reports the process's CPU time per request
// (cpu-ns/op, user + system, the stub service's included), which the
// machine's other load disturbs less than wall time.
//
//	go test -run '^$' -bench BenchmarkHandler -benchmem -count 6 ./gateway/internal/server/
func BenchmarkHandler(b *testing.B) {
	const unlimited = 1_000_000 // per minute, far more than a run sends
	h := newHarness(b, func(o *options) {
		o.limits = policy.NewLimits(unlimited, unlimited, unlimited, unlimited)
		sampler := sdktrace.NeverSample()
		if *benchSpans {
			sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
		}
		o.tracer = sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
		o.meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		o.edge.AccessLog = telemetry.NewLogger(io.Discard, slog.LevelInfo).With("log", "access")
	})
	token := h.env.Token(b, ownerID, "user")
	cases := []struct {
		name, method, path, body string
		headers                  map[string]string
	}{
		{"transfer", http.MethodPost, "/v1/transfers", transferBody(`"100"`, `,"description":"rent"`), map[string]string{"Idempotency-Key": "bench-key"}},
		{"balance", http.MethodGet, "/v1/accounts/" + ownedAccount, "", nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			before := benchcpu.Time(b)
			for b.Loop() {
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				req := httptest.NewRequest(c.method, c.path, body)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("User-Agent", "bankload/1")
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				for k, v := range c.headers {
					req.Header.Set(k, v)
				}
				w := httptest.NewRecorder()
				h.handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s %s = %d %s", c.method, c.path, w.Code, w.Body)
				}
			}
			benchcpu.Report(b, before)
		})
	}
}
