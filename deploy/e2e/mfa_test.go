package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// jwtAMR reads the amr claim of an access token without verifying it.
func jwtAMR(t *testing.T, raw string) []string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.AMR
}

// TestMFALogin: enrolment, the two-step login, amr in the tokens, and the
// second step's refusals: a replayed code, another user's code, a spent
// ticket.
func TestMFALogin(t *testing.T) {
	t.Parallel()
	u, other := register(t, "mfa"), register(t, "mfa-other")
	if jwtAMR(t, u.token)[0] != "pwd" {
		t.Errorf("password login amr = %v, want [pwd]", jwtAMR(t, u.token))
	}
	u.do("POST", "/v1/users/me/mfa/totp:verify", map[string]any{"code": "123456"}).must(t, 422, "verify without an enrolment")
	e := u.do("POST", "/v1/users/me/mfa/totp", map[string]any{}).must(t, 200, "start the enrolment")
	if !strings.HasPrefix(e.str("otpauthUri"), "otpauth://totp/") || e.str("secret") == "" {
		t.Fatalf("enrolment answered %s", e.Body)
	}
	u.do("POST", "/v1/users/me/mfa/totp:verify", map[string]any{"code": "12345"}).must(t, 400, "a five-digit code")
	u.do("POST", "/v1/users/me/mfa/totp:verify", map[string]any{"code": "000000", "x": 1}).must(t, 400, "an unknown field")
	u.otp = e.str("secret")
	v := u.do("POST", "/v1/users/me/mfa/totp:verify", map[string]any{"code": totpCode(t, u.otp)}).must(t, 200, "verify")
	if v.JSON["user"].(map[string]any)["mfaEnabled"] != true {
		t.Errorf("verify answered %s, want mfaEnabled", v.Body)
	}
	if me := u.do("GET", "/v1/users/me", nil).must(t, 200, "me"); me.JSON["user"].(map[string]any)["mfaEnabled"] != true {
		t.Errorf("me = %s, want mfaEnabled", me.Body)
	}
	other.enrolTOTP()

	first := newCaller(t).do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "correct horse battery"}).must(t, 200, "password step")
	if first.JSON["mfaRequired"] != true || first.str("mfaToken") == "" || first.str("accessToken") != "" || first.str("refreshToken") != "" {
		t.Fatalf("password step answered %s, want only mfaRequired, mfaToken and expiresIn", first.Body)
	}
	if n, _ := first.JSON["expiresIn"].(float64); n <= 0 || n > 600 {
		t.Errorf("ticket expiresIn = %v, want a few minutes", first.JSON["expiresIn"])
	}
	code := totpCode(t, u.otp)
	done := newCaller(t).do("POST", "/v1/auth/login/mfa", map[string]any{"mfaToken": first.str("mfaToken"), "code": code}).must(t, 200, "code step")
	if amr := jwtAMR(t, done.str("accessToken")); !slices.Equal(amr, []string{"pwd", "otp"}) || done.str("tokenType") != "Bearer" {
		t.Errorf("MFA login = %s with amr %v, want a Bearer token with amr [pwd otp]", done.Body, amr)
	}
	r := newCaller(t).do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": done.str("refreshToken")}).must(t, 200, "refresh")
	if amr := jwtAMR(t, r.str("accessToken")); !slices.Equal(amr, []string{"pwd", "otp"}) {
		t.Errorf("refreshed amr = %v, want [pwd otp] kept", amr)
	}

	ticket := func() string {
		return newCaller(t).do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "correct horse battery"}).
			must(t, 200, "password step").str("mfaToken")
	}
	for _, tt := range []struct {
		name, ticket, code string
	}{
		{"the same code again (replay)", ticket(), code},
		{"another user's code", ticket(), totpCode(t, other.otp)},
		{"the spent ticket", first.str("mfaToken"), totpCode(t, u.otp)},
		{"a made-up ticket", strings.Repeat("A", 43), totpCode(t, u.otp)},
	} {
		got := newCaller(t).do("POST", "/v1/auth/login/mfa", map[string]any{"mfaToken": tt.ticket, "code": tt.code})
		got.problem(t, tt.name, 401, false)
	}
	newCaller(t).do("POST", "/v1/auth/login/mfa", map[string]any{"mfaToken": ticket(), "code": "12 456"}).must(t, 400, "a malformed code")

	// A password-only session of a user with MFA on cannot replace the factor.
	u.do("POST", "/v1/users/me/mfa/totp", map[string]any{}).problem(t, "re-enrolment from a password-only session", 403, false)
}

// TestWrongCodesCountAsFailedLogins: after five wrong codes from one
// client, that client's logins are throttled, even with the right password.
func TestWrongCodesCountAsFailedLogins(t *testing.T) {
	t.Parallel()
	u := register(t, "mfa-guess")
	u.enrolTOTP()
	guesser := newCaller(t)
	for i := range 5 {
		r := guesser.do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "correct horse battery"}).must(t, 200, "password step")
		guesser.do("POST", "/v1/auth/login/mfa", map[string]any{"mfaToken": r.str("mfaToken"), "code": fmt.Sprintf("%06d", i)}).
			must(t, 401, "a guessed code")
	}
	r := guesser.do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "correct horse battery"})
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Errorf("login after five wrong codes = %d (Retry-After %q), want 429 with Retry-After", r.Status, r.Header.Get("Retry-After"))
	}
}
