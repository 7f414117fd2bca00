package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
)

// fakeAuth is the auth service as the session routes see it: Login answers
// a token pair (or an MFA ticket for mfa@…), Refresh accepts only the
// refresh token it issued last and rotates it, Logout records what it got.
type fakeAuth struct {
	authv1.AuthServiceClient // any other method panics: the console must not call it

	issued    string // the refresh token Refresh accepts
	loggedOut string // the refresh token Logout was given

	// With checkBearer, Logout is the real route behind the policy: it
	// needs the access token issued last, read from the edge state.
	checkBearer bool
	access      string
}

func (f *fakeAuth) Login(_ context.Context, in *authv1.LoginRequest, _ ...grpc.CallOption) (*authv1.LoginResponse, error) {
	if in.GetPassword() != "right password" {
		return nil, errs.New(errs.Unauthenticated, "invalid email or password")
	}
	if strings.HasPrefix(in.GetEmail(), "mfa@") {
		yes, ticket := true, "ticket-1"
		return &authv1.LoginResponse{MfaRequired: &yes, MfaToken: &ticket, ExpiresIn: 300}, nil
	}
	f.issued = "refresh-1"
	return &authv1.LoginResponse{AccessToken: "access-1", RefreshToken: f.issued, TokenType: "Bearer", ExpiresIn: 900}, nil
}

func (f *fakeAuth) LoginMFA(_ context.Context, in *authv1.LoginMFARequest, _ ...grpc.CallOption) (*authv1.LoginMFAResponse, error) {
	if in.GetMfaToken() != "ticket-1" || in.GetCode() != "123456" {
		return nil, errs.New(errs.Unauthenticated, "invalid code")
	}
	f.issued = "refresh-mfa"
	return &authv1.LoginMFAResponse{AccessToken: "access-mfa", RefreshToken: f.issued, TokenType: "Bearer", ExpiresIn: 900}, nil
}

func (f *fakeAuth) Refresh(_ context.Context, in *authv1.RefreshRequest, _ ...grpc.CallOption) (*authv1.RefreshResponse, error) {
	if f.issued == "" || in.GetRefreshToken() != f.issued {
		return nil, errs.New(errs.Unauthenticated, "invalid refresh token")
	}
	f.issued += "+"
	f.access = "access-2"
	return &authv1.RefreshResponse{AccessToken: f.access, RefreshToken: f.issued, TokenType: "Bearer", ExpiresIn: 900}, nil
}

func (f *fakeAuth) Logout(ctx context.Context, in *authv1.LogoutRequest, _ ...grpc.CallOption) (*authv1.LogoutResponse, error) {
	if f.checkBearer {
		st, ok := edge.StateFrom(ctx)
		if !ok || f.access == "" || !slices.Equal(st.Authorization, []string{"Bearer " + f.access}) {
			return nil, errs.New(errs.Unauthenticated, "authentication required")
		}
	}
	f.loggedOut, f.issued, f.access = in.GetRefreshToken(), "", ""
	return &authv1.LogoutResponse{}, nil
}

// post sends a session request as the console's own page does, then lets
// edit change it (to play a cross-site attacker).
func post(h http.Handler, route, body, cookie string, edit func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "https://bank.example"+CookiePath+route, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(CSRFHeader, "1")
	r.Header.Set("Origin", "https://bank.example")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: RefreshCookie, Value: cookie})
	}
	if edit != nil {
		edit(r)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func refreshCookieOf(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == RefreshCookie {
			return c
		}
	}
	return nil
}

func TestLoginSetsAnUnreadableCookie(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, &fakeAuth{})
	rec := post(h, "login", `{"email":"a@example.test","password":"right password"}`, "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("login = %d %s, want 200", rec.Code, rec.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["accessToken"] != "access-1" || got["tokenType"] != "Bearer" {
		t.Errorf("login body = %v, want the access token", got)
	}
	if strings.Contains(rec.Body.String(), "refresh-1") {
		t.Errorf("login body %s carries the refresh token; it belongs in the cookie only", rec.Body)
	}
	c := refreshCookieOf(t, rec)
	if c == nil {
		t.Fatal("login set no refresh cookie")
	}
	if c.Value != "refresh-1" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != CookiePath {
		t.Errorf("refresh cookie = %+v, want HttpOnly, Secure, SameSite=Strict, Path=%s", c, CookiePath)
	}
}

