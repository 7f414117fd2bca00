package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
)

func TestSetupRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no service name", Config{}},
		{"blank service name", Config{ServiceName: "  "}},
		{"metrics addr without port", Config{ServiceName: "x", MetricsAddr: "127.0.0.1"}},
		{"otlp wrong scheme", Config{ServiceName: "x", OTLPEndpoint: "ftp://collector:4317"}},
		{"otlp url without host", Config{ServiceName: "x", OTLPEndpoint: "http://"}},
		{"otlp bare host without port", Config{ServiceName: "x", OTLPEndpoint: "collector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.LogOutput = io.Discard
			tel, err := Setup(context.Background(), tt.cfg)
			if err == nil {
				_ = tel.Shutdown(context.Background())
				t.Fatalf("Setup(%+v) = nil error, want Invalid", tt.cfg)
			}
			if k := errs.KindOf(err); k != errs.Invalid {
				t.Errorf("Setup(%+v) error kind = %v, want %v", tt.cfg, k, errs.Invalid)
			}
		})
	}
}

// TestSetupInstallsGlobals is not parallel: it checks the process-wide
// OpenTelemetry globals, which parallel tests also set.
func TestSetupInstallsGlobals(t *testing.T) {
	tel, err := Setup(context.Background(), Config{ServiceName: "globals", LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	// The global propagator wraps ours, so compare what it propagates.
	if got, want := sortedFields(otel.GetTextMapPropagator().Fields()), sortedFields(tel.Propagator().Fields()); got != want {
		t.Errorf("global propagator fields = %v, want %v", got, want)
	}
	if otel.GetTracerProvider() != tel.TracerProvider() {
		t.Errorf("global tracer provider = %T, want the one from Setup", otel.GetTracerProvider())
	}
	if otel.GetMeterProvider() != tel.MeterProvider() {
		t.Errorf("global meter provider = %T, want the one from Setup", otel.GetMeterProvider())
	}
	if got := sortedFields(tel.Propagator().Fields()); got != "baggage,traceparent,tracestate" {
		t.Errorf("Propagator().Fields() = %v, want baggage, traceparent, tracestate", got)
	}
}

func sortedFields(f []string) string {
	f = slices.Clone(f)
	slices.Sort(f)
	return strings.Join(f, ",")
}

func TestSetupWithoutExporterStillCorrelatesLogs(t *testing.T) {
	t.Parallel()
	out := &grpctest.SyncBuffer{}
	tel, err := Setup(context.Background(), Config{ServiceName: "auth", ServiceVersion: "1.2.3", LogOutput: out})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	ctx, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "op")
	tel.Logger().InfoContext(ctx, "inside span", "password", "pw-123456")
	recording := span.IsRecording()
	span.End()

	var line map[string]any
	last := lastLine(out.String())
	if err := json.Unmarshal([]byte(last), &line); err != nil {
		t.Fatalf("log line %q is not JSON: %v", last, err)
	}
	checks := []struct{ key, want string }{
		{TraceIDKey, span.SpanContext().TraceID().String()},
		{SpanIDKey, span.SpanContext().SpanID().String()},
		{"service", "auth"},
		{"version", "1.2.3"},
		{"password", Redacted},
	}
	for _, c := range checks {
		if line[c.key] != c.want {
			t.Errorf("log field %s = %v, want %q (line %s)", c.key, line[c.key], c.want, last)
		}
	}
	if sc := span.SpanContext(); !sc.IsValid() || recording {
		t.Errorf("span valid %v, recording %v; want a valid context and no recording without an exporter", sc.IsValid(), recording)
	}
}

// TestRecordingFollowsExport: spans are recorded, exported and redacted only
// when export is on, following the parent's decision as before; with
// export off nothing is recorded, whatever the parent says (a caller cannot
// make a process pay for recording nobody reads), yet every span has a
// valid context that continues its parent's trace or starts a new one.
func TestRecordingFollowsExport(t *testing.T) {
	t.Parallel()
	parent := func(flags trace.TraceFlags) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 1},
			TraceFlags: flags, Remote: true})
	}
	tests := []struct {
		name          string
		export        bool
		parent        trace.SpanContext // zero: a root
		wantRecording bool
	}{
		{"off, root", false, trace.SpanContext{}, false},
		{"off, sampled remote parent", false, parent(trace.FlagsSampled), false},
		{"off, unsampled remote parent", false, parent(0), false},
		{"on, root", true, trace.SpanContext{}, true},
		{"on, sampled remote parent", true, parent(trace.FlagsSampled), true},
		{"on, unsampled remote parent", true, parent(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{ServiceName: "x", LogOutput: io.Discard}
			exp := tracetest.NewInMemoryExporter()
			if tt.export {
				cfg.exporter = exp
			}
			tel, err := Setup(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			defer func() { _ = tel.Shutdown(context.Background()) }()
			ctx := trace.ContextWithRemoteSpanContext(context.Background(), tt.parent)
			_, span := tel.TracerProvider().Tracer("test").Start(ctx, "op")
			span.SetAttributes(attribute.String("password", "pw-123456"))
			recording := span.IsRecording()
			span.End()

			sc := span.SpanContext()
			if !sc.IsValid() {
				t.Fatalf("span context %v is not valid", sc)
			}
			if tt.parent.IsValid() && sc.TraceID() != tt.parent.TraceID() {
				t.Errorf("trace id = %s, want the parent's %s", sc.TraceID(), tt.parent.TraceID())
			}
			if sc.SpanID() == tt.parent.SpanID() {
				t.Errorf("span id = the parent's %s, want one of its own", sc.SpanID())
			}
			if recording != tt.wantRecording || sc.IsSampled() != tt.wantRecording {
				t.Errorf("recording %v, sampled %v; want both %v", recording, sc.IsSampled(), tt.wantRecording)
			}
			if err := tel.TracerProvider().ForceFlush(context.Background()); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}
			got := exp.GetSpans()
			if want := map[bool]int{true: 1, false: 0}[tt.wantRecording]; len(got) != want {
				t.Fatalf("exported %d spans, want %d", len(got), want)
			}
			if len(got) == 1 && strings.Contains(spanText(got[0]), "pw-123456") {
				t.Errorf("exported span holds the password: %s", spanText(got[0]))
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestShutdownIsBoundedWithUnreachableCollector(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback refuses connections; a collector that is down.
	tests := []struct {
		name     string
		endpoint string
		insecure bool
		deadline time.Duration // 0: no deadline, Shutdown applies its default
		within   time.Duration
	}{
		{"bare host:port with deadline", "127.0.0.1:1", true, time.Second, 3 * time.Second},
		{"http url with deadline", "http://127.0.0.1:1", false, time.Second, 3 * time.Second},
		{"https url with deadline", "https://127.0.0.1:1", false, time.Second, 3 * time.Second},
		{"no deadline", "127.0.0.1:1", true, 0, DefaultShutdownTimeout + 2*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			tel, err := Setup(context.Background(), Config{
				ServiceName: "x", OTLPEndpoint: tt.endpoint, OTLPInsecure: tt.insecure, LogOutput: io.Discard,
			})
			if err != nil {
				t.Fatalf("Setup with unreachable collector: %v, want success", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Setup took %v with an unreachable collector, want under 1s", d)
			}
			_, span := tel.TracerProvider().Tracer("t").Start(context.Background(), "op")
			span.End()

			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start = time.Now()
			_ = tel.Shutdown(ctx) // an error is expected: the span could not be sent
			if d := time.Since(start); d > tt.within {
				t.Errorf("Shutdown took %v, want under %v", d, tt.within)
			}
			if err := tel.Shutdown(ctx); err != nil {
				t.Errorf("second Shutdown = %v, want nil", err)
			}
		})
	}
}

func TestAdminServer(t *testing.T) {
	t.Parallel()
	out := &grpctest.SyncBuffer{}
	tel, err := Setup(context.Background(), Config{ServiceName: "x", MetricsAddr: "127.0.0.1:0", LogOutput: out})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if got := tel.boundAdminAddr(); got != "" {
		t.Errorf("the admin address before StartAdmin = %q, want empty", got)
	}
	if err := tel.StartAdmin(context.Background()); err != nil {
		t.Fatalf("StartAdmin: %v", err)
	}
	if err := tel.StartAdmin(context.Background()); errs.KindOf(err) != errs.Conflict {
		t.Errorf("second StartAdmin = %v, want a Conflict error", err)
	}
	tel.Security().LoginFailed(context.Background(), "bad_password")
	base := "http://" + tel.boundAdminAddr()

	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string
	}{
		{"GET", "/metrics", 200, `bank_login_failures_total{reason="bad_password"} 1`},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"GET", "/metrics", 200, "process_cpu_seconds_total"},
		{"GET", "/metrics", 200, `target_info{service_name="x"`},
		{"POST", "/metrics", 405, ""},
		{"GET", "/debug/pprof/", 404, ""},
		{"GET", "/", 404, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantCode {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantCode)
		}
		if !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s %s body lacks %q", tt.method, tt.path, tt.wantBody)
		}
	}
	if strings.Contains(out.String(), "beyond loopback") {
		t.Errorf("loopback listener logged a beyond-loopback warning: %s", out)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Errorf("GET /metrics after Shutdown succeeded, want the listener closed")
	}
	if err := tel.StartAdmin(context.Background()); err == nil {
		t.Errorf("StartAdmin after Shutdown = nil, want an error")
	}
}

func TestAdminServerStopsWithContext(t *testing.T) {
	t.Parallel()
	tel, err := Setup(context.Background(), Config{ServiceName: "x", MetricsAddr: "127.0.0.1:0", LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	ctx, cancel := context.WithCancel(context.Background())
	if err := tel.StartAdmin(ctx); err != nil {
		t.Fatalf("StartAdmin: %v", err)
	}
	cancel()
	deadline := time.Now().Add(3 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", tel.boundAdminAddr(), 100*time.Millisecond)
		if err != nil {
			return // closed, as wanted
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("admin listener %s still accepting 3s after its context ended", tel.boundAdminAddr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAdminServerBindErrors(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer taken.Close()

	tel, err := Setup(context.Background(), Config{ServiceName: "x", MetricsAddr: taken.Addr().String(), LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	err = tel.StartAdmin(context.Background())
	if errs.KindOf(err) != errs.Unavailable {
		t.Errorf("StartAdmin on a taken port = %v, want an Unavailable error", err)
	}
}

func TestAdminServerOffAndWideAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		addr     string
		wantLog  string
		wantAddr bool
	}{
		{"no address", "", "metrics listener off", false},
		{"all interfaces", "0.0.0.0:0", "beyond loopback", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := &grpctest.SyncBuffer{}
			tel, err := Setup(context.Background(), Config{ServiceName: "x", MetricsAddr: tt.addr, LogOutput: out})
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			defer func() { _ = tel.Shutdown(context.Background()) }()
			if err := tel.StartAdmin(context.Background()); err != nil {
				t.Fatalf("StartAdmin(%q): %v", tt.addr, err)
			}
			if got := tel.boundAdminAddr() != ""; got != tt.wantAddr {
				t.Errorf("StartAdmin(%q) bound = %v, want %v", tt.addr, got, tt.wantAddr)
			}
			if !strings.Contains(out.String(), tt.wantLog) {
				t.Errorf("StartAdmin(%q) log = %s, want it to say %q", tt.addr, out, tt.wantLog)
			}
		})
	}
}

func TestRegistererFeedsMetricsHandler(t *testing.T) {
	t.Parallel()
	tel := newTestTelemetry(t)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "bank_test_custom_total", Help: "test"})
	if err := tel.registry.Register(c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	c.Inc()
	if _, ok := scrape(t, tel)["bank_test_custom_total"]; !ok {
		t.Errorf("scrape lacks a collector added to the registry")
	}
}
