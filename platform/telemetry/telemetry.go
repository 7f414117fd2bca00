// Package telemetry is the one bootstrap for traces, metrics and logs that
// every Bastion process calls from its run function.
//
// Setup builds, from an explicit Config, an OpenTelemetry tracer provider
// (recording and exporting spans over OTLP/gRPC when an endpoint is given,
// giving every request a trace id without recording otherwise), a meter
// provider whose Prometheus exporter writes to a registry of its own, the W3C
// propagators, a JSON logger that adds trace ids and removes secrets, and the
// security counters. Nothing here reads the environment: the caller passes the values
// it read once at start-up.
package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/errs"
)

// DefaultShutdownTimeout bounds Shutdown when its context has no deadline, so
// that an unreachable trace collector can never hold a process open.
const DefaultShutdownTimeout = 5 * time.Second

// exportTimeout bounds one OTLP export call; the batch processor retries
// later rather than stall.
const exportTimeout = 5 * time.Second

// Config is what a process tells Setup about itself. The caller reads it from
// the environment once; the zero value of each optional field turns the
// feature off.
type Config struct {
	ServiceName    string // required; becomes the service.name resource attribute
	ServiceVersion string // optional; service.version

	// MetricsAddr is the admin address for GET /metrics, e.g. 127.0.0.1:9465.
	// "" means no listener.
	MetricsAddr string
	// Pprof serves net/http/pprof under /debug/pprof/ on the metrics
	// listener: PprofOff ("" or "0", the default), PprofLoopback ("1":
	// only if that listener is bound to loopback, else StartAdmin fails) or
	// PprofAnyAddress ("any-address": beyond loopback too, with a warning).
	// A profile shows what the process is doing, not secrets, but it costs
	// CPU on demand, so nobody beyond the host should be able to ask.
	Pprof string

	// OTLPEndpoint is the value of OTEL_EXPORTER_OTLP_ENDPOINT: a URL such as
	// http://127.0.0.1:4317 (the scheme decides TLS) or a bare host:port.
	// "" turns trace export off: every request still gets a trace id, which
	// the logs, the audit rows, the metrics' exemplars and the traceparent
	// sent to the next service carry, but no span is recorded (see
	// newTracerProvider).
	OTLPEndpoint string
	// OTLPInsecure sends spans without TLS when OTLPEndpoint has no scheme.
	OTLPInsecure bool

	// exporter, set by this package's tests only, turns export on to it
	// instead of to OTLPEndpoint.
	exporter sdktrace.SpanExporter

	LogLevel  slog.Level
	LogOutput io.Writer // nil means os.Stderr
}

// Telemetry holds one process's providers. Its accessors return the same
// objects Setup installed as OpenTelemetry globals; prefer passing these
// explicitly and keep the globals for instrumentation libraries that insist.
type Telemetry struct {
	cfg      Config
	logger   *slog.Logger
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	prop     propagation.TextMapPropagator
	registry *prometheus.Registry
	metrics  http.Handler
	security *Security

	mu        sync.Mutex
	admin     *http.Server // nil until StartAdmin binds
	adminAddr string
	closed    bool
}

// Setup builds the process's telemetry. It fails only on a bad Config or an
// internal error; an unreachable collector is not an error, because a
// process must start (and serve) while its observability backend is down.
// Call Shutdown before exit to flush spans.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	logger := NewLogger(out, cfg.LogLevel).With(
		slog.String("service", cfg.ServiceName),
		slog.String("version", cfg.ServiceVersion),
	)
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", cfg.ServiceVersion),
	)
	tp, err := newTracerProvider(ctx, cfg, res, logger)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{
		cfg:    cfg,
		logger: logger,
		tp:     tp,
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	if err := t.setupMetrics(res); err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	otel.SetTracerProvider(t.tp)
	otel.SetMeterProvider(t.mp)
	otel.SetTextMapPropagator(t.prop)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry error", slog.Any("error", err))
	}))
	return t, nil
}