func TestLoginWithMFA(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, &fakeAuth{})
	rec := post(h, "login", `{"email":"mfa@example.test","password":"right password"}`, "", nil)
	if rec.Code != http.StatusOK || refreshCookieOf(t, rec) != nil {
		t.Fatalf("login with MFA on = %d %s with cookie %v, want 200 and no cookie", rec.Code, rec.Body, refreshCookieOf(t, rec))
	}
	if !strings.Contains(rec.Body.String(), `"mfaRequired":true`) || !strings.Contains(rec.Body.String(), `"mfaToken":"ticket-1"`) {
		t.Fatalf("login with MFA on = %s, want the ticket", rec.Body)
	}
	rec = post(h, "mfa", `{"mfaToken":"ticket-1","code":"123456"}`, "", nil)
	if c := refreshCookieOf(t, rec); rec.Code != http.StatusOK || c == nil || c.Value != "refresh-mfa" {
		t.Fatalf("MFA step = %d %s, cookie %v; want 200 and the cookie", rec.Code, rec.Body, c)
	}
	rec = post(h, "mfa", `{"mfaToken":"ticket-1","code":"000000"}`, "", nil)
	if rec.Code != http.StatusUnauthorized || refreshCookieOf(t, rec) != nil {
		t.Fatalf("MFA step with a wrong code = %d, want 401 and no cookie", rec.Code)
	}
}

func TestRefreshRotatesAndLogoutEnds(t *testing.T) {
	t.Parallel()
	auth := &fakeAuth{}
	h := newTestHandler(t, auth)
	post(h, "login", `{"email":"a@example.test","password":"right password"}`, "", nil)

	// A signed-out visitor's page asks too: no token, and no failure either.
	if rec := post(h, "refresh", `{}`, "", nil); rec.Code != http.StatusOK || rec.Body.String() != `{}` || refreshCookieOf(t, rec) != nil {
		t.Fatalf("refresh without the cookie = %d %s, want 200 {} and no cookie", rec.Code, rec.Body)
	}
	rec := post(h, "refresh", `{}`, "refresh-1", nil)
	c := refreshCookieOf(t, rec)
	if rec.Code != http.StatusOK || c == nil || c.Value != "refresh-1+" {
		t.Fatalf("refresh = %d %s, cookie %v; want 200 and the rotated token", rec.Code, rec.Body, c)
	}
	// The spent token again: refused, and the browser is told to drop it.
	rec = post(h, "refresh", `{}`, "refresh-1", nil)
	if c := refreshCookieOf(t, rec); rec.Code != http.StatusUnauthorized || c == nil || c.MaxAge >= 0 {
		t.Fatalf("refresh with a spent token = %d, cookie %v; want 401 and the cookie deleted", rec.Code, c)
	}

	rec = post(h, "logout", `{}`, "refresh-1+", func(r *http.Request) { r.Header.Set("Authorization", "Bearer access-2") })
	if c := refreshCookieOf(t, rec); rec.Code != http.StatusOK || c == nil || c.MaxAge >= 0 {
		t.Fatalf("logout = %d %s, cookie %v; want 200 and the cookie deleted", rec.Code, rec.Body, c)
	}
	if auth.loggedOut != "refresh-1+" {
		t.Errorf("logout revoked %q, want the cookie's refresh token", auth.loggedOut)
	}
	if rec := post(h, "refresh", `{}`, "refresh-1+", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("refresh after logout = %d, want 401", rec.Code)
	}
}

