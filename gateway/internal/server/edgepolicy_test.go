package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/gateway/internal/docs"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
)

// wireKeys are the only metadata keys a service may receive from the
// gateway: gRPC's own, the trace context, and the three the policy sets.
// Never baggage: the edge reads none from a client.
var wireKeys = []string{":authority", "content-type", "user-agent", "te", "grpc-timeout", "grpc-accept-encoding",
	"traceparent", "tracestate", "authorization", "x-request-id", "x-bank-client-ip"}

func lastWire(t *testing.T, h *harness) metadata.MD {
	t.Helper()
	w := h.rec.Wire()
	if len(w) == 0 {
		t.Fatal("no call reached a service")
	}
	return w[len(w)-1]
}

// TestSpoofedHeadersChangeNothing sends every identity-looking header a
// client could try, and checks what the service received off the wire.
func TestSpoofedHeadersChangeNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user := h.env.Token(t, ownerID, "user")
	admin := h.env.Token(t, otherUserID, "admin")
	spoof := map[string]string{
		"Grpc-Metadata-Role":             "admin",
		"Grpc-Metadata-Roles":            "admin",
		"Grpc-Metadata-X-User-Id":        otherUserID,
		"Grpc-Metadata-Authorization":    "Bearer " + admin,
		"Grpc-Metadata-X-Bank-Client-Ip": "6.6.6.6",
		"Grpc-Metadata-X-Request-Id":     "spoofed-id",
		"X-User-Id":                      otherUserID,
		"X-Roles":                        "admin",
		"X-Forwarded-For":                "6.6.6.6",
		"X-Forwarded-Host":               "evil.example",
		"X-Real-Ip":                      "6.6.6.6",
		"Forwarded":                      "for=6.6.6.6",
		"X-Bank-Client-Ip":               "6.6.6.6",
		"Grpcgateway-Authorization":      "Bearer " + admin,
		"Baggage":                        "user_id=" + otherUserID + ",role=admin",
	}
	resp := h.do(t, h.h2, request{method: "GET", path: "/v1/users/me", token: user, headers: spoof})
	if resp.status != 200 {
		t.Fatalf("GET /v1/users/me = %d, want 200 (%s)", resp.status, resp.body)
	}
	md := lastWire(t, h)
	for k := range md {
		if !slices.Contains(wireKeys, k) {
			t.Errorf("service received metadata %q = %q; only the gateway's own keys may pass", k, md[k])
		}
	}
	if got := md.Get("authorization"); !slices.Equal(got, []string{"Bearer " + user}) {
		t.Errorf("service received authorization %q, want exactly the verified token", got)
	}
	if got := md.Get("x-bank-client-ip"); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("service received client IP %q, want the socket's 127.0.0.1", got)
	}
	if got := md.Get("x-request-id"); len(got) != 1 || got[0] == "spoofed-id" || got[0] != resp.header.Get("X-Request-Id") {
		t.Errorf("service received request id %q, want the response's %q", got, resp.header.Get("X-Request-Id"))
	}
	calls := h.rec.Calls()
	last := calls[len(calls)-1]
	if last.user.ID != ownerID || !slices.Equal(last.user.Roles, []string{"user"}) || last.clientIP != "127.0.0.1" {
		t.Errorf("handler saw user %+v from %q, want %s with [user] from 127.0.0.1", last.user, last.clientIP, ownerID)
	}

	// The spoofed role does not open an admin route either.
	resp = h.do(t, h.h2, request{method: "PUT", path: "/v1/users/" + otherUserID + "/roles", token: user, body: `{"roles":["admin"]}`, headers: spoof})
	if resp.status != http.StatusForbidden {
		t.Errorf("PUT roles with spoofed admin headers = %d, want 403", resp.status)
	}
}

// TestPublicRouteForwardsNoToken: a client's Authorization on a public
// route is neither checked nor passed on.
func TestPublicRouteForwardsNoToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp := h.do(t, h.h2, request{method: "POST", path: "/v1/auth/login", token: h.env.Token(t, ownerID, "admin"),
		body: `{"email":"a@example.com","password":"` + goodPassword + `"}`})
	if resp.status != 200 {
		t.Fatalf("login = %d, want 200 (%s)", resp.status, resp.body)
	}
	if got := lastWire(t, h).Get("authorization"); len(got) != 0 {
		t.Errorf("login forwarded authorization %q, want none", got)
	}
}

