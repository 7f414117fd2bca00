package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcerr"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/refusal"
	"github.com/bastion-bank/bastion/platform/wire"
)

// newMux builds the grpc-gateway mux with every default that would let a
// client reach a service switched off: no header reaches gRPC metadata (the
// policy builds the metadata), no upstream header or trailer reaches the
// client except Idempotent-Replayed, no method override or form fallback,
// and every error goes through the one problem+json renderer.
func newMux(ctx context.Context, pol *policy.Policy, up Upstreams, rd *edge.Renderer, counters refusal.Counters) (*runtime.ServeMux, error) {
	table, err := newRouteTable(PublicServices())
	if err != nil {
		return nil, err
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newJSONMarshaler(newBodyShapes(PublicServices()))),
		runtime.WithIncomingHeaderMatcher(forwardNoHeaders),
		runtime.WithOutgoingHeaderMatcher(responseHeaders),
		runtime.WithOutgoingTrailerMatcher(forwardNoHeaders),
		runtime.WithErrorHandler(gatewayErrorHandler(rd, counters)),
		runtime.WithRoutingErrorHandler(routingErrorHandler(rd, table)),
		runtime.WithForwardResponseOption(rateLimitHeaders),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithMiddlewares(labelRoute),
	)
	for _, svc := range services {
		if err := svc.Register(ctx, mux, pol.Conn(up[svc.Name])); err != nil {
			return nil, fmt.Errorf("register the %s routes: %w", svc.Name, err)
		}
	}
	return mux, nil
}

// forwardNoHeaders refuses every header. (The Authorization header is the
// one grpc-gateway forwards regardless; the policy replaces the outgoing
// metadata wholesale, so that copy never leaves the process either.)
func forwardNoHeaders(string) (string, bool) { return "", false }

// responseHeaders lets exactly one upstream header through: the replay flag
// of an idempotent transfer. Everything else a service sets stays inside.
func responseHeaders(key string) (string, bool) {
	if strings.EqualFold(key, wire.Replayed) {
		return wire.ReplayedHeader, true
	}
	return "", false
}

// rateLimitHeaders tells a client where it stands on every successful call.
func rateLimitHeaders(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	if st, ok := edge.StateFrom(ctx); ok {
		if res, ok := st.RateLimit(); ok {
			for k, v := range ratelimit.Headers(res) {
				w.Header()[k] = v
			}
		}
	}
	return nil
}

// gatewayErrorHandler renders errors from the RPC path. An *errs.Error came
// from the policy or from a service (through grpcclient's mapping) and
// carries a client-safe message. Anything else was made by grpc-gateway
// from raw parser text (a malformed body, a bad query parameter): only its
// kind is kept.
func gatewayErrorHandler(rd *edge.Renderer, counters refusal.Counters) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		if _, ok := errs.As(err); !ok {
			var hs *runtime.HTTPStatusError
			kind := errs.KindOf(grpcerr.FromError(err))
			if errors.As(err, &hs) && hs.HTTPStatus == http.StatusBadRequest {
				kind = errs.Invalid
			}
			if kind == errs.Invalid {
				counters.ValidationFailed(ctx, "malformed_request")
				err = errs.Wrap(errs.Invalid, malformedDetail(r), err)
			} else {
				err = errs.Wrap(kind, "", err)
			}
		}
		rd.Error(w, r, err)
	}
}

// malformedDetail says what a request grpc-gateway could not parse got
// wrong. A GET route has no body, so its fault is in the query string; any
// other route decodes the body and ignores the query string.
func malformedDetail(r *http.Request) string {
	if r.Method == http.MethodGet {
		return "malformed request: a query parameter is not valid for this operation"
	}
	return "malformed request: the body must be one JSON object with only this operation's fields"
}

// routingErrorHandler renders requests that match no route. A 405 names
// the methods the path does support in Allow (RFC 9110 §15.5.6).
func routingErrorHandler(rd *edge.Renderer, table routeTable) runtime.RoutingErrorHandlerFunc {
	return func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
		switch status {
		case http.StatusMethodNotAllowed:
			methodNotAllowed(w, r, rd, table.allowed(r.URL.Path))
		case http.StatusBadRequest:
			rd.Status(w, r, status, edge.CodeMalformed, "malformed request path")
		default:
			rd.Status(w, r, http.StatusNotFound, edge.CodeRouteNotFound, "no such route")
		}
	}
}

// methodNotAllowed writes a 405 whose Allow header lists allow. An empty
// list is still sent: it says the target supports no method at all.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, rd *edge.Renderer, allow string) {
	w.Header().Set("Allow", allow)
	rd.Status(w, r, http.StatusMethodNotAllowed, edge.CodeMethodNotAllowed, "method not allowed on this route")
}

// labelRoute names the span and the request metrics after the route
// template, never the concrete path (ids would explode the metric series).
//
// grpc-gateway wraps each route's handler in the middlewares on its own
// (ServeMux.Handle), so one closure only ever serves one pattern: its
// template is spelled out on the route's first request and kept, instead of
// rebuilt by Pattern.String (four to six allocations) on every request.
// TestAccessLog and TestMetricsAreLabelledByRoute see a different name for
// each route, which a closure shared between routes would not give.
func labelRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	var route atomic.Pointer[string]
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if pat, ok := runtime.HTTPPattern(r.Context()); ok {
			name := route.Load()
			if name == nil {
				s := strings.ReplaceAll(pat.String(), "=*}", "}")
				name = &s
				route.Store(name)
			}
			setRoute(r, *name)
		}
		next(w, r, params)
	}
}

func setRoute(r *http.Request, route string) {
	attr := attribute.String("http.route", route)
	if l, ok := otelhttp.LabelerFromContext(r.Context()); ok {
		l.Add(attr)
	}
	if st, ok := edge.StateFrom(r.Context()); ok {
		st.SetRoute(route)
	}
	// An unrecorded span (no exporter) would drop the name; it is not built.
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetName(spanMethod(r.Method) + " " + route)
		span.SetAttributes(attr)
	}
}

// spanMethod is a request's method as a span name may carry it: one of the
// methods of RFC 9110 and RFC 5789, or "HTTP" for any other, as the
// OpenTelemetry conventions name an unknown method (metrics say "_OTHER").
// The operational endpoints accept every method (to answer 405), so the
// method as sent would let a client name a span, at any length.
func spanMethod(m string) string {
	if len(m) > len(http.MethodOptions) {
		return "HTTP"
	}
	switch up := strings.ToUpper(m); up {
	case http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
		http.MethodPatch, http.MethodPost, http.MethodPut, http.MethodTrace:
		return up
	}
	return "HTTP"
}
