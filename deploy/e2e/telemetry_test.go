package e2e

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
)

const time20m = 20 * time.Minute

// signWith signs an access token with the stack's real signing key, issued
// at now+shift: a negative shift gives an expired but otherwise valid token.
func signWith(t *testing.T, userID string, shift time.Duration) string {
	t.Helper()
	ks, err := token.OpenKeyStore(filepath.Join(bank.dir, "keys"), time.Now)
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	s := token.NewSigner(ks, token.SignerConfig{Issuer: "bastion", Audience: "bastion-api", Now: func() time.Time { return time.Now().Add(shift) }})
	raw, _, err := s.Sign(userID, []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// foreignToken signs an otherwise valid token with a key the bank never published.
func foreignToken(t *testing.T, userID string) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ks, err := token.NewKeyStoreFromKeys(map[string]ed25519.PrivateKey{"attacker": priv}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := token.NewSigner(ks, token.SignerConfig{Issuer: "bastion", Audience: "bastion-api"}).Sign(userID, []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// scrape returns the samples of one process's /metrics, keyed by name{labels}.
func scrape(t *testing.T, process string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(bank.metrics[process])
	if err != nil {
		t.Fatalf("scrape %s: %v", process, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sum adds the samples of a metric whose labels contain every given pair.
func sum(samples map[string]float64, name string, labels ...string) float64 {
	total := 0.0
	for k, v := range samples {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(k, l)
		}
		if ok {
			total += v
		}
	}
	return total
}

// TestSecurityCountersMove: refusals are visible to monitoring, with reasons.
func TestSecurityCountersMove(t *testing.T) {
	u := register(t, "mallory")
	victim := register(t, "victim")
	acct := victim.openAccount("EUR")
	before := map[string]map[string]float64{}
	for p := range bank.metrics {
		before[p] = scrape(t, p)
	}
	newCaller(t).do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "wrong password"}).must(t, 401, "failed login")
	bad := newCaller(t)
	bad.token = "not-a-jwt"
	bad.do("GET", "/v1/users/me", nil).must(t, 401, "bad token")
	u.do("GET", "/v1/accounts/"+acct, nil).must(t, 404, "BOLA attempt")
	u.do("POST", "/v1/accounts", map[string]any{"currency": "XXX"}).must(t, 400, "bad currency")
	u.deposit(acct, 1, "EUR").must(t, 403, "BFLA attempt")

	checks := []struct{ process, metric string }{
		{"auth", "bank_login_failures_total"},
		{"gateway", "bank_token_rejections_total"},
		{"accounts", "bank_authz_denials_total"},
		{"gateway", "bank_authz_denials_total"}, // the role check on deposits refuses at the edge
		{"accounts", "bank_validation_failures_total"},
	}
	for _, c := range checks {
		after := scrape(t, c.process)
		if sum(after, c.metric) <= sum(before[c.process], c.metric) {
			t.Errorf("%s on %s did not move (before %v, after %v)", c.metric, c.process, sum(before[c.process], c.metric), sum(after, c.metric))
		}
		for k := range after {
			if strings.HasPrefix(k, c.metric+"{") && !strings.Contains(k, `reason="`) {
				t.Errorf("%s has no reason label: %s", c.metric, k)
			}
		}
	}
}

// TestTransferTraceSpansTheStack: one transfer is one trace, from the
// gateway through the transactions service down to PostgreSQL.
func TestTransferTraceSpansTheStack(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "trace"), manager(t, "mgr-trace")
	a, b := u.openAccount("EUR"), u.openAccount("EUR")
	mgr.deposit(a, 1_000, "EUR").must(t, 200, "deposit")
	id := u.transfer(rand.Text(), a, b, 10, "EUR").must(t, 200, "transfer").str("transfer", "id")

	deadline := time.Now().Add(15 * time.Second)
	for {
		spans := bank.spans.all()
		trace := ""
		for _, s := range spans {
			if s.Service == "transactions" && strings.HasSuffix(s.Name, "/CreateTransfer") && s.ParentID != "" {
				trace = s.TraceID // there may be several transfers; check each trace
				services := map[string]bool{}
				db := false
				for _, o := range spans {
					if o.TraceID != trace {
						continue
					}
					services[o.Service] = true
					if o.Service == "transactions" && (strings.Contains(o.Attrs["db.system"], "postgresql") || strings.Contains(o.Attrs["db.system.name"], "postgresql")) {
						db = true
					}
				}
				if services["gateway"] && db {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trace of transfer %s with gateway, transactions and postgres spans among %d spans", id, len(spans))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestEdgeEndpoints: health, readiness, OpenAPI, JWKS with public keys only.
func TestEdgeEndpoints(t *testing.T) {
	t.Parallel()
	c := newCaller(t)
	c.do("GET", "/healthz", nil).must(t, 200, "healthz")
	c.do("GET", "/readyz", nil).must(t, 200, "readyz")
	doc := c.do("GET", "/openapi.json", nil).must(t, 200, "openapi")
	if !strings.Contains(string(doc.Body), `"/v1/transfers"`) || strings.Contains(string(doc.Body), "LedgerService") {
		t.Errorf("OpenAPI document does not list the public routes only")
	}
	jwks := c.do("GET", "/.well-known/jwks.json", nil).must(t, 200, "jwks")
	keys, _ := jwks.JSON["keys"].([]any)
	if len(keys) == 0 {
		t.Fatalf("JWKS has no keys: %s", jwks.Body)
	}
	for _, k := range keys {
		m := k.(map[string]any)
		if _, private := m["d"]; private || m["kty"] != "OKP" || m["kid"] == "" {
			t.Errorf("JWKS key %v", m)
		}
	}
	r := c.do("GET", "/healthz", nil, "X-Request-Id", "e2e-request-1")
	if r.Header.Get("X-Request-Id") != "e2e-request-1" || r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("edge headers = %v", r.Header)
	}
}

// TestLedgerMetricsMove: a transfer shows in the ledger's group-commit
// metrics on the transactions process: one more movement committed, its
// wait and its transaction's duration recorded, the queue gauge exported.
func TestLedgerMetricsMove(t *testing.T) {
	owner := register(t, "ledgermetrics")
	from, to := owner.openAccount("EUR"), owner.openAccount("EUR")
	manager(t, "ledgerfunder").fund(from, 100, "EUR")
	before := scrape(t, "transactions")
	owner.transfer(rand.Text(), from, to, 7, "EUR").must(t, 200, "transfer")
	after := scrape(t, "transactions")
	for _, m := range []string{"bank_ledger_batch_size_sum", "bank_ledger_batch_size_count",
		"bank_ledger_batch_duration_seconds_count", "bank_ledger_queue_wait_seconds_count"} {
		if sum(after, m) < sum(before, m)+1 {
			t.Errorf("%s: %v before the transfer, %v after; want it to move", m, sum(before, m), sum(after, m))
		}
	}
	if _, ok := after["bank_ledger_queued"]; !ok {
		t.Errorf("bank_ledger_queued is not exported (%d samples scraped)", len(after))
	}
}

// TestDashboardMetricsExist keeps the provisioned Grafana dashboard honest:
// every metric it queries is exported by some process of the running stack.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("../compose/grafana/dashboards/bastion.json")
	if err != nil {
		t.Fatal(err)
	}
	// Drive one request of each kind so every histogram and counter has a sample.
	u := register(t, "dash")
	u.do("GET", "/v1/accounts/"+randomID, nil)                      // authorization denial
	u.do("POST", "/v1/accounts", map[string]any{"currency": "XXX"}) // validation failure
	c := newCaller(t)
	for i := 0; i < 25; i++ { // failed logins, then the per-IP limit
		c.do("POST", "/v1/auth/login", map[string]any{"email": uniqueEmail("dash"), "password": "wrong password"})
	}
	c.token = "bad"
	c.do("GET", "/v1/users/me", nil) // token rejection
	// A deposit, so the ledger's group-commit histograms have a sample.
	manager(t, "dashfunder").fund(u.openAccount("EUR"), 1, "EUR")
	names := map[string]bool{}
	for p := range bank.metrics {
		for k := range scrape(t, p) {
			name, _, _ := strings.Cut(k, "{")
			names[name] = true
		}
	}
	// A metric name in PromQL is followed by a selector or a range; labels are not.
	for _, sub := range regexp.MustCompile(`((?:http|rpc|bank)_[a-z_]+)[\[{]`).FindAllStringSubmatch(string(raw), -1) {
		if m := sub[1]; !names[m] {
			t.Errorf("the dashboard queries %s, which no process exports", m)
		}
	}
}
