package scenario_test

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
)

func fakeUsers(n, accounts int) []scenario.User {
	users := make([]scenario.User, n)
	for i := range users {
		users[i] = scenario.User{ID: "u" + strconv.Itoa(i), Email: scenario.Email("run1", i), Password: scenario.Password("run1", i), Token: "tok" + strconv.Itoa(i)}
		for a := range accounts {
			users[i].Accounts = append(users[i].Accounts, "u"+strconv.Itoa(i)+"-acc"+strconv.Itoa(a))
		}
	}
	return users
}

func body(t *testing.T, r load.Request) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s body %q: %v", r.Endpoint, r.Body, err)
	}
	return m
}

func TestTransfersMixAndContract(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3, 10} {
		t.Run(strconv.Itoa(n)+" users", func(t *testing.T) {
			t.Parallel()
			users := fakeUsers(n, 2)
			g := &scenario.Transfers{RunID: "run1", Users: users}
			count := map[string]int{}
			keys := map[string]bool{}
			total := 10 * n * 7 // whole cycles, so the shares are exact
			for i := range total {
				r := g.Next(i)
				count[r.Endpoint]++
				tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				owner := users[i%n]
				if tok != owner.Token {
					t.Fatalf("Next(%d) token = %q, want user %d's", i, tok, i%n)
				}
				if !strings.Contains(r.Path, owner.Accounts[0]) && r.Endpoint != bank.EndpointTransfer {
					t.Fatalf("Next(%d) reads %s, not the caller's own account", i, r.Path)
				}
				if r.Endpoint != bank.EndpointTransfer {
					continue
				}
				key := r.Header.Get("Idempotency-Key")
				if key == "" || len(key) > 255 || keys[key] {
					t.Fatalf("Next(%d) Idempotency-Key = %q, want a fresh one of 1–255 chars (seen before: %v)", i, key, keys[key])
				}
				keys[key] = true
				b := body(t, r)
				amount, err := strconv.Atoi(b["amount"])
				if b["fromAccountId"] != owner.Accounts[0] || b["toAccountId"] != owner.Accounts[1] || err != nil ||
					amount < 1 || amount > scenario.MaxTransferAmount || b["currency"] != "EUR" {
					t.Fatalf("Next(%d) transfer body = %v, want 1..%d EUR between the caller's two accounts", i, b, scenario.MaxTransferAmount)
				}
				if r.Header.Get("Content-Type") != bank.ContentTypeJSON {
					t.Fatalf("Next(%d) Content-Type = %q", i, r.Header.Get("Content-Type"))
				}
			}
			want := map[string]int{bank.EndpointTransfer: total * 7 / 10, bank.EndpointGetAccount: total * 2 / 10, bank.EndpointHistory: total / 10}
			for ep, w := range want {
				if count[ep] != w {
					t.Errorf("%d requests: %s × %d, want %d (mix %v)", total, ep, count[ep], w, count)
				}
			}
		})
	}
}

// Keys of two runs must never collide, or the second run's transfers would
// be replays of the first's and move no money.
func TestTransferKeysDifferAcrossRuns(t *testing.T) {
	t.Parallel()
	a := &scenario.Transfers{RunID: "aaaa", Users: fakeUsers(1, 2)}
	b := &scenario.Transfers{RunID: "bbbb", Users: fakeUsers(1, 2)}
	for i := range 50 {
		if a.Key(i) == b.Key(i) {
			t.Fatalf("Key(%d) = %q in both runs", i, a.Key(i))
		}
	}
}

func TestLoginStormMix(t *testing.T) {
	t.Parallel()
	users := fakeUsers(4, 0)
	byEmail := map[string]scenario.User{}
	for _, u := range users {
		byEmail[u.Email] = u
	}
	g := &scenario.LoginStorm{RunID: "run1", Users: users}
	count := map[string]int{}
	const total = 4 * 4 * 25
	for i := range total {
		r := g.Next(i)
		count[r.Endpoint]++
		b := body(t, r)
		u, known := byEmail[b["email"]]
		if r.Header.Get("Authorization") != "" {
			t.Fatalf("Next(%d) sends a bearer token on login", i)
		}
		switch r.Endpoint {
		case scenario.EndpointLoginRight:
			if !known || b["password"] != u.Password || len(r.Expect) != 0 {
				t.Fatalf("Next(%d) right-password login = %v expect %v", i, b, r.Expect)
			}
		case scenario.EndpointLoginWrong:
			if !known || b["password"] == u.Password || !report.Expected(401, r.Expect) || report.Expected(200, r.Expect) {
				t.Fatalf("Next(%d) wrong-password login = %v expect %v", i, b, r.Expect)
			}
		case scenario.EndpointLoginUnknown:
			if known || !report.Expected(401, r.Expect) || report.Expected(200, r.Expect) {
				t.Fatalf("Next(%d) unknown-email login = %v expect %v", i, b, r.Expect)
			}
		default:
			t.Fatalf("Next(%d) endpoint %q", i, r.Endpoint)
		}
	}
	if count[scenario.EndpointLoginRight] != total/2 || count[scenario.EndpointLoginWrong] != total/4 || count[scenario.EndpointLoginUnknown] != total/4 {
		t.Errorf("login mix = %v, want 50%% right, 25%% wrong, 25%% unknown", count)
	}
}

