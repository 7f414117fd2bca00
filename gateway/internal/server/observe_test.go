package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestUpstreamThrottleKeepsItsRetryAfter: a 429 decided by a service (the
// login-failure lock) carries the service's delay and the edge's policy.
func TestUpstreamThrottleKeepsItsRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp := h.do(t, h.h2, request{method: "POST", path: "/v1/auth/login", body: `{"email":"` + lockedEmail + `","password":"` + goodPassword + `"}`})
	if resp.status != http.StatusTooManyRequests {
		t.Fatalf("locked login = %d, want 429 (%s)", resp.status, resp.body)
	}
	p := resp.problem(t)
	if got := resp.header.Get("Retry-After"); got != "90" {
		t.Errorf("Retry-After = %q, want the service's 90", got)
	}
	if !strings.HasPrefix(resp.header.Get("RateLimit-Policy"), `"auth"`) || resp.header.Get("RateLimit") == "" {
		t.Errorf("RateLimit-Policy %q, RateLimit %q: want the edge's auth budget", resp.header.Get("RateLimit-Policy"), resp.header.Get("RateLimit"))
	}
	if p.Type != "urn:bastion:problem:login-locked" || p.Detail != "too many failed logins" {
		t.Errorf("problem = %+v", p)
	}
}

// TestShedLoginIs429WithRetryAfter: a login the auth service sheds because
// its hash pool is full (ResourceExhausted, reason hash_pool_busy, a 1 s
// retry delay) reaches the client as 429 with Retry-After, not as a 5xx, so
// that clients back off instead of treating the bank as down.
func TestShedLoginIs429WithRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp := h.do(t, h.h2, request{method: "POST", path: "/v1/auth/login", body: `{"email":"` + busyEmail + `","password":"` + goodPassword + `"}`})
	if resp.status != http.StatusTooManyRequests {
		t.Fatalf("shed login = %d, want 429 (%s)", resp.status, resp.body)
	}
	if got := resp.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want the service's 1", got)
	}
	if !strings.HasPrefix(resp.header.Get("RateLimit-Policy"), `"auth"`) || resp.header.Get("RateLimit") == "" {
		t.Errorf("RateLimit-Policy %q, RateLimit %q: want the edge's auth budget", resp.header.Get("RateLimit-Policy"), resp.header.Get("RateLimit"))
	}
	p := resp.problem(t)
	if p.Code != "RESOURCE_EXHAUSTED" || p.Type != "urn:bastion:problem:hash-pool-busy" || p.Detail != "server busy, try again shortly" {
		t.Errorf("problem = %+v, want RESOURCE_EXHAUSTED, hash-pool-busy, the service's message", p)
	}
}

// TestMetricsAreLabelledByRoute: request metrics carry the route template,
// never a concrete path with an id in it.
func TestMetricsAreLabelledByRoute(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h := newHarness(t, func(o *options) { o.meter = mp })
	user := h.env.Token(t, ownerID, "user")
	h.do(t, h.h2, request{method: "GET", path: "/v1/accounts/" + ownedAccount, token: user})
	h.do(t, h.h2, request{method: "GET", path: "/v1/accounts/" + toAccount, token: user})
	h.do(t, h.h2, request{method: "GET", path: "/healthz"})
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "http.server.request.duration" {
				continue
			}
			hist, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Fatalf("%s is %T", m.Name, m.Data)
			}
			for _, dp := range hist.DataPoints {
				if v, ok := dp.Attributes.Value(attribute.Key("http.route")); ok {
					routes = append(routes, v.AsString())
				}
			}
		}
	}
	for _, want := range []string{"/v1/accounts/{account_id}", "/healthz"} {
		if !slices.Contains(routes, want) {
			t.Errorf("routes in metrics = %v, want %s", routes, want)
		}
	}
	for _, r := range routes {
		if strings.Contains(r, ownedAccount) || strings.Contains(r, toAccount) {
			t.Errorf("metric route %q contains an id", r)
		}
	}
}
