package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/gateway/internal/console"
	"github.com/bastion-bank/bastion/gateway/internal/edge"
)

// TestConsoleMounted: the gateway serves the console's files under their
// own CSP, with the edge's headers, and its session routes reach the auth
// service through the policy (client IP and all) only for a same-origin
// request; the refresh token goes into the cookie, never into the body.
func TestConsoleMounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	page := h.do(t, h.h2, request{method: "GET", path: "/console/"})
	if page.status != http.StatusOK || page.header.Get("Content-Security-Policy") != console.ContentSecurityPolicy {
		t.Fatalf("GET /console/ = %d with CSP %q, want 200 and the console's CSP", page.status, page.header.Get("Content-Security-Policy"))
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := page.header.Get(k); got != want {
			t.Errorf("GET /console/ %s = %q, want %q", k, got, want)
		}
	}
	if r := h.do(t, h.h2, request{method: "GET", path: "/v1/../console/"}); r.status != http.StatusNotFound {
		t.Errorf("a non-canonical console path = %d, want 404", r.status)
	}
	if r := h.do(t, h.h2, request{method: "GET", path: "/openapi.json"}); r.header.Get("Content-Security-Policy") != edge.APIContentSecurityPolicy {
		t.Errorf("the API's CSP became %q", r.header.Get("Content-Security-Policy"))
	}

	login := request{method: "POST", path: "/console/session/login", body: `{"email":"a@example.com","password":"` + goodPassword + `"}`,
		headers: map[string]string{console.CSRFHeader: "1", "Origin": h.base}}
	r := h.do(t, h.h2, login)
	if r.status != http.StatusOK {
		t.Fatalf("console login = %d %s, want 200", r.status, r.body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil || body["accessToken"] != "a" || body["refreshToken"] != nil {
		t.Errorf("console login body = %s, want the access token and no refresh token", r.body)
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{console.RefreshCookie + "=r;", "Path=" + console.CookiePath, "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("console login Set-Cookie = %q, want %s", cookie, want)
		}
	}
	calls := h.rec.Calls()
	if len(calls) != 1 || calls[0].method != "Login" || calls[0].clientIP != "127.0.0.1" {
		t.Errorf("the auth service saw %+v, want one Login from the client's IP", calls)
	}

	login.headers = map[string]string{console.CSRFHeader: "1", "Origin": "https://evil.example"}
	if r := h.do(t, h.h2, login); r.status != http.StatusForbidden || r.header.Get("Set-Cookie") != "" {
		t.Errorf("console login from another origin = %d, cookie %q; want 403 and none", r.status, r.header.Get("Set-Cookie"))
	}
	if n := len(h.rec.Calls()); n != 1 {
		t.Errorf("a cross-site login reached the auth service (%d calls)", n)
	}
}