func TestAttackProbes(t *testing.T) {
	t.Parallel()
	users := fakeUsers(2, 1)
	attacker, victim := users[0], users[1]
	attacker.Token = forgeableToken(t)
	g := scenario.NewAttack("run1", attacker, victim)
	seen := map[string]load.Request{}
	for i := range len(g.Probes) * 3 {
		r := g.Next(i)
		if len(r.Expect) == 0 || report.Expected(200, r.Expect) {
			t.Errorf("Next(%d) %s expects %v: an attack must expect a refusal", i, r.Endpoint, r.Expect)
		}
		seen[strings.Fields(r.Endpoint)[0]] = r
	}
	if len(seen) != len(g.Probes) {
		t.Errorf("saw %d distinct probes, want all %d", len(seen), len(g.Probes))
	}
	check := func(name string, ok bool, why string) {
		t.Helper()
		if !ok {
			t.Errorf("probe %s: %s (request %+v)", name, why, seen[name].Header)
		}
	}
	check("no-token", seen["no-token"].Header.Get("Authorization") == "", "sends a token")
	for _, bola := range []string{"bola-read", "bola-history"} {
		r := seen[bola]
		check(bola, strings.Contains(r.Path, victim.Accounts[0]) && r.Header.Get("Authorization") == "Bearer "+attacker.Token, "is not the attacker reading the victim's account")
	}
	tr := seen["bola-transfer"]
	check("bola-transfer", body(t, tr)["fromAccountId"] == victim.Accounts[0] && tr.Header.Get("Idempotency-Key") != "", "is not a keyed transfer out of the victim's account")
	check("missing-idempotency-key", seen["missing-idempotency-key"].Header.Get("Idempotency-Key") == "", "carries a key")
	check("oversized-body", len(seen["oversized-body"].Body) > 64<<10 && json.Valid(seen["oversized-body"].Body), "is not valid JSON over 64 KiB")
	check("wrong-media-type", seen["wrong-media-type"].Header.Get("Content-Type") != bank.ContentTypeJSON, "is JSON")
	check("role-deposit", seen["role-deposit"].Header.Get("Authorization") == "Bearer "+attacker.Token, "is not made by the plain user")

	none := strings.TrimPrefix(seen["alg-none-token"].Header.Get("Authorization"), "Bearer ")
	hdr := decodeSegment(t, strings.Split(none, ".")[0])
	check("alg-none-token", hdr["alg"] == "none" && strings.HasSuffix(none, "."), "is not an unsigned alg=none JWT")

	tampered := strings.Split(strings.TrimPrefix(seen["tampered-token"].Header.Get("Authorization"), "Bearer "), ".")
	orig := strings.Split(attacker.Token, ".")
	claims := decodeSegment(t, tampered[1])
	check("tampered-token", tampered[2] == orig[2] && tampered[1] != orig[1] && strings.Contains(string(mustJSON(claims["roles"])), "admin"),
		"does not keep the signature while claiming admin")
}

// forgeableToken is a JWT-shaped token with a user's claims.
func forgeableToken(t *testing.T) string {
	t.Helper()
	enc := func(v any) string { return base64.RawURLEncoding.EncodeToString(mustJSON(v)) }
	return enc(map[string]string{"alg": "EdDSA", "kid": "k1"}) + "." + enc(map[string]any{"sub": "u0", "roles": []string{"user"}, "exp": 1893456000}) + ".c2lnbmF0dXJl"
}

func decodeSegment(t *testing.T, s string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	var m map[string]any
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("segment %q is not base64url JSON", s)
	}
	return m
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestPromoteToAdminOnGarbage(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"", "abc", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".c"} {
		if got := scenario.PromoteToAdmin(tok); got == tok {
			t.Errorf("PromoteToAdmin(%q) = the same token, want something altered", tok)
		}
	}
}

func TestEmailsAndPasswords(t *testing.T) {
	t.Parallel()
	for _, run := range []string{"0", "deadbeef"} {
		for _, n := range []int{0, 999} {
			e, p := scenario.Email(run, n), scenario.Password(run, n)
			if !strings.HasSuffix(e, "@example.com") || len(p) < 12 || len(p) > 128 {
				t.Errorf("Email/Password(%q, %d) = %q / %d chars, want an example.com address and a 12–128 char password", run, n, e, len(p))
			}
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	for _, s := range scenario.All() {
		got, err := scenario.Lookup(s.Name)
		if err != nil || got.Name != s.Name || got.Setup == nil || got.Description == "" {
			t.Errorf("Lookup(%q) = %+v, %v", s.Name, got, err)
		}
	}
	for _, bad := range []string{"", "Transfers", "attack ", "all"} {
		if _, err := scenario.Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) succeeded, want an error", bad)
		}
	}
}
