package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/gateway/internal/console"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
)

// The console's backend-for-frontend as an attacker meets it: over real TLS,
// behind the real edge and policy. Each test names the attack it plays and
// documents the control that stops it.

var consoleRoutes = []string{"login", "mfa", "refresh", "logout"}

// consoleSend sends one session request as the console's own page does
// (custom header, exact Origin, Sec-Fetch-Site: same-origin), after which
// edit may change anything, the Host included, to play the attacker.
func (h *harness) consoleSend(t *testing.T, route, body, cookie string, edit func(*http.Request)) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.base+console.CookiePath+route, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(console.CSRFHeader, "1")
	req.Header.Set("Origin", h.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: console.RefreshCookie, Value: cookie})
	}
	if edit != nil {
		edit(req)
	}
	resp, err := h.h2.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", route, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, proto: resp.ProtoMajor}
}

const consoleGoodLogin = `{"email":"a@example.com","password":"` + goodPassword + `"}`

// TestConsoleCrossSiteOverTLS: every way a page of another origin (or a
// client lying about where it comes from) could reach a session route is
// 403 with no cookie set, and nothing reaches the auth service.
func TestConsoleCrossSiteOverTLS(t *testing.T) {
	t.Parallel()
	attacks := map[string]func(*http.Request){
		"no custom header":                  func(r *http.Request) { r.Header.Del(console.CSRFHeader) },
		"custom header 0":                   func(r *http.Request) { r.Header.Set(console.CSRFHeader, "0") },
		"custom header 1 twice":             func(r *http.Request) { r.Header.Add(console.CSRFHeader, "1") },
		"another origin":                    func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") },
		"null origin":                       func(r *http.Request) { r.Header.Set("Origin", "null") },
		"no origin, same-origin fetch":      func(r *http.Request) { r.Header.Del("Origin") },
		"no origin, no fetch metadata":      func(r *http.Request) { r.Header.Del("Origin"); r.Header.Del("Sec-Fetch-Site") },
		"origin over http":                  func(r *http.Request) { r.Header.Set("Origin", "http://"+r.URL.Host) },
		"origin on another port":            func(r *http.Request) { r.Header.Set("Origin", "https://"+r.URL.Hostname()+":"+otherPort(r)) },
		"origin without the port":           func(r *http.Request) { r.Header.Set("Origin", "https://"+r.URL.Hostname()) },
		"origin with a path":                func(r *http.Request) { r.Header.Set("Origin", "https://"+r.URL.Host+"/") },
		"origin with a query":               func(r *http.Request) { r.Header.Set("Origin", "https://"+r.URL.Host+"?x") },
		"origin with a fragment":            func(r *http.Request) { r.Header.Set("Origin", "https://"+r.URL.Host+"#x") },
		"origin with user info":             func(r *http.Request) { r.Header.Set("Origin", "https://evil@"+r.URL.Host) },
		"origin of a suffix host":           func(r *http.Request) { r.Header.Set("Origin", "https://"+r.URL.Host+".evil.example") },
		"right origin, then another":        func(r *http.Request) { r.Header.Add("Origin", "https://evil.example") },
		"cross-site fetch":                  func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"same-site fetch":                   func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") },
		"user-initiated navigation":         func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "none") },
		"Host and Origin both of elsewhere": func(r *http.Request) { r.Host = "evil.example"; r.Header.Set("Origin", "https://evil.example") },
		"Host changed, Origin kept":         func(r *http.Request) { r.Host = "evil.example" },
		"form post content type":            func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
	}
	for name, edit := range attacks {
		if name == "Host and Origin both of elsewhere" {
			// The console compares Origin with the request's own Host, so a
			// client that controls both passes the header check: it is not
			// a victim's browser. A browser cannot send it: it would have to
			// reach the gateway under the other name, whose certificate does
			// not name it (a DNS-rebinding page fails its TLS handshake),
			// and it would not carry the cookie, which is the bank host's.
			continue
		}
		// Each attack gets its own gateway: the refusals spend the client's
		// failed-authentication budget, which would soon answer 429 instead.
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			for _, route := range consoleRoutes {
				r := h.consoleSend(t, route, consoleBody(route), "r", edit)
				want := http.StatusForbidden
				if name == "form post content type" {
					want = http.StatusUnsupportedMediaType // the edge's body guard refuses it first
				}
				if r.status != want || r.header.Get("Set-Cookie") != "" {
					t.Errorf("%s = %d %s, Set-Cookie %q; want %d and no cookie", route, r.status, r.body, r.header.Get("Set-Cookie"), want)
				}
			}
			if n := len(h.rec.Calls()); n != 0 {
				t.Errorf("a refused request reached the auth service (%d calls)", n)
			}
		})
	}
}

