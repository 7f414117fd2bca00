package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestResponseShapes calls every route of docs/api.md once and holds each answer
// to the documented shape: exactly the listed members, ids as random UUIDs,
// amounts as decimal strings, timestamps in RFC 3339, enums spelled as listed.
func TestResponseShapes(t *testing.T) {
	t.Parallel()
	u := newCaller(t)
	u.email = uniqueEmail("Shape.Owner")
	reg := u.do("POST", "/v1/auth/register", map[string]any{"email": u.email, "password": "correct horse battery", "displayName": "Shape"}).
		must(t, 200, "register").shape(t, "register", "user", userShape)
	u.userID = reg.str("user", "id")
	if got := reg.str("user", "email"); got != strings.ToLower(u.email) {
		t.Errorf("registered email = %q, want it lower-cased: %q", got, strings.ToLower(u.email))
	}
	login := u.do("POST", "/v1/auth/login", map[string]any{"email": strings.ToUpper(u.email), "password": "correct horse battery"}).
		must(t, 200, "login with the email in upper case")
	checkShape(t, "login", map[string]any(login.JSON), tokensShape)
	u.token, u.refresh = login.str("accessToken"), login.str("refreshToken")
	refreshed := u.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": u.refresh}).must(t, 200, "refresh")
	checkShape(t, "refresh", map[string]any(refreshed.JSON), tokensShape)
	u.token, u.refresh = refreshed.str("accessToken"), refreshed.str("refreshToken")
	u.do("GET", "/v1/users/me", nil).must(t, 200, "me").shape(t, "me", "user", userShape)

	other, mgr, adm := register(t, "shape-other"), manager(t, "shape-mgr"), admin(t)
	adm.do("PUT", "/v1/users/"+other.userID+"/roles", map[string]any{"roles": []string{"user"}}).
		must(t, 200, "set roles").shape(t, "set roles", "user", userShape)

	acct := u.do("POST", "/v1/accounts", map[string]any{"currency": "EUR"}).must(t, 200, "open without displayName").
		shape(t, "open account", "account", accountShape)
	if acct.str("account", "status") != "ACTIVE" || acct.str("account", "ownerId") != u.userID || acct.str("account", "balance", "amount") != "0" {
		t.Errorf("new account = %s, want ACTIVE, owned by the caller, balance \"0\"", acct.Body)
	}
	a := acct.str("account", "id")
	b := u.openAccount("EUR")
	for _, cur := range []string{"USD", "GBP", "CHF", "JPY"} {
		u.do("POST", "/v1/accounts", map[string]any{"currency": cur, "displayName": cur}).must(t, 200, "open "+cur).
			shape(t, "open "+cur, "account", accountShape)
	}
	u.do("GET", "/v1/accounts", nil).must(t, 200, "list").list(t, "list accounts", "accounts", accountShape)
	u.do("GET", "/v1/accounts/"+a, nil).must(t, 200, "get account").shape(t, "get account", "account", accountShape)

	dep := mgr.deposit(a, 3_000_000, "EUR").must(t, 200, "deposit").shape(t, "deposit", "transfer", transferShape)
	if dep.str("transfer", "status") != "PENDING_APPROVAL" || dep.str("transfer", "holdReason") != "amount" ||
		dep.str("transfer", "kind") != "DEPOSIT" || dep.str("transfer", "reference") != "e2e deposit" {
		t.Errorf("deposit at or above the approval threshold = %s, want PENDING_APPROVAL for its amount, a DEPOSIT with its reference", dep.Body)
	}
	approved := manager(t, "contract-approver").do("POST", "/v1/transfers/"+dep.str("transfer", "id")+":approve", map[string]any{}).
		must(t, 200, "a second manager approves the deposit").shape(t, "approve deposit", "transfer", transferShape)
	if approved.str("transfer", "status") != "COMPLETED" || approved.str("transfer", "approvedBy") == "" || approved.str("transfer", "holdReason") != "amount" {
		t.Errorf("approved deposit = %s, want COMPLETED, approvedBy, and the hold reason kept", approved.Body)
	}
	small := u.transfer(rand.Text(), a, b, 999_999, "EUR").must(t, 200, "transfer below the threshold").
		shape(t, "transfer", "transfer", transferShape)
	if small.str("transfer", "status") != "COMPLETED" || small.str("transfer", "amount") != "999999" || small.str("transfer", "initiatedBy") != u.userID {
		t.Errorf("transfer below the threshold = %s", small.Body)
	}
	u.do("GET", "/v1/transfers/"+small.str("transfer", "id"), nil).must(t, 200, "get transfer").shape(t, "get transfer", "transfer", transferShape)

	for _, tc := range []struct{ verb, status string }{{"approve", "COMPLETED"}, {"reject", "REJECTED"}} {
		held := u.transfer(rand.Text(), a, b, 1_000_000, "EUR").must(t, 200, "held transfer").shape(t, "held transfer", "transfer", transferShape)
		if held.str("transfer", "status") != "PENDING_APPROVAL" {
			t.Errorf("transfer at the threshold = %s, want PENDING_APPROVAL", held.Body)
		}
		body := map[string]any{}
		if tc.verb == "reject" {
			body["reason"] = "shape check"
		}
		d := mgr.do("POST", "/v1/transfers/"+held.str("transfer", "id")+":"+tc.verb, body).must(t, 200, tc.verb).
			shape(t, tc.verb, "transfer", transferShape)
		// Who decided appears under the name of what they decided.
		who := map[string]string{"approve": "approvedBy", "reject": "rejectedBy"}[tc.verb]
		other := map[string]string{"approve": "rejectedBy", "reject": "approvedBy"}[tc.verb]
		if d.str("transfer", "status") != tc.status || d.str("transfer", who) != mgr.userID || d.field("transfer").(map[string]any)[other] != nil {
			t.Errorf("%s = %s, want status %s, %s the manager and no %s", tc.verb, d.Body, tc.status, who, other)
		}
		if tc.verb == "reject" && d.str("transfer", "rejectionReason") != "shape check" {
			t.Errorf("reject = %s, want rejectionReason %q", d.Body, "shape check")
		}
	}
	entries := u.do("GET", "/v1/accounts/"+a+"/transactions", nil).must(t, 200, "history").list(t, "history", "entries", entryShape)
	if len(entries) != 3 || entries[0]["amount"] != "-1000000" || entries[2]["amount"] != "3000000" {
		t.Errorf("history = %v, want approve, transfer, deposit (newest first, signed amounts)", entries)
	}

	for _, verb := range []string{"freeze", "unfreeze"} {
		r := mgr.do("POST", "/v1/accounts/"+b+":"+verb, map[string]any{"reason": "shape check"}).must(t, 200, verb).
			shape(t, verb, "account", accountShape)
		if want := map[string]string{"freeze": "FROZEN", "unfreeze": "ACTIVE"}[verb]; r.str("account", "status") != want {
			t.Errorf("%s: status %q, want %q", verb, r.str("account", "status"), want)
		}
	}
	out := u.do("POST", "/v1/auth/logout", map[string]any{"refreshToken": u.refresh}).must(t, 200, "logout")
	if string(out.Body) != "{}" {
		t.Errorf("logout body = %s, want {}", out.Body)
	}
}