func TestTokenCheckedBeforeAnyUpstreamCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user := h.env.Token(t, ownerID, "user")
	revoked, claims, err := h.env.Signer.Sign(ownerID, []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	h.env.Revocations.Add(claims.ID, claims.ExpiresAt.Time)
	tests := []struct {
		name  string
		auths []string
	}{
		{"two Authorization headers", []string{"Bearer " + user, "Bearer " + h.env.Token(t, otherUserID, "admin")}},
		{"revoked token", []string{"Bearer " + revoked}},
		{"tab instead of space", []string{"Bearer\t" + user}},
		{"empty bearer", []string{"Bearer "}},
		{"token in a second word", []string{"Bearer " + user + " extra"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wireBefore := len(h.rec.Wire())
			req, _ := http.NewRequestWithContext(t.Context(), "GET", h.base+"/v1/users/me", nil)
			for _, a := range tc.auths {
				req.Header.Add("Authorization", a)
			}
			resp, err := h.h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", resp.StatusCode)
			}
			if n := len(h.rec.Wire()); n != wireBefore {
				t.Errorf("%d calls reached a service; the edge must refuse first", n-wireBefore)
			}
		})
	}
}

// TestIdempotencyKeyHeaderWins: the key comes from the Idempotency-Key
// header only. A key in the body is not a field of docs/api.md's transfer body,
// so it is refused (never silently replaced), with or without the header.
func TestIdempotencyKeyHeaderWins(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user := h.env.Token(t, ownerID, "user")
	bodyKey := `,"idempotencyKey":"from-the-body"`
	tests := []struct {
		name    string
		body    string
		keys    []string
		status  int
		wantKey string // what the service must receive; "" means no call
	}{
		{"the header is the key", "", []string{"from-the-header"}, 200, "from-the-header"},
		{"a body key next to the header is refused", bodyKey, []string{"from-the-header"}, 400, ""},
		{"body alone is not enough", bodyKey, nil, 400, ""},
		{"two headers are refused", "", []string{"a", "b"}, 400, ""},
		{"non-printable header is refused by validation", "", []string{"tab\there"}, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.rec.Calls())
			req, _ := http.NewRequestWithContext(t.Context(), "POST", h.base+"/v1/transfers", strings.NewReader(transferBody(`"100"`, tc.body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+user)
			for _, k := range tc.keys {
				req.Header.Add("Idempotency-Key", k)
			}
			resp, err := h.h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			calls := h.rec.Calls()[before:]
			if tc.wantKey == "" {
				if len(calls) != 0 {
					t.Errorf("service was called with %v, want no call", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("service calls = %d, want 1", len(calls))
			}
			if got := calls[0].req.(*transactionsv1.CreateTransferRequest).GetIdempotencyKey(); got != tc.wantKey {
				t.Errorf("service received idempotency key %q, want %q", got, tc.wantKey)
			}
		})
	}
}

func TestOnlyIdempotentReplayedComesBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp := h.do(t, h.h2, request{method: "POST", path: "/v1/transfers", token: h.env.Token(t, ownerID, "user"),
		body: transferBody(`"100"`, ""), headers: map[string]string{"Idempotency-Key": "replay"}})
	if resp.status != 200 || resp.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed transfer = %d with Idempotent-Replayed %q, want 200 and true", resp.status, resp.header.Get("Idempotent-Replayed"))
	}
	for k := range resp.header {
		if strings.Contains(strings.ToLower(k), "shard") || strings.HasPrefix(strings.ToLower(k), "grpc") {
			t.Errorf("response carries upstream header %s", k)
		}
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *options) { o.limits = policy.NewLimits(3, 5, 2, 1000) })
	check429 := func(t *testing.T, r response, policyName string) {
		t.Helper()
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("status = %d, want 429 (%s)", r.status, r.body)
		}
		r.problem(t)
		if r.header.Get("Retry-After") == "" || !strings.HasPrefix(r.header.Get("RateLimit-Policy"), `"`+policyName+`"`) || r.header.Get("RateLimit") == "" {
			t.Errorf("429 headers Retry-After %q RateLimit-Policy %q RateLimit %q, want all set for %s",
				r.header.Get("Retry-After"), r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"), policyName)
		}
	}
	t.Run("auth routes per IP, X-Forwarded-For ignored", func(t *testing.T) {
		t.Parallel()
		var last response
		for i := range 4 {
			last = h.do(t, h.h1, request{method: "POST", path: "/v1/auth/login", body: `{"email":"a@example.com","password":"x"}`,
				headers: map[string]string{"X-Forwarded-For": "10.0.0." + string(rune('1'+i))}})
			if i < 3 && last.status == http.StatusTooManyRequests {
				t.Fatalf("login %d was limited; the budget is 3", i+1)
			}
		}
		check429(t, last, "auth")
	})
	t.Run("money routes per user, on top of the user budget", func(t *testing.T) {
		t.Parallel()
		mover := h.env.Token(t, ownerID, "user")
		var last response
		for i := range 3 {
			last = h.do(t, h.h2, request{method: "POST", path: "/v1/transfers", token: mover, body: transferBody(`"1"`, ""),
				headers: map[string]string{"Idempotency-Key": "rl-" + string(rune('a'+i))}})
		}
		check429(t, last, "transfers")
		// Another user is unaffected.
		if r := h.do(t, h.h2, request{method: "GET", path: "/v1/users/me", token: h.env.Token(t, "3c9a7b1e-2d4f-4e6a-8b0c-1d2e3f4a5b06", "user")}); r.status != 200 {
			t.Errorf("another user got %d, want 200", r.status)
		}
	})
	t.Run("user budget", func(t *testing.T) {
		t.Parallel()
		reader := h.env.Token(t, otherUserID, "user")
		var last response
		for range 6 {
			last = h.do(t, h.h2, request{method: "GET", path: "/v1/users/me", token: reader})
		}
		check429(t, last, "user")
	})
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		name, in string
		echo     bool
	}{
		{"well formed is echoed", "trace-42.A_b", true},
		{"too long is replaced", strings.Repeat("x", 65), false},
		{"odd characters are replaced", "id with spaces", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.do(t, h.h2, request{method: "POST", path: "/v1/auth/login", body: `{"email":"a@example.com","password":"x"}`,
				headers: map[string]string{"X-Request-Id": tc.in}})
			got := resp.header.Get("X-Request-Id")
			if tc.echo != (got == tc.in) || got == "" {
				t.Errorf("X-Request-Id = %q for %q, want echo %v", got, tc.in, tc.echo)
			}
			if up := lastWire(t, h).Get("x-request-id"); !slices.Equal(up, []string{got}) {
				t.Errorf("service received x-request-id %q, want %q", up, got)
			}
		})
	}
}

