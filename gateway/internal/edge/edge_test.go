package edge_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"socket address without proxies", "203.0.113.7:5555", nil, nil, "203.0.113.7"},
		{"spoofed XFF from an untrusted peer is ignored", "203.0.113.7:5555", []string{"1.2.3.4"}, proxies, "203.0.113.7"},
		{"spoofed XFF with no proxies configured is ignored", "203.0.113.7:5555", []string{"1.2.3.4"}, nil, "203.0.113.7"},
		{"trusted proxy: right-most entry", "10.1.1.1:443", []string{"198.51.100.9"}, proxies, "198.51.100.9"},
		{"trusted proxy: client-written left entries ignored", "10.1.1.1:443", []string{"6.6.6.6, 198.51.100.9"}, proxies, "198.51.100.9"},
		{"chain of trusted proxies is skipped", "10.1.1.1:443", []string{"198.51.100.9, 10.2.2.2", "10.3.3.3"}, proxies, "198.51.100.9"},
		{"all hops trusted gives the left-most", "10.1.1.1:443", []string{"10.9.9.9"}, proxies, "10.9.9.9"},
		{"garbage hop stops at last good address", "10.1.1.1:443", []string{"1.1.1.1, nonsense"}, proxies, "10.1.1.1"},
		{"trusted proxy without XFF is the client", "10.1.1.1:443", nil, proxies, "10.1.1.1"},
		{"IPv6 peer", "[2001:db8::1]:443", nil, proxies, "2001:db8::1"},
		{"IPv4-mapped IPv6 is unmapped", "[::ffff:203.0.113.7]:443", nil, nil, "203.0.113.7"},
		{"IPv6 trusted proxy", "[fd00::1]:443", []string{"2001:db8::5"}, proxies, "2001:db8::5"},
		{"unparsable remote address", "pipe", nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := edge.ClientIP(tc.remote, tc.xff, tc.trusted); got != tc.want {
				t.Errorf("ClientIP(%q, %q) = %q, want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

// seen records what the handler behind the middleware observed.
type seen struct {
	state  *edge.State
	header http.Header
	body   string
	called bool
}

func serve(t *testing.T, cfg edge.Config, r *http.Request) (*httptest.ResponseRecorder, *seen) {
	t.Helper()
	s := &seen{}
	h := edge.Middleware(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.state, _ = edge.StateFrom(r.Context())
		s.header = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		s.body = string(b)
		w.WriteHeader(http.StatusOK)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec, s
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		echo bool
	}{
		{"well formed is echoed", "abc-123_x.Y", true},
		{"64 characters is echoed", strings.Repeat("a", 64), true},
		{"65 characters is replaced", strings.Repeat("a", 65), false},
		{"header injection is replaced", "abc\r\nSet-Cookie: x=1", false},
		{"spaces are replaced", "a b", false},
		{"slashes are replaced", "../../etc", false},
		{"empty gets one", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
			if tc.in != "" {
				r.Header["X-Request-Id"] = []string{tc.in}
			}
			rec, s := serve(t, edge.Config{}, r)
			got := rec.Header().Get("X-Request-Id")
			if tc.echo && got != tc.in {
				t.Errorf("X-Request-Id = %q, want echo of %q", got, tc.in)
			}
			if !tc.echo && (got == tc.in || len(got) < 16 || len(got) > 64) {
				t.Errorf("X-Request-Id = %q, want a fresh id", got)
			}
			if s.state.RequestID != got {
				t.Errorf("State.RequestID = %q, want %q", s.state.RequestID, got)
			}
		})
	}
}

func TestSecurityHeadersAndScrubbing(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
	for _, h := range []string{"Grpc-Metadata-Role", "Grpc-Timeout", "X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-User-Id", "X-Bank-Client-Ip", "Te", "X-Http-Method-Override", "X-Real-Ip"} {
		r.Header.Set(h, "admin")
	}
	r.Header.Set("Authorization", "Bearer x")
	rec, s := serve(t, edge.Config{}, r)
	for _, h := range []string{"Grpc-Metadata-Role", "Grpc-Timeout", "X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-User-Id", "X-Bank-Client-Ip", "Te", "X-Http-Method-Override", "X-Real-Ip"} {
		if v := s.header.Get(h); v != "" {
			t.Errorf("handler saw %s = %q, want it removed", h, v)
		}
	}
	if s.header.Get("Authorization") == "" {
		t.Errorf("Authorization was removed; the policy needs it")
	}
	want := map[string]string{
		"X-Content-Type-Options":       "nosniff",
		"Strict-Transport-Security":    edge.HSTS,
		"Cache-Control":                "no-store",
		"Referrer-Policy":              "no-referrer",
		"Content-Security-Policy":      edge.APIContentSecurityPolicy,
		"X-Frame-Options":              "DENY",
		"Cross-Origin-Resource-Policy": "same-origin",
	}
	for k, v := range want {
		if got := rec.Header().Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("response %s = %q, want exactly %q", k, got, v)
		}
	}
	// The values are shared between responses: adding to one response's
	// header must not change the next one's.
	rec.Header().Add("Cache-Control", "private")
	again, _ := serve(t, edge.Config{}, httptest.NewRequest(http.MethodGet, "/v1/users/me", nil))
	if got := again.Header().Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
		t.Errorf("next response's Cache-Control = %q, want exactly no-store", got)
	}
	if s.state.ClientIP != "192.0.2.1" { // httptest's RemoteAddr
		t.Errorf("ClientIP = %q, want the socket address despite X-Forwarded-For", s.state.ClientIP)
	}
}