// TestAccessToken: the token and the key set are what docs/api.md describes, and
// expiresIn agrees with the token's own lifetime.
func TestAccessToken(t *testing.T) {
	t.Parallel()
	u := newCaller(t)
	u.email = uniqueEmail("claims")
	u.userID = u.do("POST", "/v1/auth/register", map[string]any{"email": u.email, "password": "correct horse battery", "displayName": "c"}).
		must(t, 200, "register").str("user", "id")
	login := u.do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "correct horse battery"}).must(t, 200, "login")
	parts := strings.Split(login.str("accessToken"), ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want a JWS of 3", len(parts))
	}
	var header map[string]any
	var claims map[string]any
	decodeSegment(t, parts[0], &header)
	decodeSegment(t, parts[1], &claims)
	if alg := header["alg"]; alg != "EdDSA" && alg != "ES256" {
		t.Errorf("alg = %v, want EdDSA or ES256", alg)
	}
	for _, c := range []string{"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "roles"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("token lacks claim %q: %v", c, claims)
		}
	}
	if claims["sub"] != u.userID || fmt.Sprint(claims["roles"]) != "[user]" {
		t.Errorf("sub, roles = %v, %v; want %s, [user]", claims["sub"], claims["roles"], u.userID)
	}
	exp, _ := claims["exp"].(float64)
	iat, _ := claims["iat"].(float64)
	expiresIn, _ := login.field("expiresIn").(float64)
	if exp-iat != 900 || expiresIn != 900 {
		t.Errorf("lifetime exp-iat = %v, expiresIn = %v; want 15 minutes (900) both", exp-iat, expiresIn)
	}

	jwks := newCaller(t).do("GET", "/.well-known/jwks.json", nil).must(t, 200, "JWKS")
	if got := keysOf(jwks.JSON); !slices.Equal(got, []string{"keys"}) {
		t.Errorf("JWKS members = %v, want [keys]", got)
	}
	keys, _ := jwks.field("keys").([]any)
	found := false
	for _, k := range keys {
		key, _ := k.(map[string]any)
		found = found || key["kid"] == header["kid"]
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := key[private]; ok {
				t.Errorf("JWKS key %v carries private member %q", key["kid"], private)
			}
		}
	}
	if !found {
		t.Errorf("the token's kid %v is not in the JWKS %s", header["kid"], jwks.Body)
	}
}

