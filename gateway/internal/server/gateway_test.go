package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/grpctest"
)

const toAccount = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e05"

func transferBody(amount string, extra string) string {
	return fmt.Sprintf(`{"fromAccountId":%q,"toAccountId":%q,"amount":%s,"currency":"EUR"%s}`, ownedAccount, toAccount, amount, extra)
}

// TestConnectIsAProblem: CONNECT names an authority, not a path, so no route
// matches it; it is refused like any other method a route does not serve,
// as problem+json, not with the standard library's plain-text 404, and its
// Allow is empty: an authority names no resource of this API.
func TestConnectIsAProblem(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for name, c := range map[string]*http.Client{"HTTP/1.1": h.h1, "HTTP/2": h.h2} {
		resp := h.do(t, c, request{method: http.MethodConnect, path: ""})
		if resp.status != http.StatusMethodNotAllowed {
			t.Fatalf("%s CONNECT = %d, want 405 (body %s)", name, resp.status, resp.body)
		}
		if p := resp.problem(t); p.Code != "METHOD_NOT_ALLOWED" {
			t.Errorf("%s CONNECT code = %q, want METHOD_NOT_ALLOWED", name, p.Code)
		}
		if got := resp.header.Values("Allow"); !slices.Equal(got, []string{""}) {
			t.Errorf("%s CONNECT Allow = %q, want present and empty", name, got)
		}
	}
}