// countingReader counts the bytes a handler pulled from a body.
type countingReader struct {
	n atomic.Int64
	r io.Reader
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestBodyGuard(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("a", 1<<20)
	tests := []struct {
		name       string
		method     string
		ct         string
		body       string
		length     int64 // -1 for unknown (chunked)
		wantStatus int
		maxRead    int64 // bytes the guard may read; -1 for any
		wantCalled bool
	}{
		{"1 MiB with Content-Length is refused unread", http.MethodPost, "application/json", big, 1 << 20, 413, 0, false},
		{"1 MiB chunked is refused after the limit", http.MethodPost, "application/json", big, -1, 413, edge.DefaultMaxBodyBytes + 4096, false},
		{"exactly the limit is accepted", http.MethodPost, "application/json", strings.Repeat(" ", edge.DefaultMaxBodyBytes), edge.DefaultMaxBodyBytes, 200, -1, true},
		{"one byte over is refused", http.MethodPost, "application/json", strings.Repeat(" ", edge.DefaultMaxBodyBytes+1), -1, 413, -1, false},
		{"form body is 415", http.MethodPost, "application/x-www-form-urlencoded", "a=b", 3, 415, -1, false},
		{"text/plain is 415", http.MethodPut, "text/plain", "{}", 2, 415, -1, false},
		{"json with latin1 charset is 415", http.MethodPost, "application/json; charset=latin1", "{}", 2, 415, -1, false},
		{"json lookalike is 415", http.MethodPost, "application/jsonx", "{}", 2, 415, -1, false},
		{"json with an extra parameter is 415", http.MethodPost, "application/json; charset=utf-8; v=1", "{}", 2, 415, -1, false},
		{"two types is 415", http.MethodPost, "application/json, text/plain", "{}", 2, 415, -1, false},
		{"json in capitals is parsed and fine", http.MethodPost, "Application/JSON", "{}", 2, 200, -1, true},
		{"body without a type is 415", http.MethodPost, "", "{}", 2, 415, -1, false},
		{"json with utf-8 charset is fine", http.MethodPost, "application/json; charset=UTF-8", "{}", 2, 200, -1, true},
		{"empty POST without a type is fine", http.MethodPost, "", "", 0, 200, -1, true},
		{"GET is not checked for a type", http.MethodGet, "text/plain", "", 0, 200, -1, true},
		{"GET with a huge declared body is 413", http.MethodGet, "", big, 1 << 20, 413, 0, false},
		{"declared shorter than sent is read whole", http.MethodPost, "application/json", `{"a":"` + strings.Repeat("b", 3000) + `"}`, 2, 200, -1, true},
		{"declared longer than sent is read whole", http.MethodPost, "application/json", `{"a":"b"}`, 5000, 200, -1, true},
		{"large unknown length is read whole", http.MethodPost, "application/json", strings.Repeat(" ", 40000) + "{}", -1, 200, -1, true},
		{"large declared length is read whole", http.MethodPost, "application/json", strings.Repeat(" ", 40000) + "{}", 40002, 200, -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := &countingReader{r: strings.NewReader(tc.body)}
			r := httptest.NewRequest(tc.method, "/v1/transfers", cr)
			r.ContentLength = tc.length
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			rec, s := serve(t, edge.Config{}, r)
			if rec.Code != tc.wantStatus {
				t.Fatalf("%s %s = %d, want %d (body %s)", tc.method, tc.name, rec.Code, tc.wantStatus, rec.Body)
			}
			if s.called != tc.wantCalled {
				t.Errorf("handler called = %v, want %v", s.called, tc.wantCalled)
			}
			if tc.maxRead >= 0 && cr.n.Load() > tc.maxRead {
				t.Errorf("guard read %d bytes, want at most %d", cr.n.Load(), tc.maxRead)
			}
			if tc.wantStatus >= 400 {
				assertProblem(t, rec, tc.wantStatus)
			}
			if tc.wantCalled && s.body != tc.body {
				t.Errorf("handler read %d bytes, want the whole %d-byte body", len(s.body), len(tc.body))
			}
		})
	}
}