func decodeSegment(t *testing.T, seg string, into any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("token segment: %v", err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("token segment: %v", err)
	}
}

// TestTransportHeaders: X-Request-Id is echoed when well formed and made up
// otherwise, on answers of every kind (do checks the security headers on
// every response of the suite).
func TestTransportHeaders(t *testing.T) {
	t.Parallel()
	u := register(t, "headers")
	big := `{"currency":"EUR","displayName":"` + strings.Repeat("x", 64<<10) + `"}`
	requests := []struct {
		name   string
		method string
		path   string
		body   any
		hdr    []string
		status int
	}{
		{"authenticated success", "GET", "/v1/users/me", nil, nil, 200},
		{"public success", "GET", "/.well-known/jwks.json", nil, nil, 200},
		{"health", "GET", "/healthz", nil, nil, 200},
		{"readiness", "GET", "/readyz", nil, nil, 200},
		{"validation failure", "POST", "/v1/accounts", map[string]any{"currency": "XXX"}, nil, 400},
		{"no such route", "GET", "/v1/nothing-here", nil, nil, 404},
		{"body too large", "POST", "/v1/accounts", big, nil, 413},
		{"wrong media type", "POST", "/v1/accounts", `{"currency":"EUR"}`, []string{"Content-Type", "text/plain"}, 415},
	}
	ids := []struct {
		sent string
		echo bool
	}{{"client-id_1.2", true}, {strings.Repeat("a", 64), true}, {strings.Repeat("a", 65), false}, {"has space", false}, {"", false}}
	for _, rq := range requests {
		for _, id := range ids {
			t.Run(fmt.Sprintf("%s/%q", rq.name, id.sent), func(t *testing.T) {
				c := *u
				c.t = t
				r := c.do(rq.method, rq.path, rq.body, append([]string{"X-Request-Id", id.sent}, rq.hdr...)...).must(t, rq.status, rq.name)
				got := r.Header.Get("X-Request-Id")
				if id.echo != (got == id.sent) {
					t.Errorf("X-Request-Id = %q for %q sent, want echoed: %v", got, id.sent, id.echo)
				}
				if rq.status >= 400 {
					r.problem(t, rq.name, rq.status, rq.status == 400)
				}
			})
		}
	}
	first := u.do("GET", "/healthz", nil).Header.Get("X-Request-Id")
	if second := u.do("GET", "/healthz", nil).Header.Get("X-Request-Id"); first == second {
		t.Errorf("two requests without an id got the same X-Request-Id %q", first)
	}
}

