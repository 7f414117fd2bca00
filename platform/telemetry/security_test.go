package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// newTestTelemetry sets up telemetry with no exporter and no listener.
func newTestTelemetry(t *testing.T) *Telemetry {
	t.Helper()
	tel, err := Setup(context.Background(), Config{ServiceName: "test", LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// scrape reads the metrics handler the way Prometheus would.
func scrape(t *testing.T, tel *Telemetry) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d, want 200", rec.Code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series returns a family's samples keyed by their labels rendered as
// "name=value,…" in sorted order, with each sample's counter value.
func series(fam *dto.MetricFamily) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range fam.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(labels)
		out[strings.Join(labels, ",")] = m.GetCounter().GetValue()
	}
	return out
}

func TestSecurityCountersExportedWithExactNames(t *testing.T) {
	t.Parallel()
	tel := newTestTelemetry(t)
	ctx := context.Background()
	sec := tel.Security()
	sec.LoginFailed(ctx, "bad_password")
	sec.LoginFailed(ctx, "bad_password")
	sec.LoginFailed(ctx, "unknown_email")
	sec.TokenRejected(ctx, "expired")
	sec.AuthzDenied(ctx, "missing_role")
	sec.ValidationFailed(ctx, "string.email")
	sec.RateLimited(ctx, "auth_ip")
	sec.Event(ctx, "refresh_reuse", "family_revoked")
	sec.Event(ctx, "account_frozen", "admin")

	fams := scrape(t, tel)
	tests := []struct {
		name string
		want map[string]float64
	}{
		{"bank_login_failures_total", map[string]float64{"reason=bad_password": 2, "reason=unknown_email": 1}},
		{"bank_token_rejections_total", map[string]float64{"reason=expired": 1}},
		{"bank_authz_denials_total", map[string]float64{"reason=missing_role": 1}},
		{"bank_validation_failures_total", map[string]float64{"reason=string.email": 1}},
		{"bank_ratelimit_rejections_total", map[string]float64{"reason=auth_ip": 1}},
		{"bank_security_events_total", map[string]float64{
			"event=refresh_reuse,reason=family_revoked": 1,
			"event=account_frozen,reason=admin":         1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fam, ok := fams[tt.name]
			if !ok {
				t.Fatalf("scrape has no family %q; families: %v", tt.name, familyNames(fams))
			}
			if fam.GetType() != dto.MetricType_COUNTER {
				t.Errorf("%s type = %v, want COUNTER", tt.name, fam.GetType())
			}
			got := series(fam)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("%s series = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func familyNames(fams map[string]*dto.MetricFamily) []string {
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestSecurityReasonGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		reason string
		want   string
	}{
		{"snake case", "bad_password", "bad_password"},
		{"dotted and colon", "bank.auth.v1:email", "bank.auth.v1:email"},
		{"slash and dash", "grpc/unavailable-x", "grpc/unavailable-x"},
		{"64 chars", strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"65 chars", strings.Repeat("a", 65), OtherReason},
		{"empty", "", OtherReason},
		{"upper case", "BadPassword", OtherReason},
		{"space", "bad password", OtherReason},
		{"email", "victim@example.com", OtherReason},
		{"label injection", `x",event="forged`, OtherReason},
		{"newline", "a\nb", OtherReason},
		{"non-ascii", "mot_de_passe_é", OtherReason},
		{"nul", "a\x00b", OtherReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := SafeLabel(tt.reason); got != tt.want {
				t.Errorf("SafeLabel(%q) = %q, want %q", tt.reason, got, tt.want)
			}
		})
	}
}

func TestSecurityMalformedLabelsBecomeOther(t *testing.T) {
	t.Parallel()
	tel := newTestTelemetry(t)
	ctx := context.Background()
	tel.Security().TokenRejected(ctx, "Bearer eyJhbGciOi")
	tel.Security().TokenRejected(ctx, "victim@example.com")
	tel.Security().Event(ctx, "User Supplied", "ok")
	tel.Security().Event(ctx, "", "ok")

	fams := scrape(t, tel)
	if got, want := series(fams["bank_token_rejections_total"]), map[string]float64{"reason=other": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bank_token_rejections_total = %v, want %v", got, want)
	}
	if got, want := series(fams["bank_security_events_total"]), map[string]float64{"event=other,reason=ok": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bank_security_events_total = %v, want %v", got, want)
	}
}

func TestSecurityCardinalityCap(t *testing.T) {
	t.Parallel()
	tel := newTestTelemetry(t)
	ctx := context.Background()
	const attempts = 1000
	for i := range attempts {
		// Well-formed but attacker-varied: each would be a new series.
		tel.Security().AuthzDenied(ctx, fmt.Sprintf("user_%d", i))
		tel.Security().Event(ctx, fmt.Sprintf("ev_%d", i), "x")
	}
	fams := scrape(t, tel)
	for _, name := range []string{"bank_authz_denials_total", "bank_security_events_total"} {
		got := series(fams[name])
		if len(got) > MaxReasonsPerCounter+1 {
			t.Errorf("%s has %d series after %d distinct reasons, want at most %d", name, len(got), attempts, MaxReasonsPerCounter+1)
		}
		var total, other float64
		for labels, v := range got {
			total += v
			if strings.Contains(labels, "="+OtherReason) {
				other += v
			}
		}
		if total != attempts {
			t.Errorf("%s total = %v, want %d (nothing dropped)", name, total, attempts)
		}
		if other != attempts-MaxReasonsPerCounter {
			t.Errorf("%s other = %v, want %d", name, other, attempts-MaxReasonsPerCounter)
		}
	}
	// A reason admitted before the cap keeps its own series.
	tel.Security().AuthzDenied(ctx, "user_0")
	if got := series(scrape(t, tel)["bank_authz_denials_total"])["reason=user_0"]; got != 2 {
		t.Errorf("reason=user_0 after cap = %v, want 2", got)
	}
}

func TestNilSecurityIsSafe(t *testing.T) {
	t.Parallel()
	var s *Security
	ctx := context.Background()
	calls := []struct {
		name string
		call func()
	}{
		{"LoginFailed", func() { s.LoginFailed(ctx, "x") }},
		{"TokenRejected", func() { s.TokenRejected(ctx, "x") }},
		{"AuthzDenied", func() { s.AuthzDenied(ctx, "x") }},
		{"ValidationFailed", func() { s.ValidationFailed(ctx, "x") }},
		{"RateLimited", func() { s.RateLimited(ctx, "x") }},
		{"Event", func() { s.Event(ctx, "x", "y") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on a nil *Security panicked: %v", c.name, r)
				}
			}()
			c.call()
		})
	}
}

// TestSecurityDecisionsAreSpanEvents: every decision the counters count is
// also an event on the request's span, with the label values the metric
// got, so that a trace shows why a request was refused; a reason made of
// request data becomes "other" there as it does in the metric.
func TestSecurityDecisionsAreSpanEvents(t *testing.T) {
	t.Parallel()
	const jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI0MiJ9.c2ln"
	tests := []struct {
		name      string
		record    func(context.Context, *Security)
		wantEvent string
		wantAttrs string
	}{
		{"failed login", func(ctx context.Context, s *Security) { s.LoginFailed(ctx, "bad_password") },
			"security.login_failure", "reason=bad_password"},
		{"rejected token", func(ctx context.Context, s *Security) { s.TokenRejected(ctx, "bad_signature") },
			"security.token_rejection", "reason=bad_signature"},
		{"authorization denial", func(ctx context.Context, s *Security) { s.AuthzDenied(ctx, "other_owner") },
			"security.authz_denial", "reason=other_owner"},
		{"validation failure", func(ctx context.Context, s *Security) { s.ValidationFailed(ctx, "string.email") },
			"security.validation_failure", "reason=string.email"},
		{"rate limit", func(ctx context.Context, s *Security) { s.RateLimited(ctx, "auth") },
			"security.ratelimit_rejection", "reason=auth"},
		{"other event", func(ctx context.Context, s *Security) { s.Event(ctx, "separation_of_duties", "self_approval") },
			"security.event", "event=separation_of_duties,reason=self_approval"},
		{"token as reason", func(ctx context.Context, s *Security) { s.TokenRejected(ctx, "Bearer "+jwt) },
			"security.token_rejection", "reason=other"},
		{"email as event", func(ctx context.Context, s *Security) { s.Event(ctx, "victim@example.com", jwt) },
			"security.event", "event=other,reason=other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			sec, err := NewSecurity(sdkmetric.NewMeterProvider())
			if err != nil {
				t.Fatalf("NewSecurity: %v", err)
			}
			ctx, span := tp.Tracer("test").Start(context.Background(), "request")
			tt.record(ctx, sec)
			span.End()

			ended := rec.Ended()
			if len(ended) != 1 {
				t.Fatalf("ended spans = %d, want 1", len(ended))
			}
			events := ended[0].Events()
			if len(events) != 1 {
				t.Fatalf("span events = %v, want one %s", events, tt.wantEvent)
			}
			var attrs []string
			for _, kv := range events[0].Attributes {
				attrs = append(attrs, string(kv.Key)+"="+kv.Value.String())
			}
			sort.Strings(attrs)
			if got := strings.Join(attrs, ","); events[0].Name != tt.wantEvent || got != tt.wantAttrs {
				t.Errorf("span event = %s {%s}, want %s {%s}", events[0].Name, got, tt.wantEvent, tt.wantAttrs)
			}
		})
	}
}
