package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// clientContext returns a W3C traceparent of the client's own, with the
// given flags ("00" asks not to be traced, "01" to be), and its trace id.
func clientContext(flags string) (traceparent, traceID string) {
	id, parent := make([]byte, 16), make([]byte, 8)
	rand.Read(id)
	rand.Read(parent)
	traceID = hex.EncodeToString(id)
	return "00-" + traceID + "-" + hex.EncodeToString(parent) + "-" + flags, traceID
}

// traced sends a request carrying a trace context of its own, so that the
// gateway's span of it can be found through its link, and returns the
// response and the client's trace id.
func (c *caller) traced(method, path string, body any, hdr ...string) (response, string) {
	c.t.Helper()
	tp, id := clientContext("01")
	return c.do(method, path, body, append(hdr, "traceparent", tp)...), id
}

// gatewayTrace waits for the gateway's span that links to the client's
// trace clientID and returns it; it fails the test unless there is exactly
// one.
func gatewayTrace(t *testing.T, clientID string) span {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var found []span
		for _, s := range bank.spans.all() {
			for _, l := range s.Links {
				if l == clientID && s.Service == "gateway" {
					found = append(found, s)
				}
			}
		}
		if len(found) == 1 {
			return found[0]
		}
		if len(found) > 1 || time.Now().After(deadline) {
			t.Fatalf("gateway spans linking to the client's trace %s = %d, want 1", clientID, len(found))
		}
	}
}

// inTrace returns the spans of trace id.
func inTrace(id string) []span {
	var out []span
	for _, s := range bank.spans.all() {
		if s.TraceID == id {
			out = append(out, s)
		}
	}
	return out
}

// waitEvent waits until a span of service in trace id carries the event
// name whose reason has the prefix reason, and returns every event of the
// trace it saw, as "service:event{reason}", for the failure message.
func waitEvent(trace, service, name, reason string) (bool, []string) {
	var seen []string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		seen = seen[:0]
		for _, s := range inTrace(trace) {
			for _, e := range s.Events {
				seen = append(seen, s.Service+":"+e.Name+"{"+e.Attrs["event"]+" "+e.Attrs["reason"]+"}")
				if s.Service == service && e.Name == name && strings.HasPrefix(e.Attrs["reason"], reason) {
					return true, seen
				}
			}
		}
	}
	return false, seen
}

// accessLine returns the gateway's access-log line of the request whose
// X-Request-Id was id.
func accessLine(t *testing.T, id string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		for _, line := range logLines(t, "gateway") {
			if line["msg"] == "request" && line["request_id"] == id {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for request %s", id)
		}
	}
}

// logLines returns the JSON lines a process has logged so far.
func logLines(t *testing.T, process string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(bank.logDir, process+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			out = append(out, line)
		}
	}
	return out
}