// otherPort is a port of the request's host other than its own.
func otherPort(r *http.Request) string {
	p, _ := strconv.Atoi(r.URL.Port())
	return strconv.Itoa(p + 1)
}

// consoleBody is a well-formed body for route.
func consoleBody(route string) string {
	switch route {
	case "login":
		return consoleGoodLogin
	case "mfa":
		return `{"mfaToken":"t","code":"123456"}`
	}
	return `{}`
}

// TestConsoleCookieAttributes: every Set-Cookie of the session routes,
// the one that sets the token and the one that clears it, is HttpOnly,
// Secure, SameSite=Strict, scoped to the session routes, without Domain
// or Expires; the clearing one expires at once.
func TestConsoleCookieAttributes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	check := func(what string, r response, wantValue string, wantMaxAge string) {
		t.Helper()
		all := r.header.Values("Set-Cookie")
		if len(all) != 1 {
			t.Fatalf("%s Set-Cookie = %q, want one", what, all)
		}
		attrs := map[string]string{}
		parts := strings.Split(all[0], ";")
		name, value, _ := strings.Cut(strings.TrimSpace(parts[0]), "=")
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			attrs[strings.ToLower(k)] = v
		}
		if name != console.RefreshCookie || value != wantValue {
			t.Errorf("%s cookie %s=%s, want %s=%s", what, name, value, console.RefreshCookie, wantValue)
		}
		for _, k := range []string{"httponly", "secure"} {
			if _, ok := attrs[k]; !ok {
				t.Errorf("%s cookie %q lacks %s", what, all[0], k)
			}
		}
		if attrs["samesite"] != "Strict" || attrs["path"] != console.CookiePath {
			t.Errorf("%s cookie %q, want SameSite=Strict and Path=%s", what, all[0], console.CookiePath)
		}
		if _, ok := attrs["domain"]; ok {
			t.Errorf("%s cookie %q names a Domain: it would reach other hosts", what, all[0])
		}
		if _, ok := attrs["expires"]; ok {
			t.Errorf("%s cookie %q has Expires: it would outlive the browser", what, all[0])
		}
		if got, ok := attrs["max-age"]; got != wantMaxAge || (wantMaxAge == "") == ok {
			t.Errorf("%s cookie %q Max-Age = %q, want %q", what, all[0], got, wantMaxAge)
		}
	}

	r := h.consoleSend(t, "login", consoleGoodLogin, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("console login = %d %s", r.status, r.body)
	}
	check("login", r, "r", "") // a session cookie: no Max-Age, gone with the browser

	// Logout without an access token: the policy refuses the API's logout,
	// the console then tries the cookie's refresh token (which this stub's
	// auth refuses, as it does a spent one), and the browser's cookie is
	// cleared all the same.
	r = h.consoleSend(t, "logout", `{}`, "r", nil)
	if r.status != http.StatusUnauthorized {
		t.Errorf("console logout without a bearer = %d %s, want 401", r.status, r.body)
	}
	check("logout", r, "", "0")
	// Logout with no cookie at all clears it too.
	r = h.consoleSend(t, "logout", `{}`, "", nil)
	check("logout without a cookie", r, "", "0")
}

