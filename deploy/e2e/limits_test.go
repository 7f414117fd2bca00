package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
)

// TestRateLimitBudgets: each budget of docs/api.md's limits table (at its
// default) admits its whole minute's worth at once, then answers 429 with
// Retry-After, RateLimit-Policy and RateLimit; and a client that waits
// Retry-After seconds is admitted again. The limiter refills continuously,
// so a refusal may come a request or two late when the burst took seconds;
// it may never come early.
func TestRateLimitBudgets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		policy string
		budget int
		setup  func(t *testing.T) func() response // returns one request of the budget
		ok     int                                // the status of an admitted request
	}{
		{"per client IP on auth routes", "auth", 20, func(t *testing.T) func() response {
			c := newCaller(t)
			// Refresh with a token the bank never issued: cheap, and counted
			// by nothing but this budget (failed logins have a throttle of
			// their own in the auth service).
			return func() response {
				return c.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": "never-issued-" + rand.Text()})
			}
		}, 401},
		{"per user on authenticated routes", "user", 100, func(t *testing.T) func() response {
			u := register(t, "budget-user")
			return func() response { return u.do("GET", "/v1/users/me", nil) }
		}, 200},
		{"per user on transfers", "transfers", 30, func(t *testing.T) func() response {
			u, mgr := register(t, "budget-money"), manager(t, "budget-mgr")
			a, b := u.openAccount("EUR"), u.openAccount("EUR")
			mgr.deposit(a, 1_000, "EUR").must(t, 200, "deposit")
			return func() response { return u.transfer(rand.Text(), a, b, 1, "EUR") }
		}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			send := tc.setup(t)
			interval := time.Minute / time.Duration(tc.budget)
			start := time.Now()
			var refused response
			n := 0
			for refused.Status == 0 {
				n++
				r := send()
				switch {
				case r.Status == 429:
					refused = r
				case r.Status != tc.ok:
					t.Fatalf("request %d = %d %s, want %d or 429", n, r.Status, r.Body, tc.ok)
				case r.Status == 200 && (!strings.Contains(r.Header.Get("RateLimit-Policy"), fmt.Sprintf(`"%s";q=%d;w=60`, tc.policy, tc.budget)) || r.Header.Get("RateLimit") == ""):
					t.Errorf("request %d: RateLimit-Policy %q, RateLimit %q; want the %s policy", n, r.Header.Get("RateLimit-Policy"), r.Header.Get("RateLimit"), tc.policy)
				}
				if latest := tc.budget + 1 + int(time.Since(start)/interval); n > latest {
					t.Fatalf("request %d after %v still admitted; want 429 by request %d", n, time.Since(start), latest)
				}
			}
			if n <= tc.budget {
				t.Errorf("refused at request %d, want the first %d admitted", n, tc.budget)
			}
			refused.problem(t, "over the budget", 429, false)
			retry, err := strconv.Atoi(refused.Header.Get("Retry-After"))
			if err != nil || retry < 1 || retry > 60 {
				t.Fatalf("Retry-After = %q, want whole seconds, 1 to 60", refused.Header.Get("Retry-After"))
			}
			if p := refused.Header.Get("RateLimit-Policy"); !strings.Contains(p, fmt.Sprintf(`"%s";q=%d;w=60`, tc.policy, tc.budget)) {
				t.Errorf("429 RateLimit-Policy = %q, want the %s policy of %d per 60 s", p, tc.policy, tc.budget)
			}
			if rl := refused.Header.Get("RateLimit"); !strings.Contains(rl, ";r=0;") {
				t.Errorf("429 RateLimit = %q, want r=0", rl)
			}
			time.Sleep(time.Duration(retry) * time.Second)
			if r := send(); r.Status != tc.ok {
				t.Errorf("after waiting Retry-After (%d s): %d %s, want %d", retry, r.Status, r.Body, tc.ok)
			}
		})
	}
}

// TestTokenRefusals: docs/api.md's list of tokens that are 401 with
// WWW-Authenticate: Bearer error="invalid_token", beyond those TestBadTokens
// tries: the HS256 key-confusion attack, another issuer or audience, a token
// not yet valid, and a kid that is not in the JWKS.
func TestTokenRefusals(t *testing.T) {
	t.Parallel()
	u := register(t, "tokens")
	ks, err := token.OpenKeyStore(filepath.Join(bank.dir, "keys"), time.Now)
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	sign := func(cfg token.SignerConfig) string {
		raw, _, err := token.NewSigner(ks, cfg).Sign(u.userID, []string{"user"})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := token.SignerConfig{Issuer: "bastion", Audience: "bastion-api"}
	valid := sign(good)
	parts := strings.Split(valid, ".")
	kid, pub := publishedKey(t)
	tokens := map[string]string{
		"HS256 keyed with the public key": hs256(t, pub, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, parts[1]),
		"another issuer":                  sign(token.SignerConfig{Issuer: "evil", Audience: good.Audience}),
		"another audience":                sign(token.SignerConfig{Issuer: good.Issuer, Audience: "other-api"}),
		"not yet valid":                   sign(token.SignerConfig{Issuer: good.Issuer, Audience: good.Audience, Now: func() time.Time { return time.Now().Add(time20m) }}),
		"kid not in the JWKS":             reheader(t, valid, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "no-such-key"}),
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			c := newCaller(t)
			c.token = tok
			r := c.do("GET", "/v1/users/me", nil).problem(t, name, 401, false)
			if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
	c := newCaller(t)
	c.token = valid
	c.do("GET", "/v1/users/me", nil).must(t, 200, "the control: the same claims, properly signed")
}

// publishedKey returns the kid and raw public key of the JWKS's first key.
func publishedKey(t *testing.T) (string, []byte) {
	t.Helper()
	r := newCaller(t).do("GET", "/.well-known/jwks.json", nil).must(t, 200, "JWKS")
	keys, _ := r.field("keys").([]any)
	if len(keys) == 0 {
		t.Fatal("JWKS has no keys")
	}
	k := keys[0].(map[string]any)
	x, err := base64.RawURLEncoding.DecodeString(fmt.Sprint(k["x"]))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(k["kid"]), x
}

func encodeHeader(t *testing.T, h map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// hs256 signs claims under header with HMAC-SHA256 keyed by key.
func hs256(t *testing.T, key []byte, header map[string]any, claims string) string {
	t.Helper()
	signing := encodeHeader(t, header) + "." + claims
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// reheader swaps a token's header and keeps its claims and signature.
func reheader(t *testing.T, tok string, header map[string]any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	return encodeHeader(t, header) + "." + parts[1] + "." + parts[2]
}
