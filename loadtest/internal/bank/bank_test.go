package bank_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

func TestRequestsFollowTheContract(t *testing.T) {
	t.Parallel()
	tb := bank.TransferBody{From: "a1", To: "a2", Amount: 9007199254740993, Currency: "EUR", Description: "rent"}
	tests := []struct {
		name     string
		req      load.Request
		endpoint string
		method   string
		path     string
		token    bool
		key      string
		body     map[string]string
	}{
		{"register", bank.Register("u@example.com", "long-password", "U"), bank.EndpointRegister, "POST", "/v1/auth/register", false, "",
			map[string]string{"email": "u@example.com", "password": "long-password", "displayName": "U"}},
		{"login", bank.Login("u@example.com", "pw"), bank.EndpointLogin, "POST", "/v1/auth/login", false, "",
			map[string]string{"email": "u@example.com", "password": "pw"}},
		{"me", bank.Me("tok"), bank.EndpointMe, "GET", "/v1/users/me", true, "", nil},
		{"open account", bank.OpenAccount("tok", "EUR", "Main"), bank.EndpointOpenAccount, "POST", "/v1/accounts", true, "",
			map[string]string{"currency": "EUR", "displayName": "Main"}},
		{"list accounts", bank.ListAccounts("tok"), bank.EndpointListAccount, "GET", "/v1/accounts", true, "", nil},
		{"get account", bank.GetAccount("tok", "a1"), bank.EndpointGetAccount, "GET", "/v1/accounts/a1", true, "", nil},
		{"history", bank.History("tok", "a1", 20), bank.EndpointHistory, "GET", "/v1/accounts/a1/transactions?pageSize=20", true, "", nil},
		// An amount past 2^53 must survive: protojson's int64 is a string.
		{"transfer", bank.Transfer("tok", "k-1", tb), bank.EndpointTransfer, "POST", "/v1/transfers", true, "k-1",
			map[string]string{"fromAccountId": "a1", "toAccountId": "a2", "amount": "9007199254740993", "currency": "EUR", "description": "rent"}},
		{"deposit", bank.Deposit("tok", "k-2", "a1", 500, "EUR", "seed"), bank.EndpointDeposit, "POST", "/v1/accounts/a1/deposits", true, "k-2",
			map[string]string{"amount": "500", "currency": "EUR", "reference": "seed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.req
			if r.Endpoint != tt.endpoint || r.Method != tt.method || r.Path != tt.path {
				t.Errorf("%s = %s %s (%s), want %s %s (%s)", tt.name, r.Method, r.Path, r.Endpoint, tt.method, tt.path, tt.endpoint)
			}
			if got := r.Header.Get("Authorization"); (got == "Bearer tok") != tt.token || (!tt.token && got != "") {
				t.Errorf("%s Authorization = %q, want bearer=%v", tt.name, got, tt.token)
			}
			if got := r.Header.Get("Idempotency-Key"); got != tt.key {
				t.Errorf("%s Idempotency-Key = %q, want %q", tt.name, got, tt.key)
			}
			ct := r.Header.Get("Content-Type")
			if tt.body == nil {
				if r.Body != nil || ct != "" {
					t.Errorf("%s has body %q and Content-Type %q, want neither", tt.name, r.Body, ct)
				}
				return
			}
			if ct != bank.ContentTypeJSON {
				t.Errorf("%s Content-Type = %q, want %q", tt.name, ct, bank.ContentTypeJSON)
			}
			var got map[string]string
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatalf("%s body %s is not a JSON object of strings: %v", tt.name, r.Body, err)
			}
			if len(got) != len(tt.body) {
				t.Errorf("%s body = %v, want %v", tt.name, got, tt.body)
			}
			for k, v := range tt.body {
				if got[k] != v {
					t.Errorf("%s body[%q] = %q, want %q", tt.name, k, got[k], v)
				}
			}
		})
	}
}

// An id with path syntax in it must stay one path segment, never walk up
// to another route.
func TestIDsAreEscapedIntoOneSegment(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 3)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.URL.EscapedPath() }))
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	const id = "../../auth/register?x=1#"
	for _, req := range []load.Request{bank.GetAccount("t", id), bank.History("t", id, 5), bank.Deposit("t", "k", id, 1, "EUR", "r")} {
		if _, err := load.Send(t.Context(), srv.Client(), base, req); err != nil {
			t.Fatal(err)
		}
		got := <-seen
		want := "/v1/accounts/..%2F..%2Fauth%2Fregister%3Fx=1%23"
		if len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("%s sent path %q, want it to start %q", req.Endpoint, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]time.Duration{
		"": time.Second, "0": time.Second, "-4": time.Second, "abc": time.Second, "2": 2 * time.Second,
		"Wed, 21 Oct 2015 07:28:00 GMT": time.Second, "60": time.Minute,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := bank.RetryAfter(h); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func newClient(t *testing.T, h http.HandlerFunc, retries int) *bank.Client {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	return &bank.Client{HTTP: srv.Client(), Base: base, Retries: retries, MaxWait: 10 * time.Millisecond}
}

func TestClientWaitsOutRateLimits(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "3600") // capped by MaxWait
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"accessToken":"tok","tokenType":"Bearer"}`))
	}, 3)
	start := time.Now()
	tok, err := c.Login(t.Context(), "u@example.com", "pw")
	if err != nil || tok != "tok" {
		t.Fatalf("Login() = %q, %v, want tok after two 429s", tok, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Login took %v: Retry-After must be capped by MaxWait", time.Since(start))
	}
}

func TestClientGivesUp(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"status":429,"code":"RESOURCE_EXHAUSTED","title":"Too Many Requests"}`))
	}, 2)
	_, err := c.Register(t.Context(), "u@example.com", "pw", "U")
	var se *bank.StatusError
	if !errors.As(err, &se) || se.Status != 429 || se.Code != "RESOURCE_EXHAUSTED" {
		t.Fatalf("Register() error = %v, want a StatusError 429 RESOURCE_EXHAUSTED", err)
	}
	if calls.Load() != 3 {
		t.Errorf("server saw %d calls, want 1 + 2 retries", calls.Load())
	}
}

func TestClientRefusesUselessAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		call func(c *bank.Client) error
	}{
		{"login without token", `{}`, func(c *bank.Client) error { _, err := c.Login(t.Context(), "e", "p"); return err }},
		{"account without id", `{"account":{}}`, func(c *bank.Client) error { _, err := c.OpenAccount(t.Context(), "t", "EUR", "n"); return err }},
		{"not JSON", `<html>`, func(c *bank.Client) error { _, err := c.Register(t.Context(), "e", "p", "n"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tt.body)) }, 0)
			if err := tt.call(c); err == nil {
				t.Errorf("%s: error = nil, want a refusal", tt.name)
			}
		})
	}
}

func TestClientReportsNonSuccess(t *testing.T) {
	t.Parallel()
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }, 5)
	err := c.Deposit(t.Context(), "t", "k", "a", 1, "EUR", "r")
	var se *bank.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusForbidden || se.Endpoint != bank.EndpointDeposit {
		t.Errorf("Deposit() error = %v, want StatusError 403 on %s", err, bank.EndpointDeposit)
	}
}