// TestConsoleCookieNeverAuthenticatesV1: the public API is bearer-only. The
// refresh cookie, or any cookie, sent to a /v1 route authenticates nothing
// and reaches no service.
func TestConsoleCookieNeverAuthenticatesV1(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	login := h.consoleSend(t, "login", consoleGoodLogin, "", nil)
	if login.status != http.StatusOK {
		t.Fatalf("console login = %d", login.status)
	}
	before := len(h.rec.Calls())
	for _, cookie := range []string{console.RefreshCookie + "=r", "access_token=" + h.env.Token(t, ownerID, "user"), "Authorization=Bearer " + h.env.Token(t, ownerID, "user")} {
		for _, path := range []string{"/v1/users/me", "/v1/accounts"} {
			r := h.do(t, h.h2, request{method: "GET", path: path, headers: map[string]string{
				"Cookie": cookie, console.CSRFHeader: "1", "Origin": h.base, "Sec-Fetch-Site": "same-origin",
			}})
			if r.status != http.StatusUnauthorized {
				t.Errorf("GET %s with cookie %.30s… = %d %s, want 401", path, cookie, r.status, r.body)
			}
		}
		r := h.do(t, h.h2, request{method: "POST", path: "/v1/auth/logout", body: `{"refreshToken":"r"}`, headers: map[string]string{"Cookie": cookie}})
		if r.status != http.StatusUnauthorized {
			t.Errorf("POST /v1/auth/logout with a cookie = %d, want 401", r.status)
		}
	}
	if n := len(h.rec.Calls()); n != before {
		t.Errorf("a /v1 request with only a cookie reached a service (%d calls)", n-before)
	}
}

// TestConsoleRefreshWithoutCookieIsInert: the signed-out page's refresh
// (no cookie) answers 200 {} and nothing else: no service call, no cookie,
// and it neither spends nor refills the failed-authentication budget, so it
// cannot be used to probe or to buy more password guesses; once the budget
// is spent it is refused like everything else.
func TestConsoleRefreshWithoutCookieIsInert(t *testing.T) {
	t.Parallel()
	// The clock stands still: at 60 failures a minute a budget refills one
	// a second, which a slow machine would give back during the loops.
	stopped := time.Now()
	h := newHarness(t, func(o *options) { o.now = func() time.Time { return stopped } })
	crossSite := func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }
	// 59 of the 60 failures the default budget allows.
	for i := range 59 {
		if r := h.consoleSend(t, "login", consoleGoodLogin, "", crossSite); r.status != http.StatusForbidden {
			t.Fatalf("failure %d = %d, want 403", i, r.status)
		}
	}
	for i := range 20 {
		r := h.consoleSend(t, "refresh", `{}`, "", nil)
		if r.status != http.StatusOK || string(r.body) != `{}` || r.header.Get("Set-Cookie") != "" {
			t.Fatalf("refresh %d without a cookie = %d %s, Set-Cookie %q; want 200 {} and none", i, r.status, r.body, r.header.Get("Set-Cookie"))
		}
	}
	if n := len(h.rec.Calls()); n != 0 {
		t.Errorf("refresh without a cookie reached the auth service (%d calls)", n)
	}
	// The 60th failure still fits: the refreshes spent nothing …
	if r := h.consoleSend(t, "login", `{"email":"a@example.com","password":"guess"}`, "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("the 60th failure = %d %s, want 401", r.status, r.body)
	}
	// … and refilled nothing: the budget is now spent for every route.
	for _, route := range consoleRoutes {
		body := `{}`
		if route == "login" {
			body = consoleGoodLogin
		}
		if r := h.consoleSend(t, route, body, "", nil); r.status != http.StatusTooManyRequests {
			t.Errorf("%s after the budget is spent = %d %s, want 429", route, r.status, r.body)
		}
	}
	if n := len(h.rec.Calls()); n != 1 {
		t.Errorf("the auth service saw %d calls, want only the 60th failure's login", n)
	}
}