// TestHostileTraceContextIsLinkedNotTrusted: a client that sends a trace
// context asking not to be traced, or naming a trace id of its choosing,
// with baggage, is traced anyway, under a root the gateway chose, with the
// client's context as a link. The whole request (gateway, the services,
// every PostgreSQL statement) is in the gateway's trace; the access log and
// the audit rows name it; nothing carries the client's trace id.
func TestHostileTraceContextIsLinkedNotTrusted(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "hostile-trace"), manager(t, "mgr-hostile")
	a, b := u.openAccount("EUR"), u.openAccount("EUR")
	mgr.deposit(a, 1_000, "EUR").must(t, 200, "deposit")
	victim := register(t, "hostile-victim").openAccount("EUR")
	transfer := func(hdr ...string) response {
		return u.do("POST", "/v1/transfers", map[string]any{"fromAccountId": a, "toAccountId": b, "amount": "10", "currency": "EUR"},
			append(hdr, "Idempotency-Key", rand.Text())...)
	}
	tests := []struct {
		name, flags string
		send        func(hdr ...string) response
		status      int
		services    []string // each must have a span in the gateway's trace ("postgres": a statement)
		audited     bool     // the request writes an audit row
	}{
		{"transfer, asking not to be traced", "00", transfer, 200, []string{"gateway", "transactions", "postgres"}, true},
		{"transfer, under a chosen trace id", "01", transfer, 200, []string{"gateway", "transactions", "postgres"}, true},
		{"another user's account, asking not to be traced", "00", func(hdr ...string) response {
			return u.do("GET", "/v1/accounts/"+victim, nil, hdr...)
		}, 404, []string{"gateway", "accounts"}, true},
		{"a forged token, under a chosen trace id", "01", func(hdr ...string) response {
			forger := newCaller(t)
			forger.token = foreignToken(t, u.userID)
			return forger.do("GET", "/v1/users/me", nil, hdr...)
		}, 401, []string{"gateway"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, clientID := clientContext(tt.flags)
			reqID := "hostile-" + strings.ToLower(rand.Text()[:12])
			hdr := []string{"traceparent", tp, "baggage", "user_id=" + u.userID + ",role=admin", "X-Request-Id", reqID}
			tt.send(hdr...).must(t, tt.status, tt.name)
			gw := gatewayTrace(t, clientID)
			if gw.TraceID == clientID || gw.ParentID != "" {
				t.Errorf("gateway span trace %s parent %q, want a root of the gateway's own, not the client's %s", gw.TraceID, gw.ParentID, clientID)
			}
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				have := map[string]bool{}
				for _, s := range inTrace(gw.TraceID) {
					have[s.Service] = true
					have["postgres"] = have["postgres"] || strings.Contains(s.Attrs["db.system"]+s.Attrs["db.system.name"], "postgresql")
				}
				missing := ""
				for _, svc := range tt.services {
					if !have[svc] {
						missing = svc
					}
				}
				if missing == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("trace %s has no span of %s (has %v)", gw.TraceID, missing, have)
				}
			}
			for _, s := range bank.spans.all() {
				if s.TraceID == clientID {
					t.Errorf("%s exported span %q under the client's trace id", s.Service, s.Name)
				}
			}
			if got := accessLine(t, reqID)["trace_id"]; got != gw.TraceID {
				t.Errorf("access log trace_id = %v, want the gateway's %s", got, gw.TraceID)
			}
			if tt.audited {
				checkAuditTrace(t, gw.TraceID, clientID)
			}
		})
	}
}