// TestClientDeadlineHeaderIgnored: Grpc-Timeout would let a client choose the
// upstream deadline (too short breaks its own call; too long holds a slot).
func TestClientDeadlineHeaderIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, v := range []string{"1n", "99999H", "garbage"} {
		resp := h.do(t, h.h2, request{method: "GET", path: "/v1/users/me", token: h.env.Token(t, ownerID, "user"), headers: map[string]string{"Grpc-Timeout": v}})
		if resp.status != 200 {
			t.Errorf("Grpc-Timeout %q: status %d, want 200 (header ignored)", v, resp.status)
		}
		if got := lastWire(t, h).Get("grpc-timeout"); len(got) == 1 && !strings.HasSuffix(got[0], "m") && !strings.HasSuffix(got[0], "u") && !strings.HasSuffix(got[0], "S") {
			t.Errorf("service received grpc-timeout %q", got)
		}
	}
}

func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		path   string
		status int
		ctype  string
		body   string
		csp    string
	}{
		{"/healthz", 200, "application/json", `{"status":"ok"}`, ""},
		{"/readyz", 200, "application/json", `{"status":"ok"}`, ""},
		{"/openapi.json", 200, "application/json", `"/v1/transfers"`, ""},
		{"/docs/", 200, "text/html; charset=utf-8", "swagger-ui-bundle.js", docs.ContentSecurityPolicy},
		{"/docs/init.js", 200, "text/javascript; charset=utf-8", "/openapi.json", docs.ContentSecurityPolicy},
		{"/docs/swagger-ui/swagger-ui-bundle.js", 200, "text/javascript; charset=utf-8", "", docs.ContentSecurityPolicy},
		{"/docs/swagger-ui/LICENSE", 200, "", "Apache License", docs.ContentSecurityPolicy},
		{"/docs/swagger-ui/", 404, "application/problem+json", "", ""},
		{"/docs/../../go.mod", 404, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp := h.do(t, h.h1, request{method: "GET", path: tc.path})
			if resp.status != tc.status {
				t.Fatalf("GET %s = %d, want %d", tc.path, resp.status, tc.status)
			}
			if tc.ctype != "" && resp.header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", resp.header.Get("Content-Type"), tc.ctype)
			}
			if !strings.Contains(string(resp.body), tc.body) {
				t.Errorf("body lacks %q", tc.body)
			}
			if tc.csp != "" && resp.header.Get("Content-Security-Policy") != tc.csp {
				t.Errorf("CSP = %q, want %q", resp.header.Get("Content-Security-Policy"), tc.csp)
			}
			if strings.Contains(string(resp.body), "cdn") || strings.Contains(string(resp.body), "unpkg") {
				t.Errorf("GET %s references a CDN", tc.path)
			}
		})
	}
	if resp := h.do(t, h.h1, request{method: "POST", path: "/healthz", body: "{}"}); resp.status < 400 || resp.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("POST /healthz = %d %q, want a problem", resp.status, resp.header.Get("Content-Type"))
	}
}

func TestOperationalEndpointsAreLimitedPerIP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *options) { o.limits = policy.NewLimits(1000, 1000, 1000, 2) })
	var last response
	start := time.Now()
	for range 3 {
		last = h.do(t, h.h1, request{method: "GET", path: "/healthz"})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" || time.Since(start) > 5*time.Second {
		t.Errorf("third /healthz = %d (Retry-After %q), want 429", last.status, last.header.Get("Retry-After"))
	}
}
