package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

// traced is a harness whose gateway records its spans and logs its access
// lines the way production does.
type traced struct {
	*harness
	spans  *tracetest.SpanRecorder
	access *grpctest.SyncBuffer
}

func newTraced(t *testing.T, adjust ...func(*options)) traced {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	access := &grpctest.SyncBuffer{}
	counters, err := telemetry.NewSecurity(sdkmetric.NewMeterProvider())
	if err != nil {
		t.Fatalf("NewSecurity: %v", err)
	}
	h := newHarness(t, append([]func(*options){func(o *options) {
		o.tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		o.counters = counters
		o.edge.AccessLog = telemetry.NewLogger(access, slog.LevelInfo)
	}}, adjust...)...)
	return traced{harness: h, spans: spans, access: access}
}

// serverSpan returns the gateway's span of the one request sent with
// userAgent.
func (h traced) serverSpan(t *testing.T, userAgent string) sdktrace.ReadOnlySpan {
	t.Helper()
	h.h2.CloseIdleConnections()
	var found []sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		if s.SpanKind() != trace.SpanKindServer {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key == "user_agent.original" && kv.Value.AsString() == userAgent {
				found = append(found, s)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("gateway server spans of request %q = %d, want 1", userAgent, len(found))
	}
	return found[0]
}

// accessTraceID returns the trace id of the access-log line of requestID.
func (h traced) accessTraceID(t *testing.T, requestID string) string {
	t.Helper()
	for line := range strings.Lines(h.access.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("access line %q: %v", line, err)
		}
		if rec["request_id"] == requestID {
			id, _ := rec[telemetry.TraceIDKey].(string)
			return id
		}
	}
	t.Fatalf("no access line for request %s", requestID)
	return ""
}