// TestAuthenticationRequired: every route but register, login, refresh,
// JWKS, health and the docs answers 401 with the Bearer challenge to a
// request without a token, before it looks at anything else.
func TestAuthenticationRequired(t *testing.T) {
	t.Parallel()
	c := newCaller(t)
	routes := []struct{ method, path string }{
		{"POST", "/v1/auth/logout"}, {"GET", "/v1/users/me"}, {"PUT", "/v1/users/" + randomID + "/roles"},
		{"POST", "/v1/accounts"}, {"GET", "/v1/accounts"}, {"GET", "/v1/accounts/" + randomID},
		{"POST", "/v1/accounts/" + randomID + ":freeze"}, {"POST", "/v1/accounts/" + randomID + ":unfreeze"},
		{"POST", "/v1/transfers"}, {"GET", "/v1/transfers/" + randomID}, {"POST", "/v1/transfers/" + randomID + ":approve"},
		{"POST", "/v1/transfers/" + randomID + ":reject"}, {"GET", "/v1/accounts/" + randomID + "/transactions"},
		{"POST", "/v1/accounts/" + randomID + "/deposits"},
		{"GET", "/v1/users"}, {"POST", "/v1/users/" + randomID + ":disable"}, {"POST", "/v1/users/" + randomID + ":enable"},
		{"POST", "/v1/users/me/password"}, {"GET", "/v1/users/me/sessions"}, {"POST", "/v1/users/me/sessions/" + randomID + ":revoke"},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			var body any
			if rt.method != "GET" {
				body = map[string]any{}
			}
			r := c.do(rt.method, rt.path, body).problem(t, "no token", 401, false)
			// No credentials: the bare challenge, without an error (RFC 6750 §3.1).
			if got := r.Header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want the bare Bearer challenge", got)
			}
		})
	}
	public := []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/v1/auth/register", map[string]any{"email": uniqueEmail("public"), "password": "correct horse battery", "displayName": "p"}, 200},
		{"POST", "/v1/auth/login", map[string]any{"email": uniqueEmail("nobody"), "password": "wrong password!"}, 401},
		{"POST", "/v1/auth/refresh", map[string]any{"refreshToken": "not-a-refresh-token"}, 401},
		{"GET", "/.well-known/jwks.json", nil, 200},
		{"GET", "/healthz", nil, 200},
		{"GET", "/readyz", nil, 200},
		{"GET", "/openapi.json", nil, 200},
	}
	for _, rt := range public {
		t.Run("public "+rt.path, func(t *testing.T) {
			r := newCaller(t).do(rt.method, rt.path, rt.body).must(t, rt.status, rt.path+" without a token")
			if rt.status == 401 && r.str("detail") == "authentication required" {
				t.Errorf("%s asked for a token: %s", rt.path, r.Body)
			}
		})
	}
	req, _ := http.NewRequest("GET", bank.base+"/docs/", nil)
	resp, err := bank.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /docs/ without a token = %d, want 200", resp.StatusCode)
	}
}

// TestRefreshFamilies: reusing a spent refresh token revokes every token
// descended from the same login, and only those: another login of the same
// user keeps working.
func TestRefreshFamilies(t *testing.T) {
	t.Parallel()
	u := register(t, "families")
	first := u.refresh
	refresh := func(tok string) response {
		return u.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": tok})
	}
	second := refresh(first).must(t, 200, "rotate").str("refreshToken")
	third := refresh(second).must(t, 200, "rotate again").str("refreshToken")
	other := newCaller(t)
	other.email = u.email
	other.login("correct horse battery") // a second family
	refresh(first).problem(t, "reuse of the first token", 401, false)
	refresh(third).problem(t, "a descendant after the reuse", 401, false)
	refresh(other.refresh).must(t, 200, "the other login's family")
}
