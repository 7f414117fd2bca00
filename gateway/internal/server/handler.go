// Package server assembles the gateway's HTTPS surface: the grpc-gateway
// routes behind the edge policy, the operational endpoints (/healthz,
// /readyz, /openapi.json, /docs), the edge middleware around all of them,
// and the hardened http.Server that serves it over TLS only.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/gateway/internal/docs"
	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// Config is everything the handler needs. Policy, Upstreams, Limiter,
// Logger and OpenAPI are required.
type Config struct {
	Policy    *policy.Policy
	Upstreams Upstreams
	Readiness Readiness // defaults to every one of Upstreams

	// OpenAPI is the document served at /openapi.json (proto/openapi). It
	// is passed in rather than imported so that gateway/cmd/apidoc, which
	// builds it from this package's routes, does not depend on its own
	// output.
	OpenAPI []byte

	// Limiter and PublicLimit limit the operational endpoints per client IP.
	Limiter     ratelimit.Limiter
	PublicLimit ratelimit.Limit
	// FailedAuthLimit is each client network's budget of 401 and 403
	// answers (edge.FailedAuth), counted on Limiter; the zero value means
	// edge.DefaultFailedAuthPerMinute.
	FailedAuthLimit ratelimit.Limit

	Edge     edge.Config // trusted proxies, CORS, body limit
	Counters refusal.Counters
	Logger   *slog.Logger

	// Optional OpenTelemetry providers; the globals are used when nil.
	// There is no propagator to set: the edge never continues a client's
	// trace (see instrument).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// NewHandler returns the gateway's whole HTTP handler.
func NewHandler(ctx context.Context, cfg Config) (http.Handler, error) {
	if cfg.Policy == nil || cfg.Limiter == nil || cfg.Logger == nil || len(cfg.OpenAPI) == 0 {
		return nil, errors.New("server: Policy, Limiter, Logger and OpenAPI are required")
	}
	if err := cfg.Upstreams.check(); err != nil {
		return nil, err
	}
	if cfg.Counters == nil {
		cfg.Counters = cfg.Edge.Counters
	}
	if cfg.Readiness.Upstreams == nil {
		cfg.Readiness.Upstreams = cfg.Upstreams
	}
	rd := &edge.Renderer{Logger: cfg.Logger}
	counters := cfg.Counters
	if counters == nil {
		counters = refusal.Nop
	}
	gw, err := newMux(ctx, cfg.Policy, cfg.Upstreams, rd, counters)
	if err != nil {
		return nil, err
	}
	root, err := routes(cfg, rd, counters, gw)
	if err != nil {
		return nil, err
	}
	edgeCfg := cfg.Edge
	edgeCfg.Renderer, edgeCfg.Counters = rd, counters
	if cfg.FailedAuthLimit.Name == "" {
		cfg.FailedAuthLimit = edge.FailedAuthLimit(edge.DefaultFailedAuthPerMinute)
	}
	edgeCfg.FailedAuth = edge.FailedAuth{Limiter: cfg.Limiter, Limit: cfg.FailedAuthLimit}
	return instrument(cfg, edge.Middleware(edgeCfg, recoverer(rd, cfg.Logger, root))), nil
}

// routes puts the operational endpoints (limited per client IP, since no RPC
// rule covers them) next to the grpc-gateway routes, which get everything
// else, including the 404s. The operational endpoints are registered for
// every method and check it themselves: a "GET /healthz" pattern would
// leave POST /healthz to the catch-all, a 404 where 405 with Allow is the
// answer. CONNECT is answered before the mux: its target is an authority,
// not a path, so no pattern can match it and the mux would answer with its
// own plain-text 404 instead of a problem; and since an authority names no
// resource here, its Allow is empty.
//
// A path that is not in canonical form (//v1/accounts, /v1/../v1/accounts)
// is a 404 before the mux too, which would answer it with a redirect to the
// cleaned path. An API client has no use for that redirect, and it makes
// two spellings of every route reach the same handler, so a proxy in front
// that filters by path could be led past its own rule.
func routes(cfg Config, rd *edge.Renderer, counters refusal.Counters, gw http.Handler) (http.Handler, error) {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rd.Status(w, r, http.StatusNotFound, edge.CodeRouteNotFound, "no such route")
	})
	docsHandler, err := docs.Handler("/docs/", notFound)
	if err != nil {
		return nil, err
	}
	root := http.NewServeMux()
	get := func(route string, h http.Handler) {
		limited := edge.LimitByIP(cfg.Limiter, cfg.PublicLimit, rd, counters, h)
		root.Handle(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			setRoute(r, route)
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				methodNotAllowed(w, r, rd, "GET, HEAD")
				return
			}
			limited.ServeHTTP(w, r)
		}))
	}
	get("/healthz", http.HandlerFunc(healthz))
	get("/readyz", readyz(cfg.Readiness))
	get("/openapi.json", openAPI(cfg.OpenAPI))
	get("/docs", http.RedirectHandler("/docs/", http.StatusMovedPermanently))
	get("/docs/", docsHandler)
	if err := mountConsole(root, cfg, cfg.Upstreams["auth"], rd, counters, notFound); err != nil {
		return nil, err
	}
	root.Handle("/", gw)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			methodNotAllowed(w, r, rd, "")
			return
		}
		if !canonical(r.URL.Path) {
			notFound(w, r)
			return
		}
		root.ServeHTTP(w, r)
	}), nil
}

// canonical reports whether p is an absolute path without empty, "." or
// ".." segments: the paths http.ServeMux serves rather than redirects. It
// looks at the decoded path, which is what grpc-gateway routes on, so
// %2e%2e and %2F%2F count as the segments they decode to.
func canonical(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}

// instrument wraps h in OpenTelemetry HTTP tracing and metrics, outermost,
// so that refusals made by the edge middleware are measured too.
//
// The edge is a trust boundary for telemetry. Every request starts a new
// root trace, sampled as the tracer provider decides for a root (in
// Bastion, always when spans are exported and never otherwise; its trace id
// is the gateway's either way): a client that sent traceparent with flag 00
// would otherwise switch tracing off for its request, and one with 01 would
// choose the trace id that the logs and audit rows record, and share it
// between requests. A valid client context is kept only as a link on the
// gateway's span, so a caller's own tracing can still be joined. Only the
// W3C trace context is read, for that link: baggage and tracestate from a
// client go nowhere.
func instrument(cfg Config, h http.Handler) http.Handler {
	opts := []otelhttp.Option{
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
		otelhttp.WithPropagators(propagation.TraceContext{}),
	}
	if cfg.TracerProvider != nil {
		opts = append(opts, otelhttp.WithTracerProvider(cfg.TracerProvider))
	}
	if cfg.MeterProvider != nil {
		opts = append(opts, otelhttp.WithMeterProvider(cfg.MeterProvider))
	}
	return otelhttp.NewHandler(h, "gateway", opts...)
}

// recoverer turns a panic below it into a logged 500 problem instead of a
// reset connection; http.ErrAbortHandler keeps its meaning.
func recoverer(rd *edge.Renderer, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			logger.ErrorContext(r.Context(), "panic in HTTP handler", "panic", p)
			rd.Error(w, r, errs.New(errs.Internal, ""))
		}()
		next.ServeHTTP(w, r)
	})
}