// TestClientCannotChooseOrSuppressTheTrace: the edge is a trust boundary
// for telemetry. Whatever trace context a client sends (none, an unsampled
// one that would switch tracing off, one with a trace id of its choosing, a
// malformed one, baggage), the request is traced under a root the gateway
// chose, sampled; a valid client context survives only as a link; the
// services, the access log and hence the audit rows see the gateway's trace
// id; no client baggage or tracestate travels upstream.
func TestClientCannotChooseOrSuppressTheTrace(t *testing.T) {
	t.Parallel()
	h := newTraced(t)
	user := h.env.Token(t, ownerID, "user")
	const (
		unsampled = "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00-00000000000000aa-00"
		chosen    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	tests := []struct {
		name     string
		headers  map[string]string
		wantLink string // the client's trace id, kept as a link; "" for none
	}{
		{"no context", nil, ""},
		{"unsampled, to switch tracing off", map[string]string{"traceparent": unsampled}, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00"},
		{"sampled, with a chosen trace id", map[string]string{"traceparent": chosen, "tracestate": "evil=1"}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"malformed", map[string]string{"traceparent": "00-zzzz-00f067aa0ba902b7-01"}, ""},
		{"baggage", map[string]string{"traceparent": chosen, "baggage": "user_id=" + otherUserID + ",role=admin"}, "4bf92f3577b34da6a3ce929d0e0e4736"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "trace-case-" + string(rune('a'+i))
			hdr := map[string]string{"User-Agent": id, "X-Request-Id": id}
			for k, v := range tt.headers {
				hdr[k] = v
			}
			if resp := h.do(t, h.h2, request{method: "GET", path: "/v1/accounts/" + ownedAccount, token: user, headers: hdr}); resp.status != http.StatusOK {
				t.Fatalf("GET = %d, want 200 (%s)", resp.status, resp.body)
			}
			s := h.serverSpan(t, id)
			sc := s.SpanContext()
			if !sc.IsSampled() || s.Parent().IsValid() {
				t.Errorf("span sampled %v, parent %v: want a sampled root", sc.IsSampled(), s.Parent())
			}
			if got := sc.TraceID().String(); tt.wantLink != "" && got == tt.wantLink {
				t.Errorf("trace id = %s: the client chose it", got)
			}
			var links []string
			for _, l := range s.Links() {
				links = append(links, l.SpanContext.TraceID().String())
			}
			if want := strings.Fields(tt.wantLink); strings.Join(links, " ") != strings.Join(want, " ") {
				t.Errorf("links = %v, want %v", links, want)
			}
			if got := h.accessTraceID(t, id); got != sc.TraceID().String() {
				t.Errorf("access log trace_id = %s, want the gateway's %s", got, sc.TraceID())
			}
			md := wireOf(t, h.harness, id)
			if tp := md.Get("traceparent"); len(tp) != 1 || !strings.Contains(tp[0], sc.TraceID().String()) {
				t.Errorf("upstream traceparent = %v, want the gateway's trace %s", tp, sc.TraceID())
			}
			for _, k := range []string{"baggage", "tracestate"} {
				if v := md.Get(k); len(v) > 0 {
					t.Errorf("upstream received %s = %v from the client", k, v)
				}
			}
		})
	}
}

// wireOf returns the metadata a service received for the request whose
// X-Request-Id was id.
func wireOf(t *testing.T, h *harness, id string) metadata.MD {
	t.Helper()
	for _, md := range h.rec.Wire() {
		if v := md.Get("x-request-id"); len(v) == 1 && v[0] == id {
			return md
		}
	}
	t.Fatalf("no call of request %s reached a service", id)
	return nil
}

// spanNames is every name a gateway span may have: a standard method, or
// "HTTP" for any other, then the route template if one matched.
var spanNames = regexp.MustCompile(`^(CONNECT|DELETE|GET|HEAD|OPTIONS|PATCH|POST|PUT|TRACE|HTTP)( /[a-z0-9/{}_.:-]*)?$`)

// TestSpanNamesAreAFixedSet: a client picks the method, and the operational
// endpoints accept any method (to answer 405), but no span is named after
// what a client sent.
func TestSpanNamesAreAFixedSet(t *testing.T) {
	t.Parallel()
	h := newTraced(t)
	user := h.env.Token(t, ownerID, "user")
	tests := []struct {
		method, path, want string
	}{
		{"M138042631", "/openapi.json", "HTTP /openapi.json"},
		{strings.Repeat("X", 3000), "/healthz", "HTTP /healthz"},
		{"PROPFIND", "/docs/", "HTTP /docs/"},
		{"BREW", "/v1/accounts/" + ownedAccount, "HTTP"},
		{"M138042631", "/no/such/route", "HTTP"},
		{"GET", "/readyz", "GET /readyz"},
		{"GET", "/v1/accounts/" + ownedAccount, "GET /v1/accounts/{account_id}"},
	}
	for i, tt := range tests {
		ua := "names-" + string(rune('a'+i))
		h.do(t, h.h1, request{method: tt.method, path: tt.path, token: user, headers: map[string]string{"User-Agent": ua}})
		if got := h.serverSpan(t, ua).Name(); got != tt.want {
			t.Errorf("span name of %.20s %s = %.40q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
	for _, s := range h.spans.Ended() {
		if s.SpanKind() == trace.SpanKindServer && !spanNames.MatchString(s.Name()) {
			t.Errorf("span name %.40q is outside the fixed set %s", s.Name(), spanNames)
		}
	}
}

// TestEdgeRefusalsAreSpanEvents: each refusal the edge decides is an event
// on the request's span with the reason the metric uses, while the client
// still gets the same answer.
func TestEdgeRefusalsAreSpanEvents(t *testing.T) {
	t.Parallel()
	h := newTraced(t, func(o *options) { o.limits = policy.NewLimits(1, 1000, 1000, 1000) })
	user := h.env.Token(t, ownerID, "user")
	other := h.env.Token(t, otherUserID, "user")
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantEvent  string
		wantReason string
	}{
		{"forged token", request{method: "GET", path: "/v1/users/me", token: user[:len(user)-4] + "AAAA"},
			http.StatusUnauthorized, "security.token_rejection", "bad_signature"},
		{"no token", request{method: "GET", path: "/v1/users/me"},
			http.StatusUnauthorized, "security.token_rejection", "missing"},
		{"missing role", request{method: "POST", path: "/v1/accounts/" + ownedAccount + "/deposits", token: other,
			body: `{"amount":"100","currency":"EUR","reference":"r"}`, headers: map[string]string{"Idempotency-Key": "deposit-key-0001"}},
			http.StatusForbidden, "security.authz_denial", "role"},
		{"body too large", request{method: "POST", path: "/v1/auth/register", body: `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`},
			http.StatusRequestEntityTooLarge, "security.validation_failure", "body_too_large"},
		{"auth rate limit", request{method: "POST", path: "/v1/auth/login", body: `{"email":"a@example.com","password":"` + goodPassword + `"}`},
			http.StatusTooManyRequests, "security.ratelimit_rejection", "auth"},
	}
	// The auth limit allows one call per client: spend it first.
	h.do(t, h.h2, request{method: "POST", path: "/v1/auth/login", body: `{"email":"a@example.com","password":"` + goodPassword + `"}`})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ua := "refusal-" + string(rune('a'+i))
			if tt.req.headers == nil {
				tt.req.headers = map[string]string{}
			}
			tt.req.headers["User-Agent"] = ua
			if resp := h.do(t, h.h2, tt.req); resp.status != tt.wantStatus {
				t.Fatalf("%s %s = %d, want %d (%s)", tt.req.method, tt.req.path, resp.status, tt.wantStatus, resp.body)
			}
			var got []string
			for _, e := range h.serverSpan(t, ua).Events() {
				attrs := attribute.NewSet(e.Attributes...)
				reason, _ := attrs.Value("reason")
				got = append(got, e.Name+"{"+reason.String()+"}")
			}
			if want := tt.wantEvent + "{" + tt.wantReason + "}"; !strings.Contains(strings.Join(got, " "), want) {
				t.Errorf("span events = %v, want %s", got, want)
			}
		})
	}
}
