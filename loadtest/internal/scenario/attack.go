package scenario

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// OversizedBody is the size of the oversized-body probe: past docs/api.md's
// 64 KiB cap on request bodies.
const OversizedBody = 96 << 10

// Probe is one kind of hostile request and the refusal docs/api.md promises for it.
type Probe struct {
	Name   string
	Expect []int
	Build  func(i int) load.Request
}

// Attack is the attack scenario's generator: an attacker, with a valid
// account of their own, probing a victim's.
type Attack struct {
	RunID          string
	Attacker       User // logged in, one account
	Victim         User // one account
	Probes         []Probe
	oversizedBytes []byte
}

// NewAttack builds the generator for an attacker and a victim.
func NewAttack(runID string, attacker, victim User) *Attack {
	g := &Attack{RunID: runID, Attacker: attacker, Victim: victim}
	g.Probes = g.probes()
	return g
}

// Next cycles through the probes; the label names the probe and its route.
func (g *Attack) Next(i int) load.Request {
	p := g.Probes[i%len(g.Probes)]
	r := p.Build(i)
	r.Endpoint = p.Name + " " + r.Endpoint
	r.Expect = p.Expect
	return r
}

func (g *Attack) probes() []Probe {
	a, v := g.Attacker, g.Victim
	key := func(i int) string { return "bankload-" + g.RunID + "-attack-" + strconv.Itoa(i) }
	return []Probe{
		{"no-token", []int{http.StatusUnauthorized}, func(int) load.Request { return bank.ListAccounts("") }},
		{"garbage-token", []int{http.StatusUnauthorized}, func(int) load.Request { return bank.ListAccounts("not-a-jwt") }},
		{"alg-none-token", []int{http.StatusUnauthorized}, func(int) load.Request { return bank.ListAccounts(AlgNoneToken(v.ID)) }},
		{"tampered-token", []int{http.StatusUnauthorized}, func(int) load.Request { return bank.ListAccounts(PromoteToAdmin(a.Token)) }},
		{"bola-read", []int{http.StatusNotFound}, func(int) load.Request { return bank.GetAccount(a.Token, v.Accounts[0]) }},
		{"bola-history", []int{http.StatusNotFound}, func(int) load.Request { return bank.History(a.Token, v.Accounts[0], 10) }},
		{"bola-transfer", []int{http.StatusNotFound}, func(i int) load.Request {
			return bank.Transfer(a.Token, key(i), bank.TransferBody{From: v.Accounts[0], To: a.Accounts[0], Amount: 100, Currency: "EUR"})
		}},
		{"role-deposit", []int{http.StatusForbidden}, func(i int) load.Request {
			return bank.Deposit(a.Token, key(i), a.Accounts[0], 1_000_000, "EUR", "free money")
		}},
		{"oversized-body", []int{http.StatusRequestEntityTooLarge}, func(int) load.Request {
			r := bank.OpenAccount(a.Token, "EUR", "x")
			r.Body = g.oversized()
			return r
		}},
		{"wrong-media-type", []int{http.StatusUnsupportedMediaType}, func(int) load.Request {
			r := bank.OpenAccount(a.Token, "EUR", "x")
			r.Header.Set("Content-Type", "text/plain")
			return r
		}},
		{"mass-assignment", []int{http.StatusBadRequest}, func(int) load.Request {
			r := bank.OpenAccount(a.Token, "EUR", "x")
			r.Body = []byte(`{"currency":"EUR","ownerId":"` + v.ID + `","balance":{"currency":"EUR","amount":"100000000"}}`)
			return r
		}},
		{"missing-idempotency-key", []int{http.StatusBadRequest}, func(i int) load.Request {
			r := bank.Transfer(a.Token, key(i), bank.TransferBody{From: a.Accounts[0], To: v.Accounts[0], Amount: 1, Currency: "EUR"})
			r.Header.Del("Idempotency-Key")
			return r
		}},
		// Credential stuffing against the victim: 401 until the account's
		// failure budget or the per-IP auth budget runs out, then 429.
		{"credential-stuffing", []int{http.StatusUnauthorized, http.StatusTooManyRequests}, func(i int) load.Request {
			return bank.Login(v.Email, "guess-"+strconv.Itoa(i)+"-password")
		}},
	}
}

// oversized returns a syntactically valid JSON body past the size cap, so
// only the size rule can refuse it. Built once: the stream reuses it.
func (g *Attack) oversized() []byte {
	if g.oversizedBytes == nil {
		g.oversizedBytes = []byte(`{"currency":"EUR","displayName":"` + strings.Repeat("A", OversizedBody) + `"}`)
	}
	return g.oversizedBytes
}

// AlgNoneToken forges an unsigned JWT (alg "none") that claims to be sub
// with the admin role: the oldest JWT attack there is.
func AlgNoneToken(sub string) string {
	now := time.Now().Unix()
	header := b64json(map[string]any{"alg": "none", "typ": "at+jwt"})
	claims := b64json(map[string]any{"iss": "bastion", "aud": "bastion-api", "sub": sub,
		"iat": now, "nbf": now, "exp": now + 900, "jti": "forged", "roles": []string{"admin"}})
	return header + "." + claims + "."
}

// PromoteToAdmin rewrites a real token's claims to carry the admin role and
// keeps the original signature, which no longer matches.
func PromoteToAdmin(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return token + "x"
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		return token + "x"
	}
	claims["roles"] = []string{"user", "manager", "admin"}
	return parts[0] + "." + b64json(claims) + "." + parts[2]
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SetupAttack creates the attacker (logged in, one account) and the victim
// (one account). -users does not apply: two actors are enough.
func SetupAttack(ctx context.Context, env Env) (load.Generator, error) {
	users, err := createUsers(ctx, env, 0, 2, true, 1)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "set-up: attacker %s, victim %s\n", users[0].Email, users[1].Email)
	return NewAttack(env.RunID, users[0], users[1]), nil
}