// validate rejects a Config that would otherwise fail later and less clearly.
func validate(cfg Config) error {
	if strings.TrimSpace(cfg.ServiceName) == "" {
		return errs.New(errs.Invalid, "telemetry: service name is required")
	}
	if cfg.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.MetricsAddr); err != nil {
			return errs.Wrap(errs.Invalid, "telemetry: metrics address must be host:port", err)
		}
	}
	switch cfg.Pprof {
	case PprofOff, "0", PprofLoopback, PprofAnyAddress:
	default:
		return errs.New(errs.Invalid, `telemetry: pprof must be "0", "1" or "any-address"`)
	}
	if cfg.Pprof != PprofOff && cfg.Pprof != "0" && cfg.MetricsAddr == "" {
		return errs.New(errs.Invalid, "telemetry: pprof is served on the metrics listener, and there is none")
	}
	return nil
}

// exporting reports whether spans leave the process: only then are they
// recorded.
func (cfg Config) exporting() bool { return cfg.OTLPEndpoint != "" || cfg.exporter != nil }

// newTracerProvider returns the process's tracer provider.
//
// With export on, it samples every root span and continues its parent's
// decision (ParentBased(AlwaysSample)), and hands every ended span to the
// exporter through the redacting processor.
//
// With export off, it records nothing (NeverSample, which ignores the
// parent): a span recorded for nobody costs its attributes, events and
// links in allocation and garbage collection on every request. The SDK
// still gives such a span a valid context, a fresh trace id for a root and
// the parent's for a child, with a span id of its own, so the logs and the
// audit rows carry the trace id, and the traceparent sent to the next
// service carries it on (with the sampled flag clear). A caller's sampled
// flag cannot switch recording on: when nothing is exported, recording is
// only cost, and which calls pay it is not a client's choice.
func newTracerProvider(ctx context.Context, cfg Config, res *resource.Resource, logger *slog.Logger) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if !cfg.exporting() {
		logger.Info("trace export off: OTLP endpoint not set; spans are not recorded, trace ids are still logged and propagated")
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
		return sdktrace.NewTracerProvider(opts...), nil
	}
	exp := cfg.exporter
	if exp == nil {
		var err error
		if exp, err = newTraceExporter(ctx, cfg, logger); err != nil {
			return nil, err
		}
	}
	bsp := sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithExportTimeout(exportTimeout))
	opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithSpanProcessor(NewRedactingProcessor(bsp)))
	return sdktrace.NewTracerProvider(opts...), nil
}

// newTraceExporter builds the OTLP/gRPC exporter. Following the OTel
// specification, a URL's scheme decides TLS and OTLPInsecure applies only to
// a bare host:port. The gRPC connection is lazy, so an absent collector does
// not fail start-up.
func newTraceExporter(ctx context.Context, cfg Config, logger *slog.Logger) (sdktrace.SpanExporter, error) {
	opts := []otlptracegrpc.Option{
		otlptracegrpc.WithTimeout(exportTimeout),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{
			Enabled:         true,
			InitialInterval: time.Second,
			MaxInterval:     5 * time.Second,
			MaxElapsedTime:  30 * time.Second,
		}),
	}
	host, insecure := "", cfg.OTLPInsecure
	if strings.Contains(cfg.OTLPEndpoint, "://") {
		u, err := url.Parse(cfg.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errs.New(errs.Invalid, "telemetry: OTLP endpoint must be an http(s) URL or host:port")
		}
		host, insecure = u.Host, u.Scheme == "http"
		opts = append(opts, otlptracegrpc.WithEndpoint(u.Host))
	} else {
		if _, _, err := net.SplitHostPort(cfg.OTLPEndpoint); err != nil {
			return nil, errs.Wrap(errs.Invalid, "telemetry: OTLP endpoint must be an http(s) URL or host:port", err)
		}
		host = cfg.OTLPEndpoint
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint))
	}
	if insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
		logger.Warn("trace export is NOT encrypted", slog.String("otlp_host", host))
	} else {
		logger.Info("trace export on", slog.String("otlp_host", host))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "telemetry: create OTLP exporter", err)
	}
	return exp, nil
}