// TestConsoleLoginSharesTheAPILoginThrottle: the console's login and MFA
// routes are not a second door around the per-IP auth limit: they spend
// the same budget as POST /v1/auth/login.
func TestConsoleLoginSharesTheAPILoginThrottle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *options) { o.limits = policy.NewLimits(4, 1000, 1000, 1000) })
	sends := []func() response{
		func() response { return h.consoleSend(t, "login", consoleGoodLogin, "", nil) },
		func() response {
			return h.do(t, h.h2, request{method: "POST", path: "/v1/auth/login", body: consoleGoodLogin})
		},
		func() response { return h.consoleSend(t, "mfa", `{"mfaToken":"t","code":"123456"}`, "", nil) },
		func() response { return h.consoleSend(t, "login", consoleGoodLogin, "", nil) },
	}
	for i, send := range sends {
		if r := send(); r.status == http.StatusTooManyRequests {
			t.Fatalf("attempt %d = 429 within the budget of 4", i)
		}
	}
	for _, send := range sends {
		if r := send(); r.status != http.StatusTooManyRequests {
			t.Errorf("an attempt beyond the auth budget = %d %s, want 429", r.status, r.body)
		}
	}
	if n := len(h.rec.Calls()); n > 4 {
		t.Errorf("the auth service saw %d calls, want at most the budget's 4", n)
	}
}

// TestConsoleSessionRoutesRefuseOverTLS: methods other than POST, an
// oversized body, and malformed bodies are refused with problems that
// carry no internals; every session answer is no-store.
func TestConsoleSessionRoutesRefuseOverTLS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, route := range consoleRoutes {
		for _, m := range []string{"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
			r := h.consoleSend(t, route, "", "", func(r *http.Request) { r.Method = m; r.Body = nil; r.ContentLength = 0 })
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
				t.Errorf("%s %s = %d Allow %q, want 405 Allow POST", m, route, r.status, r.header.Get("Allow"))
			}
		}
		big := `{"email":"a@example.com","password":"` + strings.Repeat("x", 64<<10) + `"}`
		if r := h.consoleSend(t, route, big, "", nil); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a 64 KiB body = %d, want 413", route, r.status)
		}
		chunked := func(r *http.Request) { r.ContentLength = -1; r.Body = io.NopCloser(strings.NewReader(big)) }
		if r := h.consoleSend(t, route, big, "", chunked); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a 64 KiB body of unknown length = %d, want 413", route, r.status)
		}
	}
	if n := len(h.rec.Calls()); n != 0 {
		t.Errorf("a refused request reached the auth service (%d calls)", n)
	}

	leaks := []string{"json:", "unknown field", "argon2", "user 42", "proto", "grpc", "rpc error", "goroutine", ".go:"}
	tests := []struct{ name, route, body string }{
		{"unknown field", "login", `{"email":"a@example.com","password":"x","admin":true}`},
		{"not JSON", "refresh", `r`},
		{"two objects", "logout", `{}{}`},
		{"wrong type", "mfa", `{"mfaToken":1,"code":"1"}`},
		{"wrong password", "login", `{"email":"a@example.com","password":"guess"}`},
	}
	for _, tt := range tests {
		r := h.consoleSend(t, tt.route, tt.body, "", nil)
		if r.status < 400 {
			t.Errorf("%s = %d, want a refusal", tt.name, r.status)
			continue
		}
		p := r.problem(t)
		for _, leak := range leaks {
			if strings.Contains(strings.ToLower(string(r.body)), leak) {
				t.Errorf("%s problem %+v leaks %q", tt.name, p, leak)
			}
		}
	}
	for _, route := range consoleRoutes {
		body := `{}`
		if route == "login" {
			body = consoleGoodLogin
		}
		r := h.consoleSend(t, route, body, "", nil)
		if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s answer Cache-Control %q nosniff %q, want no-store and nosniff", route, r.header.Get("Cache-Control"), r.header.Get("X-Content-Type-Options"))
		}
	}
}