// TestErrorTable produces every status of docs/api.md's error table by the case
// the table names, through the real HTTPS server and the real service chain.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user := h.env.Token(t, ownerID, "user")
	tests := []struct {
		name       string
		req        request
		status     int
		code       string
		upstream   bool   // whether a service handler may run
		detail     string // exact detail, when it matters
		violations []string
	}{
		{name: "malformed JSON", req: request{method: "POST", path: "/v1/auth/register", body: `{"email":`}, status: 400, code: "INVALID_ARGUMENT", detail: "malformed request: the body must be one JSON object with only this operation's fields"},
		{name: "malformed query parameter names the query, not a body", req: request{method: "GET", path: "/v1/accounts?pageSize=abc", token: user}, status: 400, code: "INVALID_ARGUMENT", detail: "malformed request: a query parameter is not valid for this operation"},
		{name: "path id that is not UTF-8", req: request{method: "GET", path: "/v1/accounts/%FF", token: user}, status: 400, code: "INVALID_ARGUMENT"},
		{name: "query value that is not UTF-8", req: request{method: "GET", path: "/v1/accounts?pageToken=%C3%28", token: user}, status: 400, code: "INVALID_ARGUMENT"},
		{name: "repeated query parameter", req: request{method: "GET", path: "/v1/accounts?pageSize=1&pageSize=2", token: user}, status: 400, code: "INVALID_ARGUMENT", detail: "malformed request: a query parameter is not valid for this operation"},
		{name: "unknown query parameter on a body route", req: request{method: "POST", path: "/v1/accounts?ownerId=" + otherUserID, token: user, body: `{"currency":"EUR"}`}, status: 400, code: "INVALID_ARGUMENT", violations: []string{"ownerId"}},
		{name: "unknown query parameter on a list", req: request{method: "GET", path: "/v1/accounts?pageSize=5&admin=true", token: user}, status: 400, code: "INVALID_ARGUMENT", violations: []string{"admin"}},
		{name: "a path field repeated in the query", req: request{method: "GET", path: "/v1/accounts/" + toAccount + "?accountId=" + toAccount, token: user}, status: 400, code: "INVALID_ARGUMENT", violations: []string{"accountId"}},
		{name: "unknown query parameter on a public route", req: request{method: "POST", path: "/v1/auth/login?debug=1", body: `{"email":"a@example.com","password":"wrong password"}`}, status: 400, code: "INVALID_ARGUMENT", violations: []string{"debug"}},
		{name: "unknown field", req: request{method: "POST", path: "/v1/auth/register", body: `{"email":"a@example.com","password":"123456789012","displayName":"A","isAdmin":true}`}, status: 400, code: "INVALID_ARGUMENT"},
		{name: "trailing garbage after the object", req: request{method: "POST", path: "/v1/auth/register", body: `{"email":"a@example.com"} {"x":1}`}, status: 400, code: "INVALID_ARGUMENT"},
		{name: "JSON array instead of object", req: request{method: "POST", path: "/v1/auth/register", body: `[1,2]`}, status: 400, code: "INVALID_ARGUMENT"},
		{name: "failed validation lists the field", req: request{method: "POST", path: "/v1/auth/register", body: `{"email":"a@example.com","password":"short","displayName":"A"}`}, status: 400, code: "INVALID_ARGUMENT", violations: []string{"password"}},
		{name: "missing Idempotency-Key", req: request{method: "POST", path: "/v1/transfers", token: user, body: transferBody(`"100"`, "")}, status: 400, code: "INVALID_ARGUMENT", violations: []string{"idempotencyKey"}},
		{name: "no token", req: request{method: "GET", path: "/v1/users/me"}, status: 401, code: "UNAUTHENTICATED"},
		{name: "token signed by an unknown key", req: request{method: "GET", path: "/v1/users/me", token: grpctest.ForeignToken(t, ownerID, "admin")}, status: 401, code: "UNAUTHENTICATED"},
		{name: "garbage token", req: request{method: "GET", path: "/v1/users/me", token: "not.a.jwt"}, status: 401, code: "UNAUTHENTICATED"},
		{name: "basic credentials", req: request{method: "GET", path: "/v1/users/me", headers: map[string]string{"Authorization": "Basic YWRtaW46YWRtaW4="}}, status: 401, code: "UNAUTHENTICATED"},
		{name: "alg none token", req: request{method: "GET", path: "/v1/users/me", token: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIwYjZmM2MxZS04YTQzLTRjNTUtOWQ1Yy0yZjFlN2E5YjBjMDEiLCJyb2xlcyI6WyJhZG1pbiJdfQ."}, status: 401, code: "UNAUTHENTICATED"},
		{name: "bad credentials at login", req: request{method: "POST", path: "/v1/auth/login", body: `{"email":"a@example.com","password":"wrong password"}`}, status: 401, code: "UNAUTHENTICATED", upstream: true, detail: "invalid email or password"},
		{name: "role does not allow", req: request{method: "PUT", path: "/v1/users/" + otherUserID + "/roles", token: user, body: `{"roles":["admin"]}`}, status: 403, code: "PERMISSION_DENIED"},
		{name: "someone else's account", req: request{method: "GET", path: "/v1/accounts/" + toAccount, token: user}, status: 404, code: "NOT_FOUND"},
		{name: "no such route", req: request{method: "GET", path: "/v1/nothing-here", token: user}, status: 404, code: "NOT_FOUND"},
		{name: "internal RPC has no route", req: request{method: "POST", path: "/bank.transactions.v1.LedgerService/OpenLedgerAccount", token: user, body: `{}`}, status: 404, code: "NOT_FOUND"},
		{name: "method not allowed", req: request{method: "DELETE", path: "/v1/accounts", token: user}, status: 405, code: "METHOD_NOT_ALLOWED"},
		{name: "duplicate registration", req: request{method: "POST", path: "/v1/auth/register", body: `{"email":"` + takenEmail + `","password":"123456789012","displayName":"A"}`}, status: 409, code: "ALREADY_EXISTS", upstream: true, detail: "email already registered"},
		{name: "same key in flight", req: request{method: "POST", path: "/v1/transfers", token: user, body: transferBody(`"100"`, ""), headers: map[string]string{"Idempotency-Key": "in-flight"}}, status: 409, code: "ALREADY_EXISTS", upstream: true},
		{name: "wrong media type", req: request{method: "POST", path: "/v1/auth/login", body: `{}`, headers: map[string]string{"Content-Type": "text/plain"}}, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "form body", req: request{method: "POST", path: "/v1/auth/login", body: `email=a&password=b`, headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "body too large", req: request{method: "POST", path: "/v1/auth/login", body: `{"email":"` + strings.Repeat("a", 70<<10) + `"}`}, status: 413, code: "PAYLOAD_TOO_LARGE"},
		{name: "business rule refused", req: request{method: "POST", path: "/v1/transfers", token: user, body: transferBody("5000000", ""), headers: map[string]string{"Idempotency-Key": "k-422"}}, status: 422, code: "FAILED_PRECONDITION", upstream: true, detail: "insufficient funds"},
		{name: "internal error is generic", req: request{method: "GET", path: "/v1/accounts/" + brokenAccount, token: user}, status: 500, code: "INTERNAL", upstream: true, detail: "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.rec.Calls())
			resp := h.do(t, h.h2, tc.req)
			if resp.status != tc.status {
				t.Fatalf("%s %s = %d, want %d (body %s)", tc.req.method, tc.req.path, resp.status, tc.status, resp.body)
			}
			p := resp.problem(t)
			if p.Code != tc.code {
				t.Errorf("code = %q, want %q", p.Code, tc.code)
			}
			if tc.detail != "" && p.Detail != tc.detail {
				t.Errorf("detail = %q, want %q", p.Detail, tc.detail)
			}
			for _, leak := range []string{leakedText, "argon2", "proto:", "unknown field", "isAdmin", "grpc", "127.0.0.1", "goroutine"} {
				if strings.Contains(string(resp.body), leak) {
					t.Errorf("body %s leaks %q", resp.body, leak)
				}
			}
			var fields []string
			for _, v := range p.Violations {
				if !slices.Contains(fields, v.Field) {
					fields = append(fields, v.Field)
				}
			}
			if !slices.Equal(fields, tc.violations) {
				t.Errorf("violations = %v, want fields %v", p.Violations, tc.violations)
			}
			// RFC 6750 §3: the error attribute only when a bearer token was
			// presented; a bare challenge without one.
			wantChallenge := ""
			if tc.status == 401 {
				wantChallenge = "Bearer"
				if tc.req.token != "" {
					wantChallenge = `Bearer error="invalid_token"`
				}
			}
			if got := resp.header.Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate = %q with status %d, want %q", got, tc.status, wantChallenge)
			}
			if _, sent := resp.header["Allow"]; sent != (tc.status == http.StatusMethodNotAllowed) {
				t.Errorf("Allow %q with status %d: want it on a 405 only", resp.header.Get("Allow"), tc.status)
			}
			if called := len(h.rec.Calls()) > before; called && !tc.upstream {
				t.Errorf("a service handler ran (%v); the refusal must come first", h.rec.Calls()[before:])
			}
		})
	}
}