// checkAuditTrace waits for an audit row recording trace and checks no row
// records the client's own trace id.
func checkAuditTrace(t *testing.T, trace, clientID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, bank.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const q = `SELECT count(*) FILTER (WHERE trace_id = $1), count(*) FILTER (WHERE trace_id = $2) FROM (
		SELECT trace_id FROM auth.audit_events UNION ALL SELECT trace_id FROM accounts.audit_events
		UNION ALL SELECT trace_id FROM ledger.audit_events) rows`
	for {
		var ours, theirs int
		if err := conn.QueryRow(ctx, q, trace, clientID).Scan(&ours, &theirs); err != nil {
			t.Fatal(err)
		}
		if theirs != 0 {
			t.Errorf("%d audit rows record the client's trace id %s", theirs, clientID)
		}
		if ours > 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("no audit row records the gateway's trace %s", trace)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSecurityDecisionsAreTraced: each security decision is an event, with
// the reason the metrics use, on a span of the service that decided it, in
// the request's trace; the client's answer is unchanged (a BOLA denial is
// still the 404 of a missing account).
func TestSecurityDecisionsAreTraced(t *testing.T) {
	t.Parallel()
	u := register(t, "decisions")
	victimAcct := register(t, "decisions-victim").openAccount("EUR")
	mgr := manager(t, "decisions-mgr")
	own := mgr.openAccount("EUR")
	a, b := u.openAccount("EUR"), u.openAccount("EUR")
	mgr.deposit(a, 1_000, "EUR").must(t, 200, "deposit")
	replayKey := rand.Text()
	u.transfer(replayKey, a, b, 5, "EUR").must(t, 200, "first transfer")

	tests := []struct {
		name            string
		send            func() (response, string)
		status          int
		service, event  string
		reason          string // a prefix of the event's reason
		wantEventOfType string // for security.event: its event attribute
	}{
		{"forged token", func() (response, string) {
			c := newCaller(t)
			c.token = foreignToken(t, u.userID)
			return c.traced("GET", "/v1/users/me", nil)
		}, 401, "gateway", "security.token_rejection", "unknown_kid", ""},
		{"BOLA read", func() (response, string) { return u.traced("GET", "/v1/accounts/"+victimAcct, nil) },
			404, "accounts", "security.authz_denial", "not_owner", ""},
		{"validation failure", func() (response, string) {
			return u.traced("POST", "/v1/accounts", map[string]any{"currency": "XXX"})
		}, 400, "accounts", "security.validation_failure", "string.in", ""},
		{"failed login", func() (response, string) {
			return newCaller(t).traced("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "wrong password"})
		}, 401, "auth", "security.login_failure", "bad_password", ""},
		{"rate limit", func() (response, string) {
			c := newCaller(t)
			for range 25 {
				r, id := c.traced("POST", "/v1/auth/refresh", map[string]any{"refreshToken": "never-issued-" + rand.Text()})
				if r.Status == http.StatusTooManyRequests {
					return r, id
				}
			}
			t.Fatal("no 429 after 25 auth requests from one client")
			return response{}, ""
		}, 429, "gateway", "security.ratelimit_rejection", "auth", ""},
		{"throttled login", func() (response, string) {
			victim, guesser := register(t, "decisions-throttled"), newCaller(t)
			for range 5 { // BANK_LOGIN_MAX_FAILURES for one account from one client
				guesser.do("POST", "/v1/auth/login", map[string]any{"email": victim.email, "password": "not the password"})
			}
			return guesser.traced("POST", "/v1/auth/login", map[string]any{"email": victim.email, "password": "correct horse battery"})
		}, 429, "auth", "security.login_failure", "throttled", ""},
		{"separation of duties", func() (response, string) {
			return mgr.traced("POST", "/v1/accounts/"+own+"/deposits",
				map[string]any{"amount": "500", "currency": "EUR", "reference": "cash"}, "Idempotency-Key", rand.Text())
		}, 403, "transactions", "security.event", "", "separation_of_duties"},
		{"idempotent replay", func() (response, string) {
			return u.traced("POST", "/v1/transfers",
				map[string]any{"fromAccountId": a, "toAccountId": b, "amount": "5", "currency": "EUR", "description": "e2e"}, "Idempotency-Key", replayKey)
		}, 200, "transactions", "security.event", "replayed", "idempotent_replay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, clientID := tt.send()
			r.must(t, tt.status, tt.name)
			gw := gatewayTrace(t, clientID)
			ok, seen := waitEvent(gw.TraceID, tt.service, tt.event, tt.reason)
			if !ok {
				t.Fatalf("trace %s has no %s event from %s with reason %s*; events: %v", gw.TraceID, tt.event, tt.service, tt.reason, seen)
			}
			if tt.wantEventOfType != "" && !strings.Contains(strings.Join(seen, " "), tt.service+":"+tt.event+"{"+tt.wantEventOfType+" ") {
				t.Errorf("trace %s events %v, want a %s of %s", gw.TraceID, seen, tt.event, tt.wantEventOfType)
			}
		})
	}
}

// gatewaySpanName is every name a gateway span may have: a standard method
// or HTTP, then the route template if one matched.
var gatewaySpanName = regexp.MustCompile(`^(CONNECT|DELETE|GET|HEAD|OPTIONS|PATCH|POST|PUT|TRACE|HTTP)( /[a-z0-9/{}_.:-]*)?$`)

// serviceSpanName is every name any other span may have: an RPC of
// Bastion's or of the gRPC health service, served or called, or a database
// step named by otelpgx (a statement by its SQL verb).
var serviceSpanName = regexp.MustCompile(`^(bank\.(auth|accounts|transactions)\.v1\.[A-Za-z]+Service/[A-Za-z]+` +
	`|grpc\.health\.v1\.Health/(Check|Watch)` +
	`|connect|pool\.acquire|batch start|(prepare |batch query |query )?[A-Z]+)$`)

// TestSpanNamesStayInAFixedSet: a client chooses the method of its
// request, but not the name of any span: across every span of the run,
// names come from a fixed set.
func TestSpanNamesStayInAFixedSet(t *testing.T) {
	t.Parallel()
	c := newCaller(t)
	for _, m := range []string{"M138042631", strings.Repeat("M", 3010)} {
		r, clientID := c.traced(m, "/openapi.json", nil)
		r.must(t, http.StatusMethodNotAllowed, m[:10]+" /openapi.json")
		if got := gatewayTrace(t, clientID).Name; got != "HTTP /openapi.json" {
			t.Errorf("span name of %.10s /openapi.json = %.40q, want %q", m, got, "HTTP /openapi.json")
		}
	}
	for _, s := range bank.spans.all() {
		re := serviceSpanName
		if s.Service == "gateway" && s.Server {
			re = gatewaySpanName
		}
		if !re.MatchString(s.Name) {
			t.Errorf("%s span name %.60q is outside the fixed set", s.Service, s.Name)
		}
	}
}

// exemplarLine matches one OpenMetrics sample with an exemplar and captures
// the series and the exemplar's trace id.
var exemplarLine = regexp.MustCompile(`^(\S+) \S+(?: \S+)? # \{[^}]*trace_id="([0-9a-f]{32})"`)

// exemplars scrapes process's metrics as Prometheus does when it stores
// exemplars (OpenMetrics) and returns each series' exemplar trace id.
func exemplars(t *testing.T, process string) map[string]string {
	t.Helper()
	req, err := http.NewRequest("GET", bank.metrics[process], nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", process, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("%s metrics Content-Type = %q, want OpenMetrics", process, ct)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := exemplarLine.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out
}

// TestExemplarsLeadFromCountersToTraces: a spike of rejected tokens leads,
// through the counter's exemplar, to the trace of a rejected request, which
// says why; the request-duration histograms of the edge and the services
// lead to traces the same way.
func TestExemplarsLeadFromCountersToTraces(t *testing.T) {
	t.Parallel()
	c := newCaller(t)
	c.token = foreignToken(t, randomID)
	for range 3 {
		r, clientID := c.traced("GET", "/v1/users/me", nil)
		r.must(t, 401, "forged token")
		gatewayTrace(t, clientID)
	}
	tests := []struct {
		process, series    string
		wantEvent, service string // the event the exemplar's trace must hold; "" for any trace
	}{
		{"gateway", "bank_token_rejections_total{", "security.token_rejection", "gateway"},
		{"gateway", "http_server_request_duration_seconds_bucket{", "", ""},
		{"accounts", "rpc_server_call_duration_seconds_bucket{", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.process+" "+strings.TrimSuffix(tt.series, "{"), func(t *testing.T) {
			var traces []string
			for series, trace := range exemplars(t, tt.process) {
				if strings.HasPrefix(series, tt.series) {
					traces = append(traces, trace)
				}
			}
			if len(traces) == 0 {
				t.Fatalf("no %s series of %s has an exemplar", tt.series, tt.process)
			}
			trace := traces[0]
			if tt.wantEvent == "" {
				if gatewaySpans := inTraceWait(trace); len(gatewaySpans) == 0 {
					t.Errorf("exemplar trace %s of %s has no span", trace, tt.series)
				}
				return
			}
			if ok, seen := waitEvent(trace, tt.service, tt.wantEvent, ""); !ok {
				t.Errorf("exemplar trace %s of %s has no %s event; events %v", trace, tt.series, tt.wantEvent, seen)
			}
		})
	}
}

// inTraceWait waits for the spans of trace id to arrive, and returns them.
func inTraceWait(id string) []span {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if spans := inTrace(id); len(spans) > 0 {
			return spans
		}
	}
	return nil
}