// TestConsoleFilesHeaders: every console file (the page and its assets)
// carries the console's CSP (no inline, no unsafe-*, no framing, Trusted
// Types) and the edge's security headers; nothing is cached.
func TestConsoleFilesHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	want := map[string]string{
		"Content-Security-Policy":      console.ContentSecurityPolicy,
		"X-Frame-Options":              "DENY",
		"X-Content-Type-Options":       "nosniff",
		"Cache-Control":                "no-store",
		"Referrer-Policy":              "no-referrer",
		"Strict-Transport-Security":    "max-age=63072000; includeSubDomains",
		"Cross-Origin-Resource-Policy": "same-origin",
	}
	for _, path := range []string{"/console/", "/console/index.html", "/console/js/app.js", "/console/js/api.js", "/console/js/views/auth.js", "/console/style.css", "/console/favicon.svg"} {
		for _, c := range []*http.Client{h.h2, h.h1} {
			r := h.do(t, c, request{method: "GET", path: path})
			if r.status != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", path, r.status)
				continue
			}
			for k, v := range want {
				if got := r.header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("GET %s (HTTP/%d) %s = %q, want %q", path, r.proto, k, got, v)
				}
			}
			csp := r.header.Get("Content-Security-Policy")
			for _, must := range []string{"frame-ancestors 'none'", "require-trusted-types-for 'script'", "script-src 'self'"} {
				if !strings.Contains(csp, must) {
					t.Errorf("GET %s CSP %q lacks %s", path, csp, must)
				}
			}
			if strings.Contains(csp, "unsafe") || strings.Contains(csp, "'nonce-") || strings.Contains(csp, "data:") {
				t.Errorf("GET %s CSP %q allows inline or evaluated code", path, csp)
			}
		}
	}
	// A session route's answer keeps the API's CSP, not the console's.
	r := h.consoleSend(t, "refresh", `{}`, "", nil)
	if csp := r.header.Get("Content-Security-Policy"); strings.Contains(csp, "script-src") {
		t.Errorf("a session answer carries a script-running CSP %q", csp)
	}
}

// TestConsoleRefreshTokenStaysInTheCookie: the refresh token appears in no
// answer body of the session routes and in no access-log line, whether it
// came from the auth service (login) or from the browser (refresh, logout).
func TestConsoleRefreshTokenStaysInTheCookie(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h := newHarness(t, func(o *options) { o.edge.AccessLog = slog.New(slog.NewJSONHandler(&logs, nil)) })
	const secret = "refresh-secret-from-the-browser-0123456789"
	login := h.consoleSend(t, "login", consoleGoodLogin, "", nil)
	var body map[string]any
	if err := json.Unmarshal(login.body, &body); err != nil {
		t.Fatal(err)
	}
	for k := range body {
		if k != "accessToken" && k != "tokenType" && k != "expiresIn" {
			t.Errorf("console login answered field %q; want only the access token's", k)
		}
	}
	for _, route := range []string{"refresh", "logout"} {
		r := h.consoleSend(t, route, `{}`, secret, nil)
		if bytes.Contains(r.body, []byte(secret)) {
			t.Errorf("%s answer %s carries the browser's refresh token", route, r.body)
		}
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), console.CookiePath+"logout") {
		t.Errorf("access log holds the refresh token or lacks the session routes:\n%s", logs.String())
	}
}

// TestConsoleSessionNotOpenedByCORS: an origin the operator allowed for the
// API (BANK_CORS_ORIGINS) is still another origin to the console. Its
// preflight gets no leave to send the console's header or credentials, and
// its request, if sent anyway, is refused before any service.
func TestConsoleSessionNotOpenedByCORS(t *testing.T) {
	t.Parallel()
	const app = "https://app.example"
	h := newHarness(t, func(o *options) { o.edge.CORS.Origins = []string{app} })
	for _, route := range consoleRoutes {
		pre := h.do(t, h.h2, request{method: "OPTIONS", path: console.CookiePath + route, headers: map[string]string{
			"Origin": app, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-bastion-console",
		}})
		if allow := strings.ToLower(pre.header.Get("Access-Control-Allow-Headers")); strings.Contains(allow, strings.ToLower(console.CSRFHeader)) {
			t.Errorf("preflight of %s from an API origin allows %s: %q", route, console.CSRFHeader, allow)
		}
		if pre.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight of %s allows credentials", route)
		}
		r := h.consoleSend(t, route, consoleBody(route), "r", func(r *http.Request) { r.Header.Set("Origin", app) })
		if r.status != http.StatusForbidden || r.header.Get("Set-Cookie") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s from an API origin = %d, Set-Cookie %q; want 403, no cookie, no credentials", route, r.status, r.header.Get("Set-Cookie"))
		}
	}
	if n := len(h.rec.Calls()); n != 0 {
		t.Errorf("a request of an API origin reached the auth service (%d calls)", n)
	}
}