// setupMetrics builds the registry, the exporter into it and the meter
// provider. A private registry keeps two Telemetry values (as in tests) from
// colliding, and keeps other libraries' default-registry metrics out.
func (t *Telemetry) setupMetrics(res *resource.Resource) error {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return errs.Wrap(errs.Internal, "telemetry: register collector", err)
		}
	}
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		// Pinned so names stay exactly bank_*_total: counters get "_total",
		// and instruments without a unit get no unit suffix.
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		otelprom.WithoutScopeInfo(),
	)
	if err != nil {
		return errs.Wrap(errs.Internal, "telemetry: create prometheus exporter", err)
	}
	// Every measurement made inside a request's span may keep that span's
	// ids as an exemplar, so a spike on a dashboard leads to the traces, or
	// with export off to the log lines, of the requests behind it. The
	// filter is pinned: the SDK would otherwise read
	// OTEL_METRICS_EXEMPLAR_FILTER, and the link must not depend on it.
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exp),
		sdkmetric.WithExemplarFilter(exemplarFilter(t.cfg)))
	t.registry = reg
	t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{t.logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		// The text format 0.0.4 has no exemplars; a scraper that asks for
		// OpenMetrics gets them (trace_id, span_id). Others get text as before.
		EnableOpenMetrics: true,
	})
	t.security, err = NewSecurity(t.mp)
	if err != nil {
		_ = t.mp.Shutdown(context.Background())
		return err
	}
	return nil
}

// exemplarFilter decides which measurements may become exemplars. With
// export on, those made inside a sampled span, as before: a trace that was
// not exported is a link to nothing. With export off no span is sampled,
// and the reservoir takes the trace and span ids from whatever valid span
// context the measurement's context holds (sdk/metric exemplar
// storage.go), recorded or not; so the filter asks only for a valid one,
// which every request has, and measurements made outside any request
// (none of which has a trace id to show) are not offered.
func exemplarFilter(cfg Config) exemplar.Filter {
	if cfg.exporting() {
		return exemplar.TraceBasedFilter
	}
	return inRequest
}

// inRequest reports whether ctx holds a valid span context.
func inRequest(ctx context.Context) bool { return trace.SpanContextFromContext(ctx).IsValid() }

// promLogger sends promhttp's errors to the process logger.
type promLogger struct{ l *slog.Logger }

// Println logs a metrics-gathering error.
func (p promLogger) Println(v ...any) {
	p.l.Warn("metrics gathering error", slog.Any("detail", v))
}

// TracerProvider returns the process's tracer provider.
func (t *Telemetry) TracerProvider() *sdktrace.TracerProvider { return t.tp }

// MeterProvider returns the process's meter provider.
func (t *Telemetry) MeterProvider() *sdkmetric.MeterProvider { return t.mp }

// Propagator returns the W3C TraceContext and Baggage propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.prop }

// Logger returns the process's JSON logger, with trace ids and redaction.
func (t *Telemetry) Logger() *slog.Logger { return t.logger }

// Security returns the security counters.
func (t *Telemetry) Security() *Security { return t.security }

// Shutdown stops the admin server, flushes pending spans and stops the
// providers. Without a deadline on ctx it waits at most
// DefaultShutdownTimeout. Calling it again does nothing.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	admin := t.admin
	t.mu.Unlock()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultShutdownTimeout)
		defer cancel()
	}
	var all []error
	if admin != nil {
		all = append(all, admin.Shutdown(ctx))
	}
	all = append(all, t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
	if err := errors.Join(all...); err != nil {
		return errs.Wrap(errs.Unavailable, "telemetry: shutdown incomplete", err)
	}
	return nil
}