// TestBodyTakesTheRest: the body the guard hands on gives a decoder what is
// left of it, read from any point, once.
func TestBodyTakesTheRest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body  string
		first int // bytes read before Take
	}{{`{"a":"b"}`, 0}, {`{"a":"b"}`, 3}, {`{"a":"b"}`, 9}, {"", 0}} {
		var took, after string
		var isBody bool
		h := edge.Middleware(edge.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, ok := r.Body.(*edge.Body)
			isBody = ok
			if !ok {
				return
			}
			_, _ = io.ReadFull(b, make([]byte, tc.first))
			took = string(b.Take())
			rest, _ := io.ReadAll(b)
			after = string(rest)
		}))
		r := httptest.NewRequest(http.MethodPost, "/v1/transfers", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !isBody || took != tc.body[tc.first:] || after != "" {
			t.Errorf("body %q after %d bytes: *edge.Body %v, Take %q then %q; want %q then nothing", tc.body, tc.first, isBody, took, after, tc.body[tc.first:])
		}
	}
}

// TestURLMustBeText: a path or query string that decodes to anything but
// UTF-8 is a 400 before any handler runs (gRPC could not encode it as a
// proto string, which used to surface as a 500); UTF-8 escapes pass, and
// so does a query string that does not decode, which the router refuses.
func TestURLMustBeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target string
		ok     bool
	}{
		{"/v1/accounts/%FF", false},
		{"/v1/transfers/%C3%28:approve", false},
		{"/v1/accounts?ownerId=%FF", false},
		{"/v1/accounts?page%FESize=1", false},
		{"/v1/accounts/caf%C3%A9?pageToken=%E2%82%AC", true},
		{"/v1/accounts?pageToken=%ZZ", true},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, tc.target, nil)
		rec, s := serve(t, edge.Config{}, r)
		if s.called != tc.ok {
			t.Errorf("%s: handler called = %v, want %v (status %d)", tc.target, s.called, tc.ok, rec.Code)
		}
		if !tc.ok {
			if p := assertProblem(t, rec, http.StatusBadRequest); p.Code != edge.CodeMalformed {
				t.Errorf("%s: code %q, want %q", tc.target, p.Code, edge.CodeMalformed)
			}
		}
	}
}

