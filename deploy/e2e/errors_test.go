package e2e

import (
	"crypto/rand"
	"strings"
	"testing"
)

// TestErrorTable produces each status of docs/api.md's error table by each cause
// the table names, and holds every answer to the problem+json shape:
// violations naming the field for failed validation, none for anything that
// is not an input error. Nothing a refused request asked for may happen.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	u, v, mgr := register(t, "errors"), register(t, "errors-other"), manager(t, "errors-mgr")
	a, b, usd, frozen := u.openAccount("EUR"), u.openAccount("EUR"), u.openAccount("USD"), u.openAccount("EUR")
	va := v.openAccount("EUR")
	mgr.deposit(a, 5_000, "EUR").must(t, 200, "deposit")
	mgr.do("POST", "/v1/accounts/"+frozen+":freeze", map[string]any{"reason": "errors test"}).must(t, 200, "freeze")
	reused := rand.Text()
	u.transfer(reused, a, b, 10, "EUR").must(t, 200, "first use of a key")
	anon := newCaller(t)
	xfer := func(from, to, amount, currency string) map[string]any {
		return map[string]any{"fromAccountId": from, "toAccountId": to, "amount": amount, "currency": currency}
	}
	key := func() []string { return []string{"Idempotency-Key", rand.Text()} }
	pw := func(p string) map[string]any {
		return map[string]any{"email": uniqueEmail("pw"), "password": p, "displayName": "pw"}
	}
	const (
		none  = ""  // no violations: not an input error, or one no field explains
		maybe = "*" // an input error that may or may not name a field
	)
	cases := []struct {
		name      string
		who       *caller
		method    string
		path      string
		body      any
		hdr       []string
		status    int
		violation string // the field a violation must name; none; or maybe
		problem   string // a word the problem type must contain, to tell apart refusals of one status
	}{
		{"malformed JSON", u, "POST", "/v1/accounts", `{"currency":`, nil, 400, none, ""},
		{"not an object", u, "POST", "/v1/accounts", `["EUR"]`, nil, 400, none, ""},
		{"unknown field", u, "POST", "/v1/accounts", `{"currency":"EUR","isAdmin":true}`, nil, 400, none, ""},
		{"a name not in lowerCamelCase", u, "POST", "/v1/accounts", `{"currency":"EUR","display_name":"x"}`, nil, 400, none, ""},
		{"a path parameter in the body", mgr, "POST", "/v1/accounts/" + b + ":freeze", map[string]any{"reason": "r", "accountId": a}, nil, 400, none, ""},
		{"the idempotency key in the body", u, "POST", "/v1/transfers", `{"fromAccountId":"` + a + `","toAccountId":"` + b + `","amount":"1","currency":"EUR","idempotencyKey":"k"}`, key(), 400, none, ""},
		{"amount with a fraction", u, "POST", "/v1/transfers", xfer(a, b, "1.5", "EUR"), key(), 400, none, ""},
		{"unsupported currency", u, "POST", "/v1/accounts", map[string]any{"currency": "XXX"}, nil, 400, "currency", ""},
		{"password of 11 characters", anon, "POST", "/v1/auth/register", pw(strings.Repeat("p", 11)), nil, 400, "password", ""},
		{"password of 129 characters", anon, "POST", "/v1/auth/register", pw(strings.Repeat("p", 129)), nil, 400, "password", ""},
		{"zero amount", u, "POST", "/v1/transfers", xfer(a, b, "0", "EUR"), key(), 400, "amount", ""},
		{"missing Idempotency-Key on a transfer", u, "POST", "/v1/transfers", xfer(a, b, "1", "EUR"), nil, 400, "idempotencyKey", ""},
		{"missing Idempotency-Key on a deposit", mgr, "POST", "/v1/accounts/" + a + "/deposits", map[string]any{"amount": "1", "currency": "EUR", "reference": "r"}, nil, 400, "idempotencyKey", ""},
		{"Idempotency-Key of 256 characters", u, "POST", "/v1/transfers", xfer(a, b, "1", "EUR"), []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "idempotencyKey", ""},
		{"Idempotency-Key not printable", u, "POST", "/v1/transfers", xfer(a, b, "1", "EUR"), []string{"Idempotency-Key", "tab\there"}, 400, "idempotencyKey", ""},
		{"page size over 100", u, "GET", "/v1/accounts/" + a + "/transactions?pageSize=101", nil, nil, 400, "pageSize", ""},
		{"page token not issued by the bank", u, "GET", "/v1/accounts/" + a + "/transactions?pageToken=forged", nil, nil, 400, maybe, ""},
		{"bad credentials", anon, "POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "not the password"}, nil, 401, none, ""},
		{"role does not allow", u, "POST", "/v1/accounts/" + a + "/deposits", map[string]any{"amount": "1", "currency": "EUR", "reference": "r"}, key(), 403, none, ""},
		{"no such account", u, "GET", "/v1/accounts/" + randomID, nil, nil, 404, none, ""},
		{"no such transfer", u, "GET", "/v1/transfers/" + randomID, nil, nil, 404, none, ""},
		{"someone else's account", u, "GET", "/v1/accounts/" + va, nil, nil, 404, none, ""},
		{"a transfer from someone else's account", u, "POST", "/v1/transfers", xfer(va, a, "1", "EUR"), key(), 404, none, ""},
		{"a manager's transfer from someone else's account", mgr, "POST", "/v1/transfers", xfer(a, va, "1", "EUR"), key(), 404, none, ""},
		{"a transfer to no such account", u, "POST", "/v1/transfers", xfer(a, randomID, "1", "EUR"), key(), 404, none, ""},
		{"no such route", u, "GET", "/v1/nothing-here", nil, nil, 404, none, ""},
		{"duplicate registration, other case", anon, "POST", "/v1/auth/register", map[string]any{"email": strings.ToUpper(u.email), "password": "correct horse battery", "displayName": "dup"}, nil, 409, none, ""},
		{"body too large", u, "POST", "/v1/accounts", `{"currency":"EUR","displayName":"` + strings.Repeat("x", 64<<10) + `"}`, nil, 413, none, ""},
		{"wrong media type", u, "POST", "/v1/accounts", `{"currency":"EUR"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, none, ""},
		{"no media type", u, "POST", "/v1/accounts", `{"currency":"EUR"}`, []string{"Content-Type", ""}, 415, none, ""},
		{"insufficient funds", u, "POST", "/v1/transfers", xfer(a, b, "5001", "EUR"), key(), 422, none, "funds"},
		{"frozen source", u, "POST", "/v1/transfers", xfer(frozen, a, "1", "EUR"), key(), 422, none, "active"},
		{"frozen destination", u, "POST", "/v1/transfers", xfer(a, frozen, "1", "EUR"), key(), 422, none, "active"},
		{"deposit into a frozen account", mgr, "POST", "/v1/accounts/" + frozen + "/deposits", map[string]any{"amount": "1", "currency": "EUR", "reference": "r"}, key(), 422, none, "active"},
		{"currency mismatch", u, "POST", "/v1/transfers", xfer(a, usd, "1", "EUR"), key(), 422, none, "currency"},
		{"currency of neither account", u, "POST", "/v1/transfers", xfer(a, b, "1", "USD"), key(), 422, none, "currency"},
		{"over the per-transfer maximum", u, "POST", "/v1/transfers", xfer(a, b, "100000001", "EUR"), key(), 422, none, "maximum"},
		{"the largest amount JSON can carry", u, "POST", "/v1/transfers", xfer(a, b, "9223372036854775807", "EUR"), key(), 422, none, "maximum"},
		{"a deposit over the maximum", mgr, "POST", "/v1/accounts/" + a + "/deposits", map[string]any{"amount": "9223372036854775807", "currency": "EUR", "reference": "r"}, key(), 422, none, "maximum"},
		{"same key, different body", u, "POST", "/v1/transfers", xfer(a, b, "11", "EUR"), []string{"Idempotency-Key", reused}, 422, none, "idempotency"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := *tc.who
			c.t = t
			r := c.do(tc.method, tc.path, tc.body, tc.hdr...)
			wantViolations := tc.violation != none
			if tc.violation == maybe {
				wantViolations = r.JSON["violations"] != nil
			}
			r.problem(t, tc.name, tc.status, wantViolations)
			if wantViolations && tc.violation != maybe && !strings.Contains(string(r.Body), `"field":"`+tc.violation+`"`) {
				t.Errorf("violations do not name %q: %s", tc.violation, r.Body)
			}
			if tc.problem != "" && !strings.Contains(r.str("type"), tc.problem) {
				t.Errorf("problem type %q, want the %q refusal", r.str("type"), tc.problem)
			}
			// The request id is random base32 and may spell "SQL" by chance:
			// look for leaks in everything else.
			body := strings.ReplaceAll(string(r.Body), r.str("requestId"), "")
			for _, leak := range []string{"proto:", "sql", "SQL", "pgx", "goroutine", "rpc error", "127.0.0.1", "unknown field"} {
				if strings.Contains(body, leak) {
					t.Errorf("problem leaks %q: %s", leak, r.Body)
				}
			}
		})
	}
	if booked, avail := u.balances(a); booked != "4990" || avail != "4990" {
		t.Errorf("after the refusals: balance %s, available %s; want 4990 (only the first keyed transfer moved money)", booked, avail)
	}
	if booked, _ := u.balances(frozen); booked != "0" {
		t.Errorf("frozen account balance = %s, want 0", booked)
	}
}