// TestSuccessShape checks the JSON conventions of docs/api.md on a success.
func TestSuccessShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp := h.do(t, h.h2, request{method: "GET", path: "/v1/accounts/" + ownedAccount, token: h.env.Token(t, ownerID, "user")})
	if resp.status != http.StatusOK {
		t.Fatalf("GET account = %d, want 200 (%s)", resp.status, resp.body)
	}
	body := string(resp.body)
	for _, want := range []string{`"ownerId":"` + ownerID + `"`, `"amount":"9007199254740993"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
	if !strings.Contains(body, `"displayName":""`) {
		t.Errorf("body %s leaves out a field of the account shape", body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	for k, v := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := resp.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.header.Get("Strict-Transport-Security") == "" || resp.header.Get("RateLimit") == "" {
		t.Errorf("headers %v lack HSTS or RateLimit", resp.header)
	}
}

// TestAmountsAcceptStringsAndNumbers: 64-bit amounts are accepted either way.
func TestAmountsAcceptStringsAndNumbers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user := h.env.Token(t, ownerID, "user")
	for i, amount := range []string{`"250"`, `250`} {
		resp := h.do(t, h.h2, request{method: "POST", path: "/v1/transfers", token: user, body: transferBody(amount, ""),
			headers: map[string]string{"Idempotency-Key": fmt.Sprintf("amount-%d", i)}})
		if resp.status != 200 || !strings.Contains(string(resp.body), `"amount":"250"`) {
			t.Errorf("transfer with amount %s = %d %s, want 200 with \"250\"", amount, resp.status, resp.body)
		}
	}
}