// TestBodyGuardRefusesTwoContentTypes: a second Content-Type header is 415,
// whichever comes first, rather than the first one deciding alone.
func TestBodyGuardRefusesTwoContentTypes(t *testing.T) {
	t.Parallel()
	for _, second := range []string{"text/plain", "application/json"} {
		r := httptest.NewRequest(http.MethodPost, "/v1/accounts", strings.NewReader(`{"currency":"EUR"}`))
		r.Header.Add("Content-Type", "application/json")
		r.Header.Add("Content-Type", second)
		rec, s := serve(t, edge.Config{}, r)
		if rec.Code != http.StatusUnsupportedMediaType || s.called {
			t.Errorf("application/json then %s: status %d, handler called %v; want 415 unserved", second, rec.Code, s.called)
		}
		assertProblem(t, rec, http.StatusUnsupportedMediaType)
	}
}

func assertProblem(t *testing.T, rec *httptest.ResponseRecorder, status int) edge.Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != edge.ProblemContentType {
		t.Errorf("Content-Type = %q, want %q", ct, edge.ProblemContentType)
	}
	var p edge.Problem
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	if p.Status != status || p.Type == "" || p.Title == "" || p.Code == "" || p.Detail == "" {
		t.Errorf("problem = %+v, want status %d and every member set", p, status)
	}
	if p.RequestID == "" || p.RequestID != rec.Header().Get("X-Request-Id") {
		t.Errorf("problem requestId = %q, want X-Request-Id %q", p.RequestID, rec.Header().Get("X-Request-Id"))
	}
	return p
}

func TestRendererMapsEveryKind(t *testing.T) {
	t.Parallel()
	leak := "pq: duplicate key value violates unique constraint users_email_key at 10.0.3.4"
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		detail     string // "" means: any, but never the leak
		typ        string
		violations int
	}{
		{"invalid with violations", &errs.Error{Kind: errs.Invalid, Msg: "invalid request", Violations: []errs.Violation{{Field: "amount", Message: "must be greater than 0"}}}, 400, "INVALID_ARGUMENT", "invalid request", "urn:bastion:problem:invalid-argument", 1},
		{"unauthenticated hides the reason", errs.Reasoned(errs.Unauthenticated, "revoked", "invalid token"), 401, "UNAUTHENTICATED", "invalid token", "urn:bastion:problem:unauthenticated", 0},
		{"permission", errs.New(errs.Permission, "permission denied"), 403, "PERMISSION_DENIED", "permission denied", "", 0},
		{"not found", errs.New(errs.NotFound, "account not found"), 404, "NOT_FOUND", "account not found", "", 0},
		{"conflict", errs.Reasoned(errs.Conflict, "email_taken", "email already registered"), 409, "ALREADY_EXISTS", "email already registered", "urn:bastion:problem:email-taken", 0},
		{"refused keeps the reason", errs.Reasoned(errs.Refused, "insufficient_funds", "insufficient funds"), 422, "FAILED_PRECONDITION", "insufficient funds", "urn:bastion:problem:insufficient-funds", 0},
		{"rate limited", errs.Throttled("login", "too many failed logins", 90*time.Second), 429, "RESOURCE_EXHAUSTED", "too many failed logins", "", 0},
		{"unavailable never shows its text", errs.Wrap(errs.Unavailable, "dial tcp 10.0.3.4:9102: refused", nil), 503, "UNAVAILABLE", "service unavailable, try again later", "", 0},
		{"internal is generic", errs.Wrap(errs.Internal, leak, nil), 500, "INTERNAL", "internal error", "", 0},
		{"other is generic", errs.New(errs.Other, leak), 500, "INTERNAL", "internal error", "", 0},
		{"foreign error is generic", io.ErrUnexpectedEOF, 500, "INTERNAL", "internal error", "", 0},
		{"control characters are removed", errs.New(errs.NotFound, "no\r\nSet-Cookie: a=b"), 404, "NOT_FOUND", "noSet-Cookie: a=b", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rd := &edge.Renderer{}
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			st := &edge.State{RequestID: "req-1", Authorization: []string{"Bearer x.y.z"}}
			r = r.WithContext(edge.WithState(r.Context(), st))
			rec := httptest.NewRecorder()
			rec.Header().Set("X-Request-Id", "req-1")
			rd.Error(rec, r, tc.err)
			p := assertProblem(t, rec, tc.status)
			if p.Code != tc.code {
				t.Errorf("code = %q, want %q", p.Code, tc.code)
			}
			if p.Detail != tc.detail {
				t.Errorf("detail = %q, want %q", p.Detail, tc.detail)
			}
			if tc.typ != "" && p.Type != tc.typ {
				t.Errorf("type = %q, want %q", p.Type, tc.typ)
			}
			if len(p.Violations) != tc.violations {
				t.Errorf("violations = %v, want %d", p.Violations, tc.violations)
			}
			if strings.Contains(rec.Body.String(), "10.0.3.4") {
				t.Errorf("body %s leaks upstream text", rec.Body)
			}
			gotChallenge := rec.Header().Get("WWW-Authenticate")
			if (tc.status == 401) != (gotChallenge == `Bearer error="invalid_token"`) {
				t.Errorf("WWW-Authenticate = %q for status %d", gotChallenge, tc.status)
			}
		})
	}
}