// TestCrossSiteRefused: a request that does not prove it comes from the
// console's own page gets 403 and never reaches the auth service.
func TestCrossSiteRefused(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*http.Request){
		"no custom header":      func(r *http.Request) { r.Header.Del(CSRFHeader) },
		"custom header not 1":   func(r *http.Request) { r.Header.Set(CSRFHeader, "yes") },
		"no Origin":             func(r *http.Request) { r.Header.Del("Origin") },
		"another origin":        func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") },
		"a sibling port":        func(r *http.Request) { r.Header.Set("Origin", "https://bank.example:8443") },
		"plain http origin":     func(r *http.Request) { r.Header.Set("Origin", "http://bank.example") },
		"null origin":           func(r *http.Request) { r.Header.Set("Origin", "null") },
		"cross-site fetch":      func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"same-site, other host": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") },
		"origin with a path":    func(r *http.Request) { r.Header.Set("Origin", "https://bank.example/x") },
		// Looser spellings a parser would accept as the same origin; no
		// browser sends them, so the check takes the one exact form only.
		"origin with a slash":        func(r *http.Request) { r.Header.Set("Origin", "https://bank.example/") },
		"origin with a query":        func(r *http.Request) { r.Header.Set("Origin", "https://bank.example?x") },
		"origin with a fragment":     func(r *http.Request) { r.Header.Set("Origin", "https://bank.example#x") },
		"origin with user info":      func(r *http.Request) { r.Header.Set("Origin", "https://evil@bank.example") },
		"right origin, then another": func(r *http.Request) { r.Header.Add("Origin", "https://evil.example") },
		"custom header twice":        func(r *http.Request) { r.Header.Add(CSRFHeader, "1") },
		"fetch metadata twice":       func(r *http.Request) { r.Header.Add("Sec-Fetch-Site", "cross-site") },
		"user-initiated":             func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "none") },
		"no Host, origin https://":   func(r *http.Request) { r.Host = ""; r.Header.Set("Origin", "https://") },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			auth := &fakeAuth{issued: "refresh-1"}
			h := newTestHandler(t, auth)
			for _, route := range []string{"login", "mfa", "refresh", "logout"} {
				rec := post(h, route, `{}`, "refresh-1", edit)
				if rec.Code != http.StatusForbidden || refreshCookieOf(t, rec) != nil {
					t.Errorf("%s with %s = %d, want 403 and no cookie", route, name, rec.Code)
				}
			}
			if auth.issued != "refresh-1" || auth.loggedOut != "" {
				t.Errorf("a refused request reached the auth service")
			}
		})
	}
}

func TestSessionRoutesRefuse(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, &fakeAuth{})
	tests := []struct {
		name, route, body string
		edit              func(*http.Request)
		want              int
	}{
		{"unknown field", "login", `{"email":"a@example.test","password":"right password","admin":true}`, nil, http.StatusBadRequest},
		{"two objects", "login", `{"email":"a@example.test","password":"right password"}{}`, nil, http.StatusBadRequest},
		{"not JSON", "refresh", `refresh-1`, nil, http.StatusBadRequest},
		{"wrong password", "login", `{"email":"a@example.test","password":"wrong"}`, nil, http.StatusUnauthorized},
		{"GET", "login", ``, func(r *http.Request) { r.Method = http.MethodGet }, http.StatusMethodNotAllowed},
		{"unknown route", "become-admin", `{}`, nil, http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := post(h, tt.route, tt.body, "", tt.edit)
			if rec.Code != tt.want {
				t.Fatalf("%s = %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
			}
		})
	}
}

// TestLogoutWithoutAnAccessTokenEndsTheSession: a page whose access token
// has expired (or was lost on a reload) still ends the session at the
// auth service, through the cookie; clearing the cookie alone would leave
// its refresh token alive there.
func TestLogoutWithoutAnAccessTokenEndsTheSession(t *testing.T) {
	t.Parallel()
	auth := &fakeAuth{checkBearer: true}
	inner := newTestHandler(t, auth)
	// As the edge middleware does: the request's Authorization in its state.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &edge.State{ClientIP: "192.0.2.1", Authorization: r.Header.Values("Authorization")}
		inner.ServeHTTP(w, r.WithContext(edge.WithState(r.Context(), st)))
	})
	post(h, "login", `{"email":"a@example.test","password":"right password"}`, "", nil)
	auth.access = "access-1" // what the page held, now expired: not sent

	rec := post(h, "logout", `{}`, "refresh-1", nil)
	if c := refreshCookieOf(t, rec); rec.Code != http.StatusOK || c == nil || c.MaxAge >= 0 {
		t.Fatalf("logout without a bearer = %d %s, cookie %v; want 200 and the cookie deleted", rec.Code, rec.Body, c)
	}
	if auth.loggedOut != "refresh-1+" {
		t.Errorf("logout revoked %q, want the pair the cookie's token was spent for (refresh-1+)", auth.loggedOut)
	}
	for _, token := range []string{"refresh-1", "refresh-1+"} {
		if rec := post(h, "refresh", `{}`, token, nil); rec.Code != http.StatusUnauthorized {
			t.Errorf("refresh with %s after logout = %d, want 401: the session must be over", token, rec.Code)
		}
	}
	// A cookie whose token is spent already: nothing to end, 401, cleared.
	rec = post(h, "logout", `{}`, "refresh-1", nil)
	if c := refreshCookieOf(t, rec); rec.Code != http.StatusUnauthorized || c == nil || c.MaxAge >= 0 {
		t.Errorf("logout with a spent cookie = %d, cookie %v; want 401 and the cookie deleted", rec.Code, c)
	}
}
