package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// caller is one client of the bank: a client IP and, once logged in, a token.
type caller struct {
	t       *testing.T
	ip      string
	token   string
	refresh string
	userID  string
	email   string
	otp     string // the user's TOTP secret (base32) once MFA is on
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func newCaller(t *testing.T) *caller {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			failed = true
		}
	})
	return &caller{t: t, ip: bank.nextIP()}
}

// do sends a request; body may be nil, a string (sent as is) or a value encoded as JSON.
// hdr holds extra header pairs.
func (c *caller) do(method, path string, body any, hdr ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, bank.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Forwarded-For", c.ip)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	noteSecrets(body, append([]string{"Authorization", c.token}, hdr...)...)
	resp, err := bank.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	noteSecrets(out.JSON)
	checkEnvelope(c.t, req, out)
	return out
}

// must fails the test unless the response has the wanted status.
func (r response) must(t *testing.T, want int, what string) response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want, r.Body)
	}
	return r
}

// str walks the JSON body along keys and returns the string found there.
func (r response) str(keys ...string) string {
	var v any = r.JSON
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func uniqueEmail(prefix string) string {
	return fmt.Sprintf("%s.%s@example.test", prefix, strings.ToLower(rand.Text()[:8]))
}

// register creates and logs in a user with the role "user".
func register(t *testing.T, prefix string) *caller {
	t.Helper()
	c := newCaller(t)
	c.email = uniqueEmail(prefix)
	r := c.do("POST", "/v1/auth/register", map[string]any{"email": c.email, "password": "correct horse battery", "displayName": prefix})
	r.must(t, 200, "register")
	c.userID = r.str("user", "id")
	c.login("correct horse battery")
	return c
}

// login logs c in with password and, once MFA is on, a one-time code: the
// tokens then carry amr ["pwd","otp"], which staff operations need.
func (c *caller) login(password string) {
	c.t.Helper()
	r := c.do("POST", "/v1/auth/login", map[string]any{"email": c.email, "password": password})
	r.must(c.t, 200, "login "+c.email)
	if c.otp != "" {
		if r.JSON["mfaRequired"] != true || r.str("accessToken") != "" {
			c.t.Fatalf("login of %s with MFA on = %s, want only a ticket", c.email, r.Body)
		}
		r = c.do("POST", "/v1/auth/login/mfa", map[string]any{"mfaToken": r.str("mfaToken"), "code": totpCode(c.t, c.otp)})
		r.must(c.t, 200, "MFA login "+c.email)
	}
	c.token, c.refresh = r.str("accessToken"), r.str("refreshToken")
}

// enrolTOTP turns MFA on for c through the API and keeps the secret.
func (c *caller) enrolTOTP() {
	c.t.Helper()
	e := c.do("POST", "/v1/users/me/mfa/totp", map[string]any{}).must(c.t, 200, "start TOTP enrolment")
	secret := e.str("secret")
	v := c.do("POST", "/v1/users/me/mfa/totp:verify", map[string]any{"code": totpCode(c.t, secret)}).must(c.t, 200, "verify TOTP")
	if v.JSON["user"].(map[string]any)["mfaEnabled"] != true {
		c.t.Fatalf("verify answered %s, want mfaEnabled", v.Body)
	}
	c.otp = secret
}

// adminSession is the bootstrap admin's session, shared by the tests: each
// one-time code works once, so a login per test would queue the tests
// behind the clock. It is renewed well before its access token expires.
var adminSession struct {
	sync.Mutex
	token, refresh, userID string
	at                     time.Time
}

// admin is the bootstrap admin, logged in with a code (devstack enrolled
// their TOTP): staff operations need it.
func admin(t *testing.T) *caller {
	t.Helper()
	c := newCaller(t)
	c.email, c.otp = bank.admin[0], bank.adminOTP
	adminSession.Lock()
	defer adminSession.Unlock()
	if adminSession.token == "" || time.Since(adminSession.at) > 10*time.Minute {
		c.login(bank.admin[1])
		c.userID = c.do("GET", "/v1/users/me", nil).must(t, 200, "admin me").str("user", "id")
		adminSession.token, adminSession.refresh, adminSession.userID, adminSession.at = c.token, c.refresh, c.userID, time.Now()
	}
	c.token, c.refresh, c.userID = adminSession.token, adminSession.refresh, adminSession.userID
	return c
}

// manager registers a user, turns their MFA on, has the admin make them a
// manager and logs them in with a code: the token carries the new role and
// the second factor staff operations need.
func manager(t *testing.T, prefix string) *caller {
	t.Helper()
	c := register(t, prefix)
	c.enrolTOTP()
	admin(t).do("PUT", "/v1/users/"+c.userID+"/roles", map[string]any{"roles": []string{"user", "manager"}}).must(t, 200, "grant manager")
	c.login("correct horse battery")
	return c
}

func (c *caller) openAccount(currency string) string {
	c.t.Helper()
	return c.do("POST", "/v1/accounts", map[string]any{"currency": currency, "displayName": "e2e"}).must(c.t, 200, "open account").str("account", "id")
}

func (c *caller) deposit(account string, amount int64, currency string) response {
	c.t.Helper()
	return c.do("POST", "/v1/accounts/"+account+"/deposits",
		map[string]any{"amount": fmt.Sprint(amount), "currency": currency, "reference": "e2e deposit"},
		"Idempotency-Key", rand.Text())
}

// fund deposits amount into account as c and, when the deposit is held for
// a second person (at or above the approval threshold), has another manager
// approve it. It returns the final transfer.
func (c *caller) fund(account string, amount int64, currency string) response {
	c.t.Helper()
	r := c.deposit(account, amount, currency).must(c.t, 200, "deposit")
	if r.str("transfer", "status") != "PENDING_APPROVAL" {
		return r
	}
	return manager(c.t, "approver").do("POST", "/v1/transfers/"+r.str("transfer", "id")+":approve", map[string]any{}).
		must(c.t, 200, "a second manager approves the deposit")
}

func (c *caller) transfer(key, from, to string, amount int64, currency string) response {
	c.t.Helper()
	return c.do("POST", "/v1/transfers",
		map[string]any{"fromAccountId": from, "toAccountId": to, "amount": fmt.Sprint(amount), "currency": currency, "description": "e2e"},
		"Idempotency-Key", key)
}

// balances returns the booked and available balance of an account.
func (c *caller) balances(account string) (booked, available string) {
	c.t.Helper()
	r := c.do("GET", "/v1/accounts/"+account, nil).must(c.t, 200, "get account")
	return orZero(r.str("account", "balance", "amount")), orZero(r.str("account", "availableBalance", "amount"))
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