// TestChallengeFollowsRFC6750: a 401 carries error="invalid_token" only when
// the request presented a bearer token; without one (no header, another
// scheme, a failed login) the challenge is bare, as RFC 6750 §3.1 asks.
func TestChallengeFollowsRFC6750(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		authorization []string
		want          string
	}{
		{"no credentials", nil, "Bearer"},
		{"basic credentials", []string{"Basic YWRtaW46YWRtaW4="}, "Bearer"},
		{"an empty header", []string{""}, "Bearer"},
		{"a bearer token", []string{"Bearer x.y.z"}, `Bearer error="invalid_token"`},
		{"the scheme in another case", []string{"bEaReR x.y.z"}, `Bearer error="invalid_token"`},
		{"two headers, one bearer", []string{"Basic YQ==", "Bearer x.y.z"}, `Bearer error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
			r = r.WithContext(edge.WithState(r.Context(), &edge.State{RequestID: "req-1", Authorization: tc.authorization}))
			rec := httptest.NewRecorder()
			(&edge.Renderer{}).Error(rec, r, errs.Reasoned(errs.Unauthenticated, "missing", "authentication required"))
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.want {
				t.Errorf("WWW-Authenticate with Authorization %q = %q, want %q", tc.authorization, got, tc.want)
			}
		})
	}
}

func TestRendererRateLimitHeaders(t *testing.T) {
	t.Parallel()
	lim := ratelimit.Limit{Name: "auth", Rate: 20, Period: time.Minute}
	mem := ratelimit.NewMemory(time.Now, 10)
	var last ratelimit.Result
	for i := 0; i < 21; i++ {
		res, err := mem.Allow(t.Context(), "ip:1", lim)
		if err != nil {
			t.Fatal(err)
		}
		last = res
	}
	if last.Allowed {
		t.Fatalf("Allow #21 = allowed, want refused")
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/auth/login", nil)
	st := &edge.State{RequestID: "r"}
	st.SetRateLimit(last)
	r = r.WithContext(edge.WithState(r.Context(), st))
	rec := httptest.NewRecorder()
	(&edge.Renderer{}).Error(rec, r, errs.Throttled("auth", "too many requests", last.RetryAfter))
	if rec.Code != 429 {
		t.Fatalf("status = %d, want 429", rec.Code)
	}
	for _, h := range []string{"Retry-After", "RateLimit-Policy", "RateLimit"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("429 without %s header", h)
		}
	}
	if ra := rec.Header().Get("Retry-After"); ra == "0" {
		t.Errorf("Retry-After = %q, want at least 1", ra)
	}
}

// A 503 carries Retry-After when the service said when to retry (the
// ledger's full queue), rounded up to whole seconds, and not otherwise.
func TestUnavailableRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"busy, retry in 1500ms", &errs.Error{Kind: errs.Unavailable, Reason: "ledger_busy", Msg: "busy", RetryAfter: 1500 * time.Millisecond}, "2"},
		{"down, no delay", errs.Wrap(errs.Unavailable, "upstream unavailable", errors.New("dial")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			(&edge.Renderer{}).Error(rec, httptest.NewRequest(http.MethodPost, "/v1/transfers", nil), tt.err)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != tt.want {
				t.Errorf("Error(%v) = %d, Retry-After %q; want 503, %q", tt.err, rec.Code, rec.Header().Get("Retry-After"), tt.want)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	origins, err := edge.ParseOrigins("https://app.example.com, http://localhost:3000")
	if err != nil {
		t.Fatalf("ParseOrigins: %v", err)
	}
	tests := []struct {
		name       string
		cors       edge.CORS
		method     string
		origin     string
		preflight  bool
		wantAllow  string
		wantStatus int
	}{
		{"off by default", edge.CORS{}, http.MethodGet, "https://app.example.com", false, "", 200},
		{"off by default for preflight", edge.CORS{}, http.MethodOptions, "https://app.example.com", true, "", 200},
		{"allowed origin", edge.CORS{Origins: origins}, http.MethodGet, "https://app.example.com", false, "https://app.example.com", 200},
		{"allowed preflight", edge.CORS{Origins: origins}, http.MethodOptions, "http://localhost:3000", true, "http://localhost:3000", 204},
		{"other origin gets nothing", edge.CORS{Origins: origins}, http.MethodGet, "https://evil.example", false, "", 200},
		{"other origin preflight is refused", edge.CORS{Origins: origins}, http.MethodOptions, "https://evil.example", true, "", 403},
		{"suffix trick is refused", edge.CORS{Origins: origins}, http.MethodGet, "https://app.example.com.evil.example", false, "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, "/v1/accounts", nil)
			r.Header.Set("Origin", tc.origin)
			if tc.preflight {
				r.Header.Set("Access-Control-Request-Method", "POST")
			}
			rec, _ := serve(t, edge.Config{CORS: tc.cors}, r)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tc.wantAllow {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tc.wantAllow)
			}
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header().Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q, want none", got)
			}
		})
	}
}

func TestParseOriginsRefusesWildcards(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"*", "null", "https://a.example/path", "ftp://a.example", "https://user@a.example", "a.example"} {
		if got, err := edge.ParseOrigins(in); err == nil {
			t.Errorf("ParseOrigins(%q) = %v, nil; want an error", in, got)
		}
	}
}

func TestLimitByIP(t *testing.T) {
	t.Parallel()
	lim := ratelimit.Limit{Name: "public", Rate: 2, Period: time.Minute}
	mem := ratelimit.NewMemory(time.Now, 10)
	h := edge.Middleware(edge.Config{}, edge.LimitByIP(mem, lim, &edge.Renderer{}, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	codes := make([]int, 0, 4)
	for i := 0; i < 3; i++ {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.Header.Set("X-Forwarded-For", strings.Repeat("9", i)) // must not open a new bucket
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		codes = append(codes, rec.Code)
		if i == 2 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if want := []int{200, 200, 429}; !slices.Equal(codes, want) {
		t.Errorf("statuses = %v, want %v", codes, want)
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ ip, want string }{
		{"203.0.113.7", "ip:203.0.113.7"},
		{"2001:db8:1:2:aaaa::1", "ip6:2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "ip6:2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "ip6:2001:db8:1:3::/64"},
		{"::ffff:203.0.113.7", "ip:203.0.113.7"},
		{"", "ip:"},
	}
	for _, tc := range tests {
		st := &edge.State{ClientIP: tc.ip}
		if got := st.ClientKey(); got != tc.want {
			t.Errorf("ClientKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
		// The auth service's failed-login throttle must count the same client.
		if got := identity.ClientKey(tc.ip); got != st.ClientKey() {
			t.Errorf("identity.ClientKey(%q) = %q, but the edge keys it %q", tc.ip, got, st.ClientKey())
		}
	}
}
